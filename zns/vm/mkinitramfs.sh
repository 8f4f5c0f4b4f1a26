#!/bin/sh
# Build the guest's initramfs (uncompressed newc cpio: the kernel unpacks it
# faster under TCG than it decompresses one).
#
# usage: zns/vm/mkinitramfs.sh VMDIR BUILD_DIR OUT.cpio [KERNEL_DIR]
#   KERNEL_DIR: kernel (Debian 12's 6.1, default) or kernel7 (Linux 7.x from
#   trixie-backports: its modules are .ko.xz under usr/lib/modules; they are
#   decompressed here, with their depends= resolved, and ublk_drv is added).
# Contents: busybox-static as /bin/*, /init (zns/vm/guest-init.sh), the
# modules nvme, nvme-core, null_blk, configfs and their dependencies with a
# modules.dep made by `busybox depmod` (the host has no kmod), the project's
# build/znslab and build/tests/znslab_tests, workloads/, fio, blkzone and
# nvme-cli with the shared libraries ldd names.
set -eu
VMDIR=${1:?usage: mkinitramfs.sh VMDIR BUILD_DIR OUT.cpio}
BUILD=${2:?}
OUT=${3:?}
HERE=$(cd "$(dirname "$0")" && pwd)
die() { echo "vm: mkinitramfs: $*" >&2; exit 1; }
KNAME=${4:-kernel}
kver=$(cat "$VMDIR/$KNAME/version") || die "no kernel in $VMDIR/$KNAME (run fetch-kernel.sh)"
KROOT=$VMDIR/$KNAME/root/lib/modules/$kver
[ -d "$KROOT" ] || KROOT=$VMDIR/$KNAME/root/usr/lib/modules/$kver
R=$VMDIR/initramfs
rm -rf "$R"
mkdir -p "$R/bin" "$R/sbin" "$R/usr/bin" "$R/usr/sbin" "$R/lib" "$R/lib64" "$R/proc" "$R/sys" "$R/dev" \
         "$R/tmp" "$R/results" "$R/znslab/build/tests" "$R/znslab/vm" "$R/etc"

BB=$(command -v busybox) || die "busybox not found (Debian package busybox-static)"
file_is_static() { ! ldd "$1" >/dev/null 2>&1; }
file_is_static "$BB" || die "$BB is not static (install busybox-static)"
cp "$BB" "$R/bin/busybox"

# Modules (paths relative to lib/modules/VERSION/kernel).
if [ "$KNAME" = kernel ]; then
MODS="drivers/nvme/host/nvme.ko drivers/nvme/host/nvme-core.ko block/t10-pi.ko lib/crc-t10dif.ko
      crypto/crct10dif_common.ko crypto/crct10dif_generic.ko arch/x86/crypto/crct10dif-pclmul.ko
      lib/crc64-rocksoft.ko crypto/crc64_rocksoft_generic.ko lib/crc64.ko
      drivers/block/null_blk/null_blk.ko fs/configfs/configfs.ko"
for m in $MODS; do
  src=$KROOT/kernel/$m
  [ -f "$src" ] || die "module $m missing from linux-image $kver"
  mkdir -p "$R/lib/modules/$kver/kernel/$(dirname "$m")"
  cp "$src" "$R/lib/modules/$kver/kernel/$m"
done
else
  # Compressed modules: copy each wanted module and, recursively, the
  # modules its .modinfo depends= names, decompressed (busybox's modprobe
  # does not read .ko.xz).
  want="nvme null_blk ublk_drv configfs"
  done_mods=" "
  while [ -n "$want" ]; do
    set -- $want; m=$1; shift; want="$*"
    case $done_mods in *" $m "*) continue ;; esac
    done_mods="$done_mods$m "
    f=$(cd "$KROOT" && find kernel -name "$m.ko*" | head -n 1)
    [ -n "$f" ] || f=$(cd "$KROOT" && find kernel -name "$(echo "$m" | tr _ -).ko*" | head -n 1)
    [ -n "$f" ] || die "module $m missing from $kver"
    rel=${f%.xz}; rel=${rel%.zst}
    mkdir -p "$R/lib/modules/$kver/$(dirname "$rel")"
    case $f in
      *.xz) xz -dc "$KROOT/$f" > "$R/lib/modules/$kver/$rel" ;;
      *.zst) zstd -qdc "$KROOT/$f" > "$R/lib/modules/$kver/$rel" ;;
      *) cp "$KROOT/$f" "$R/lib/modules/$kver/$rel" ;;
    esac
    deps=$(strings -a "$R/lib/modules/$kver/$rel" | sed -n 's/^depends=//p' | head -n 1 | tr , ' ')
    want=$(echo $want $deps)
  done
fi
cp "$KROOT"/modules.order "$KROOT"/modules.builtin "$R/lib/modules/$kver/" 2>/dev/null || true
busybox depmod -b "$R" "$kver" || die "busybox depmod failed"

# Executables with their shared libraries (paths kept as on the host).
copy_with_libs() {
  bin=$1; dest=$2
  cp -L "$bin" "$R$dest"
  ldd "$bin" 2>/dev/null | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i }' | while read -r lib; do
    [ -e "$R$lib" ] && continue
    mkdir -p "$R$(dirname "$lib")"
    cp -L "$lib" "$R$lib"
  done
}
for t in fio blkzone nvme; do
  p=$(command -v $t) || die "$t not found (Debian packages fio, util-linux, nvme-cli)"
  copy_with_libs "$p" "/usr/bin/$t"
done
[ -x "$BUILD/znslab" ] || die "$BUILD/znslab missing (make first)"
TESTS_BIN=${VM_TESTS_BIN:-$BUILD/tests/znslab_tests}  # VM_TESTS_BIN: e.g. a sanitizer build
[ -x "$TESTS_BIN" ] || die "$TESTS_BIN missing (make first)"
copy_with_libs "$BUILD/znslab" /znslab/build/znslab
copy_with_libs "$TESTS_BIN" /znslab/build/tests/znslab_tests
cp -r workloads "$R/znslab/workloads"
# The 7.x guest also runs fio's zoned test suite (bash script, t/zbd of the
# fio source package matching the host's fio: zns/vm/fetch-fio-src.sh).
if [ "$KNAME" != kernel ]; then
  copy_with_libs "$(command -v bash)" /bin/bash
  copy_with_libs /bin/grep /usr/bin/grep  # GNU grep: the suite uses grep -P (busybox's grep has no -P)
  copy_with_libs /usr/bin/timeout /usr/bin/timeout  # GNU timeout: test 48 uses timeout -v
  # libzbd's zbd command (zns/vm/fetch-libzbd-src.sh), with the host's libzbd.
  [ -x "$VMDIR/zbd/zbd" ] && copy_with_libs "$VMDIR/zbd/zbd" /usr/bin/zbd
  if [ -d "$VMDIR/fio-src/t/zbd" ]; then
    mkdir -p "$R/znslab/fio/t/zbd"
    cp "$VMDIR/fio-src/t/zbd/test-zbd-support" "$VMDIR/fio-src/t/zbd/functions" "$R/znslab/fio/t/zbd/"
    ln -s /usr/bin/fio "$R/znslab/fio/fio"
  fi
fi
cp "$HERE/guest-init.sh" "$R/init"
cp "$HERE/guest-tests.sh" "$R/znslab/vm/guest-tests.sh"
chmod +x "$R/init" "$R/znslab/vm/guest-tests.sh"
echo "root:x:0:0:root:/:/bin/sh" > "$R/etc/passwd"

( cd "$R" && find . | busybox cpio -o -H newc ) > "$OUT.tmp" 2>/dev/null || die "cpio failed"
mv "$OUT.tmp" "$OUT"
echo "vm: initramfs $OUT ($(du -m "$OUT" | cut -f1) MiB)"

#!/bin/sh
# Fetch a Debian kernel with apt (never installed on the host) and extract
# the ELF vmlinux and the modules the guest needs.
#
# usage: zns/vm/fetch-kernel.sh VMDIR [6.1|7]
#   6.1 (default): Debian 12's linux-image-amd64 from the host's apt sources,
#       into VMDIR/kernel.
#   7: the pinned Linux 7.x of Debian trixie-backports (VM_KERNEL7_ABI,
#       default 7.3.4+deb13-amd64) from a PRIVATE apt configuration in
#       VMDIR/apt (its own sources.list, state, cache; the host's /etc/apt is
#       only read for nothing: Dir::Etc::* point into VMDIR/apt), into
#       VMDIR/kernel7. Packages: linux-binary-ABI (usr/lib/modules/ABI/vmlinuz),
#       linux-modules-ABI (the .ko.xz files) and linux-base-ABI (config,
#       modules.builtin, modules.order).
# Output: VMDIR/<kernel dir>/vmlinux, root/ (dpkg -x of the packages),
#         version (e.g. 6.1.0-56-amd64). Cached: a second run with the same
#         version does nothing.
set -eu
VMDIR=${1:?usage: fetch-kernel.sh VMDIR [6.1|7]}
WHICH=${2:-6.1}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$VMDIR"; VMDIR=$(cd "$VMDIR" && pwd)
die() { echo "vm: fetch-kernel: $*" >&2; exit 1; }

if [ "$WHICH" = 7 ]; then
  ABI=${VM_KERNEL7_ABI:-7.3.4+deb13-amd64}
  KDIR=$VMDIR/kernel7
  if [ -s "$KDIR/vmlinux" ] && [ "$(cat "$KDIR/version" 2>/dev/null)" = "$ABI" ]; then
    echo "vm: kernel $ABI (cached in $KDIR)"
    exit 0
  fi
  "$HERE/private-apt.sh" "$VMDIR/apt" update || die "private apt update (trixie-backports) failed"
  rm -rf "$KDIR"; mkdir -p "$KDIR/dl"
  for p in linux-binary-$ABI linux-modules-$ABI linux-base-$ABI; do
    ( cd "$KDIR/dl" && "$HERE/private-apt.sh" "$VMDIR/apt" download "$p" ) >/dev/null 2>"$KDIR/apt.err" || {
      cat "$KDIR/apt.err" >&2
      die "Debian trixie-backports no longer serves $p (the pinned guest kernel $ABI). Pick a version it has
  (apt-cache policy in the private config: zns/vm/private-apt.sh $VMDIR/apt search linux-binary-7)
  and set VM_KERNEL7_ABI=<abi> or update the pin in zns/vm/fetch-kernel.sh."
    }
  done
  for deb in "$KDIR"/dl/*.deb; do dpkg -x "$deb" "$KDIR/root" || die "dpkg -x $deb failed"; done
  rm -rf "$KDIR/dl"
  bz=$KDIR/root/usr/lib/modules/$ABI/vmlinuz
  [ -f "$bz" ] || die "no usr/lib/modules/$ABI/vmlinuz in linux-binary-$ABI"
  /usr/bin/python3 "$(dirname "$0")/extract_vmlinux.py" "$bz" "$KDIR/vmlinux" || die "cannot extract vmlinux from $bz"
  echo "$ABI" > "$KDIR/version"
  echo "vm: kernel $ABI ready in $KDIR"
  exit 0
fi
[ "$WHICH" = 6.1 ] || die "unknown kernel '$WHICH' (6.1 or 7)"
KDIR=$VMDIR/kernel
mkdir -p "$KDIR"

# linux-image-amd64 is a metapackage; its Depends names the real package.
pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
if [ -z "$pkg" ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "vm: apt knows no linux-image-amd64; running apt-get update" >&2
    apt-get update -qq >&2 || true
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
  fi
fi
[ -n "$pkg" ] || die "apt-cache depends linux-image-amd64 names no kernel package (run apt-get update as root)"
kver=${pkg#linux-image-}
if [ -s "$KDIR/vmlinux" ] && [ "$(cat "$KDIR/version" 2>/dev/null)" = "$kver" ]; then
  echo "vm: kernel $kver (cached in $KDIR)"
  exit 0
fi
echo "vm: fetching $pkg with apt-get download"
rm -rf "$KDIR/dl" "$KDIR/root" "$KDIR/vmlinux"
mkdir -p "$KDIR/dl"
( cd "$KDIR/dl" && apt-get download -o APT::Sandbox::User=root "$pkg" >/dev/null 2>"$KDIR/dl/apt.err" ) || {
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq >&2 || true
    ( cd "$KDIR/dl" && apt-get download -o APT::Sandbox::User=root "$pkg" >/dev/null 2>"$KDIR/dl/apt.err" ) ||
      { cat "$KDIR/dl/apt.err" >&2; die "apt-get download $pkg failed"; }
  else
    cat "$KDIR/dl/apt.err" >&2; die "apt-get download $pkg failed"
  fi
}
deb=$(ls "$KDIR"/dl/*.deb | head -n 1)
dpkg -x "$deb" "$KDIR/root" || die "dpkg -x $deb failed"
rm -f "$deb"
bz=$(ls "$KDIR"/root/boot/vmlinuz-* | head -n 1)
[ -f "$bz" ] || die "no /boot/vmlinuz-* in $pkg"
/usr/bin/python3 "$(dirname "$0")/extract_vmlinux.py" "$bz" "$KDIR/vmlinux" || die "cannot extract vmlinux from $bz"
echo "$kver" > "$KDIR/version"
echo "vm: kernel $kver ready in $KDIR"

#!/bin/sh
# `make vm-test`: boot Debian's kernels under QEMU with an NVMe ZNS namespace
# and null_blk zoned, run the conformance suite, the differential trace,
# workloads/zone-write.json and fio on /dev/nvme0n1 (zbd:), /dev/ng0n1
# (nvme:) and /dev/nullb0 (zbd:), and collect the results into
# results/vm/<UTC time>/ (+ results/vm/latest, summary.json).
# The 7.x guest also serves the emulator as /dev/ublkb0 (znslab ublk), tests
# it the same way, and runs fio's zoned test suite (t/zbd/test-zbd-support)
# on ublkb0, nullb0 and nvme0n1; its results go to OUT/kernel_7/.
#
# usage: zns/vm/run.sh BUILD_DIR
# Environment: VM_KERNEL=6.1|7|all (default all), VM_ACCEL=tcg|kvm (default
# tcg: KVM fails nested on the CI host), VM_TCG_THREAD=single|multi (default
# single), VM_TIMEOUT (s, the 6.1 guest run,
# default 270), VM_TIMEOUT7 (s, the 7.x guest run, default 1500),
# VM_DIFF_OPS (default 3000), VM_BOOT_TIMEOUT (s until the guest's init
# runs, default 60), VM_SEED (1), VM_ZW_BYTES (bytes zone-write and fio
# write per device, default 64 MiB), VM_MEM (3G; the 7.x guest: VM_MEM7, 4G), VM_FIO_ZBD (tests of
# fio's suite in the 7.x guest: all, none or N,N,...; default the CI subset
# VM_FIO_ZBD_CI that zns/vm/vm.mk passes), VM_ONLY_FIO_ZBD=1 (the 7.x guest
# runs only fio's suite: for measuring it), VM_FIO_ZBD_RESET_EACH (1: the
# suite's -w, reset every zone before each write test; 0: tests inherit the
# zone state of the previous test).
# Exit status: 0 when every device passed (see summarize.py), 1 otherwise.
set -eu
BUILD=${1:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
VMDIR=$BUILD/vm
ACCEL=${VM_ACCEL:-tcg}
# TCG with one host thread for all vCPUs (thread=single): with one thread
# per vCPU (MTTCG) the 7.3 guest kernel oopsed twice on an int3 left by its
# own code patching (text_poke of a jump label, seen by the other vCPU
# after the patch completed): once in early boot, once in __schedule
# mid-run (2026-12-04). VM_TCG_THREAD=multi restores MTTCG.
TCG_THREAD=${VM_TCG_THREAD:-single}
ACCEL_OPT=$ACCEL
[ "$ACCEL" = tcg ] && ACCEL_OPT="tcg,thread=$TCG_THREAD"
LIMIT=${VM_TIMEOUT:-270}
DIFF_OPS=${VM_DIFF_OPS:-3000}
SEED=${VM_SEED:-1}
ZW_BYTES=${VM_ZW_BYTES:-67108864}
MEM=${VM_MEM:-3G}
FIO_ZBD=${VM_FIO_ZBD:-${VM_FIO_ZBD_CI:-none}}
# Geometry of the fio-suite devices (nvme0n2, nullb1, ublkb1): 128 zones of
# 4 MiB, capacity 3 MiB, 4 KiB blocks, max open/active 14.
FIO_ZBD_ZONE=4M; FIO_ZBD_CAP=3M; FIO_ZBD_BYTES=$((128 * 4 * 1048576))
die() { echo "vm-test: $*" >&2; exit 1; }
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not found (Debian package qemu-system-x86; make deps)"

t_start=$(date +%s)
case ${VM_KERNEL:-all} in
  6.1) KERNELS=kernel ;;
  7) KERNELS=kernel7 ;;
  all) KERNELS="kernel kernel7" ;;
  *) die "VM_KERNEL must be 6.1, 7 or all (got '${VM_KERNEL}')" ;;
esac

# Workload parameters for the guest (and fio): block size, queue depth, zones, mode.
ZW=$(/usr/bin/python3 - "$ZW_BYTES" <<'PY'
import json, sys
try:
    c = json.load(open("workloads/zone-write.json"))
except (OSError, ValueError):
    c = {}
print("{},{},{},{},{}".format(c.get("block_size", 131072), c.get("queue_depth", 8), c.get("zones", 4),
                              sys.argv[1], c.get("mode", "write")))
PY
)

for kname in $KERNELS; do
  if [ "$kname" = kernel ]; then
    "$HERE/fetch-kernel.sh" "$VMDIR" 6.1
  else
    "$HERE/fetch-kernel.sh" "$VMDIR" 7
    "$HERE/fetch-fio-src.sh" "$VMDIR" || echo "vm-test: WARNING: no fio source: fio's zoned test suite is not run" >&2
    "$HERE/fetch-libzbd-src.sh" "$VMDIR" || echo "vm-test: WARNING: no libzbd source: the zbd command is not run" >&2
  fi
  "$HERE/mkinitramfs.sh" "$VMDIR" "$BUILD" "$VMDIR/initramfs-$kname.cpio" "$kname"
done

ts=$(date -u +%Y%m%dT%H%M%SZ)
OUT=results/vm/$ts
mkdir -p "$OUT"
ln -sfn "$ts" results/vm/latest
qver=$(qemu-system-x86_64 --version | head -n 1)
qrc=0

# boot_guest KERNEL_DIR DEST LIMIT EXTRA_CMDLINE: one guest run; results in DEST.
boot_guest() {
  kname=$1; dest=$2; limit=$3; extra=$4; mem=$5; qextra=${6:-}
  mkdir -p "$dest"
  kver=$(cat "$VMDIR/$kname/version")
  b_start=$(date +%s)
  cat > "$dest/meta.json" <<JSON
{"started_at": "$(date -u +%Y-%m-%dT%H:%M:%SZ)", "kernel": "$kver", "qemu": "$qver", "accel": "$ACCEL_OPT",
 "diff_ops": $DIFF_OPS, "seed": $SEED, "zone_write": "$ZW", "cmdline_extra": "$extra",
 "nvme_namespace": "zoned.zone_size=64M zoned.zone_capacity=62M zoned.max_open=14 zoned.max_active=14 lba 4096, 32 zones",
 "null_blk": "zoned=1 zone_size=64 zone_capacity=62 memory_backed=1 zone_max_open=14 zone_max_active=14 max_sectors=1024 bs=4096 gb=2"}
JSON
  # The NVMe namespace's backing file: 32 zones of 64 MiB, sparse, fresh each
  # run (zone state does not survive a QEMU restart anyway).
  img=$VMDIR/nvme-ns-$kname.img
  img2=$VMDIR/nvme-ns2-$kname.img
  rm -f "$img" "$img2"
  truncate -s 2G "$img"
  [ -n "$qextra" ] && truncate -s "$FIO_ZBD_BYTES" "$img2"

  echo "vm-test: booting $kver under QEMU ($ACCEL); guest output follows; results in $dest"
  set +e
  timeout -k 5 "$((limit + 20))" qemu-system-x86_64 \
    -machine q35 -accel "$ACCEL_OPT" -cpu max -smp 2 -m "$mem" \
    -display none -monitor none -no-reboot -nodefaults \
    -kernel "$VMDIR/$kname/vmlinux" -initrd "$VMDIR/initramfs-$kname.cpio" \
    -append "console=ttyS0 quiet loglevel=1 panic=-1 no_timer_check znslab.limit=$limit znslab.diff_ops=$DIFF_OPS znslab.seed=$SEED znslab.zw=$ZW $extra" \
    -chardev stdio,id=con,signal=off,logfile="$dest/console.log" -serial chardev:con \
    -chardev file,id=res,path="$dest/results.b64" -serial chardev:res \
    -drive file="$img",if=none,id=nvm,format=raw,cache=unsafe \
    -device nvme,serial=znslab0001,id=nvme0 \
    -device nvme-ns,drive=nvm,bus=nvme0,nsid=1,logical_block_size=4096,physical_block_size=4096,zoned=true,zoned.zone_size=64M,zoned.zone_capacity=62M,zoned.max_open=14,zoned.max_active=14 \
    $qextra </dev/null &
  qpid=$!
  # Boot watchdog: the guest's init prints "[guest] kernel" within seconds;
  # without it after BOOT_LIMIT s the kernel or initramfs is broken.
  # (no_timer_check: a loaded host makes the kernel's IO-APIC timer check fail under TCG.)
  BOOT_LIMIT=${VM_BOOT_TIMEOUT:-90}
  waited=0
  boot_failed=0
  while kill -0 "$qpid" 2>/dev/null && ! grep -q '^\[guest\] kernel' "$dest/console.log" 2>/dev/null; do
    if [ "$waited" -ge "$((BOOT_LIMIT * 2))" ]; then
      echo "vm-test: the guest did not reach its init within $BOOT_LIMIT s; stopping QEMU" >&2
      kill "$qpid" 2>/dev/null
      boot_failed=1
      break
    fi
    sleep 0.5
    waited=$((waited + 1))
  done
  wait "$qpid"
  rc=$?
  [ "$boot_failed" -eq 1 ] && rc=125
  set -e
  rm -f "$img" "$img2"
  echo "$(($(date +%s) - b_start))" > "$dest/guest-seconds"
  if [ "$rc" -ne 0 ]; then
    qrc=$rc
    if [ "$rc" -eq 125 ]; then
      echo "vm-test: the guest did not boot (no output from its init within $BOOT_LIMIT s)" >&2
    elif [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
      echo "vm-test: the guest did not power off within $((limit + 20)) s; QEMU was stopped" >&2
    else
      echo "vm-test: qemu-system-x86_64 exited with status $rc" >&2
    fi
    echo "vm-test: last console lines (kernel log):" >&2
    tail -n 40 "$dest/console.log" >&2 || true
  fi
}

# boot_guest_retry ARGS...: boot_guest, once more when the guest kernel
# died before its init started (no "[guest] kernel" line: e.g. an oops in
# early boot under TCG, seen once with the 7.3 kernel); the failed
# attempt's console is kept as console-boot1.log. A guest that reached its
# init is never re-run: its failures are results.
boot_guest_retry() {
  local qrc_before=$qrc
  boot_guest "$@"
  if ! grep -q '^\[guest\] kernel' "$2/console.log" 2>/dev/null; then
    mv "$2/console.log" "$2/console-boot1.log"
    rm -f "$2/results.b64"
    echo "vm-test: the guest kernel died before its init (console-boot1.log); booting it once more" >&2
    qrc=$qrc_before
    boot_guest "$@"
  fi
}

for kname in $KERNELS; do
  if [ "$kname" = kernel ]; then
    boot_guest_retry kernel "$OUT" "$LIMIT" "" "$MEM"
  else
    extra="znslab.fio_zbd=$FIO_ZBD"
    [ "${VM_ONLY_FIO_ZBD:-0}" = 1 ] && extra="$extra znslab.only_fio_zbd=1"
    # The suite's -w (every zone reset before each write test; default on):
    # without it a test inherits the active zones the previous one left.
    [ "${VM_FIO_ZBD_RESET_EACH:-1}" = 1 ] && extra="$extra znslab.fio_zbd_reset_each=1"
    # fio's zoned suite runs on a second device of each kind with small zones
    # (its jobs write multiples of the zone size): NVMe namespace 2.
    boot_guest_retry kernel7 "$OUT/kernel_7" "${VM_TIMEOUT7:-1500}" "$extra" "${VM_MEM7:-4G}" \
      "-drive file=$VMDIR/nvme-ns2-kernel7.img,if=none,id=nvm2,format=raw,cache=unsafe -device nvme-ns,drive=nvm2,bus=nvme0,nsid=2,logical_block_size=4096,physical_block_size=4096,zoned=true,zoned.zone_size=$FIO_ZBD_ZONE,zoned.zone_capacity=$FIO_ZBD_CAP,zoned.max_open=14,zoned.max_active=14"
  fi
done

set +e
/usr/bin/python3 "$HERE/summarize.py" "$OUT"
src=$?
set -e
echo "vm-test: $(($(date +%s) - t_start)) s in all; summary $OUT/summary.json"
if [ "$src" -ne 0 ] || [ "$qrc" -ne 0 ]; then
  for d in "$OUT" "$OUT/kernel_7"; do
    if [ -f "$d/guest/dmesg.txt" ]; then
      echo "vm-test: guest kernel log (last 20 lines of $d/guest/dmesg.txt):" >&2
      tail -n 20 "$d/guest/dmesg.txt" >&2
    fi
  done
  echo "vm-test: FAILED (see $OUT/console.log and $OUT/guest/<device>/*.log, and the same under $OUT/kernel_7)" >&2
  exit 1
fi

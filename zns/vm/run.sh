#!/bin/sh
# `make vm-test`: boot Debian's kernel under QEMU with an NVMe ZNS namespace
# and null_blk zoned, run the conformance suite, the differential trace,
# workloads/zone-write.json and fio on /dev/nvme0n1 (zbd:), /dev/ng0n1
# (nvme:) and /dev/nullb0 (zbd:), and collect the results into
# results/vm/<UTC time>/ (+ results/vm/latest, summary.json).
#
# usage: zns/vm/run.sh BUILD_DIR
# Environment: VM_ACCEL=tcg|kvm (default tcg: KVM fails nested on the CI
# host), VM_TIMEOUT (s, whole guest run, default 270), VM_DIFF_OPS (default
# 3000), VM_BOOT_TIMEOUT (s until the guest's init runs, default 60), VM_SEED (1), VM_ZW_BYTES (bytes zone-write and fio write per device,
# default 64 MiB), VM_MEM (3G).
# Exit status: 0 when every device passed (see summarize.py), 1 otherwise.
set -eu
BUILD=${1:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
VMDIR=$BUILD/vm
ACCEL=${VM_ACCEL:-tcg}
LIMIT=${VM_TIMEOUT:-270}
DIFF_OPS=${VM_DIFF_OPS:-3000}
SEED=${VM_SEED:-1}
ZW_BYTES=${VM_ZW_BYTES:-67108864}
MEM=${VM_MEM:-3G}
die() { echo "vm-test: $*" >&2; exit 1; }
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not found (Debian package qemu-system-x86; make deps)"

t_start=$(date +%s)
"$HERE/fetch-kernel.sh" "$VMDIR"
"$HERE/mkinitramfs.sh" "$VMDIR" "$BUILD" "$VMDIR/initramfs.cpio"

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

ts=$(date -u +%Y%m%dT%H%M%SZ)
OUT=results/vm/$ts
mkdir -p "$OUT"
kver=$(cat "$VMDIR/kernel/version")
qver=$(qemu-system-x86_64 --version | head -n 1)
cat > "$OUT/meta.json" <<JSON
{"started_at": "$(date -u +%Y-%m-%dT%H:%M:%SZ)", "kernel": "$kver", "qemu": "$qver", "accel": "$ACCEL",
 "diff_ops": $DIFF_OPS, "seed": $SEED, "zone_write": "$ZW",
 "nvme_namespace": "zoned.zone_size=64M zoned.zone_capacity=62M zoned.max_open=14 zoned.max_active=14 lba 4096, 32 zones",
 "null_blk": "zoned=1 zone_size=64 zone_capacity=62 memory_backed=1 zone_max_open=14 zone_max_active=14 max_sectors=1024 bs=4096 gb=2"}
JSON

# The NVMe namespace's backing file: 32 zones of 64 MiB, sparse, fresh each
# run (zone state does not survive a QEMU restart anyway).
img=$VMDIR/nvme-ns.img
rm -f "$img"
truncate -s 2G "$img"

echo "vm-test: booting $kver under QEMU ($ACCEL); guest output follows; results in $OUT"
set +e
timeout -k 5 "$((LIMIT + 20))" qemu-system-x86_64 \
  -machine q35 -accel "$ACCEL" -cpu max -smp 2 -m "$MEM" \
  -display none -monitor none -no-reboot -nodefaults \
  -kernel "$VMDIR/kernel/vmlinux" -initrd "$VMDIR/initramfs.cpio" \
  -append "console=ttyS0 quiet loglevel=1 panic=-1 znslab.limit=$LIMIT znslab.diff_ops=$DIFF_OPS znslab.seed=$SEED znslab.zw=$ZW" \
  -chardev stdio,id=con,signal=off,logfile="$OUT/console.log" -serial chardev:con \
  -chardev file,id=res,path="$OUT/results.b64" -serial chardev:res \
  -drive file="$img",if=none,id=nvm,format=raw,cache=unsafe \
  -device nvme,serial=znslab0001,id=nvme0 \
  -device nvme-ns,drive=nvm,bus=nvme0,nsid=1,logical_block_size=4096,physical_block_size=4096,zoned=true,zoned.zone_size=64M,zoned.zone_capacity=62M,zoned.max_open=14,zoned.max_active=14 </dev/null &
qpid=$!
# Boot watchdog: the guest's init prints "[guest] kernel" within seconds;
# without it after BOOT_LIMIT s the kernel or initramfs is broken.
BOOT_LIMIT=${VM_BOOT_TIMEOUT:-60}
waited=0
boot_failed=0
while kill -0 "$qpid" 2>/dev/null && ! grep -q '^\[guest\] kernel' "$OUT/console.log" 2>/dev/null; do
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
qrc=$?
[ "$boot_failed" -eq 1 ] && qrc=125
set -e
rm -f "$img"
ln -sfn "$ts" results/vm/latest
if [ "$qrc" -ne 0 ]; then
  if [ "$qrc" -eq 125 ]; then
    echo "vm-test: the guest did not boot (no output from its init within $BOOT_LIMIT s)" >&2
  elif [ "$qrc" -eq 124 ] || [ "$qrc" -eq 137 ]; then
    echo "vm-test: the guest did not power off within $((LIMIT + 20)) s; QEMU was stopped" >&2
  else
    echo "vm-test: qemu-system-x86_64 exited with status $qrc" >&2
  fi
  echo "vm-test: last console lines (kernel log):" >&2
  tail -n 40 "$OUT/console.log" >&2 || true
fi
set +e
/usr/bin/python3 "$HERE/summarize.py" "$OUT"
src=$?
set -e
echo "vm-test: $(($(date +%s) - t_start)) s in all; summary $OUT/summary.json"
if [ "$src" -ne 0 ] || [ "$qrc" -ne 0 ]; then
  if [ -f "$OUT/guest/dmesg.txt" ]; then
    echo "vm-test: guest kernel log (last 20 lines of $OUT/guest/dmesg.txt):" >&2
    tail -n 20 "$OUT/guest/dmesg.txt" >&2
  fi
  echo "vm-test: FAILED (see $OUT/console.log and $OUT/guest/<device>/*.log)" >&2
  exit 1
fi

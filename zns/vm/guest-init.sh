#!/bin/busybox sh
# /init of the znslab test guest: mount the pseudo file systems, load the
# drivers, run zns/vm/guest-tests.sh under a time limit, send the results to
# the host over the second serial port (base64 of a tar), power off.
/bin/busybox --install -s /bin
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd  # bash process substitution (fio's t/zbd suite)
mount -t tmpfs -o size=90% tmp /tmp
mount -t tmpfs -o size=64m res /results
echo "[guest] kernel $(uname -r), $(nproc) cpus, $(awk '/MemTotal/ {print $2}' /proc/meminfo) kB"

say() { echo "[guest] $*"; }
# Parameters from the kernel command line: znslab.limit=SECONDS
limit=200
for a in $(cat /proc/cmdline); do
  case $a in znslab.limit=*) limit=${a#znslab.limit=} ;; esac
done

modprobe nvme || say "ERROR: modprobe nvme failed"
modprobe null_blk nr_devices=1 zoned=1 zone_size=64 zone_capacity=62 zone_nr_conv=0 \
  memory_backed=1 zone_max_open=14 zone_max_active=14 max_sectors=1024 bs=4096 gb=2 \
  || say "ERROR: modprobe null_blk failed"
if [ -f "/lib/modules/$(uname -r)/kernel/drivers/block/ublk_drv.ko" ]; then
  modprobe ublk_drv || say "ERROR: modprobe ublk_drv failed"
fi
# nsid_dev N: the block device (nvme0nK) of QEMU's NVMe namespace N. Linux
# 6.6+ scans namespaces in parallel, so in the 7.x guest (two namespaces)
# nvme0n1 is namespace 2 in some boots; guest-tests.sh uses the same lookup.
nsid_dev() {
  for b in /sys/block/nvme*n*; do
    [ "$(cat "$b/nsid" 2>/dev/null)" = "$1" ] && { echo "${b##*/}"; return 0; }
  done
  return 1
}
i=0
while [ $i -lt 50 ] && ! { ns1=$(nsid_dev 1) && [ -b "/dev/$ns1" ] && [ -c "/dev/ng${ns1#nvme}" ] && [ -b /dev/nullb0 ]; }; do
  sleep 0.1; i=$((i + 1))
done
ns1=$(nsid_dev 1) || ns1=nvme0n1
for d in $ns1 nullb0; do
  q=/sys/block/$d/queue
  [ -d $q ] && say "$d: zoned=$(cat $q/zoned) nr_zones=$(cat $q/nr_zones) max_sectors_kb=$(cat $q/max_sectors_kb)" \
    "max_hw_sectors_kb=$(cat $q/max_hw_sectors_kb) zone_append_max_bytes=$(cat $q/zone_append_max_bytes)" \
    "max_open=$(cat $q/max_open_zones) max_active=$(cat $q/max_active_zones) scheduler=$(cat $q/scheduler)"
done
{ ls -l "/dev/$ns1" "/dev/ng${ns1#nvme}" /dev/nullb0; for b in /sys/block/nvme*n*; do echo "${b##*/}: nsid $(cat "$b/nsid")"; done; } > /results/devices.txt 2>&1
cat /results/devices.txt

cd /znslab
timeout "$limit" sh /znslab/vm/guest-tests.sh
rc=$?
[ $rc -eq 143 ] || [ $rc -eq 124 ] && say "ERROR: guest tests exceeded ${limit}s and were stopped"
echo "$rc" > /results/guest-rc
if [ $rc -ne 0 ]; then
  say "guest tests exit status $rc; kernel log (last 40 lines):"
  dmesg | tail -n 40
fi
dmesg > /results/dmesg.txt
stty -F /dev/ttyS1 raw -echo 2>/dev/null
{ echo "ZNSLAB-RESULTS-BEGIN"; tar -C /results -cf - . | base64; echo "ZNSLAB-RESULTS-END"; } > /dev/ttyS1
sync
say "done; powering off"
poweroff -f

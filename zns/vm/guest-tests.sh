#!/bin/sh
# Runs inside the guest (cwd /znslab, results under /results/<device>/):
# for each of zbd:/dev/nvme0n1, nvme:/dev/ng0n1, zbd:/dev/nullb0
#   1. the conformance suite and the real-backend test
#      (ZNS_TEST_DEV=URI znslab_tests "[zns-conformance],[zns-real],[zns-tmpfs]";
#      [zns-tmpfs]: emulator files on the guest's tmpfs under signals)
#   2. the differential trace against a same-geometry emu: device in /tmp
#   3. workloads/zone-write.json (znslab run); on nvme0n1 and ng0n1 also a
#      short workloads/tiered-churn.json (the slab spilling to the device)
#   4. fio --zonemode=zbd as the baseline with the same block size and depth
# Parameters come from the kernel command line (set by zns/vm/run.sh):
#   znslab.diff_ops=N znslab.seed=S znslab.zw=BS,QD,ZONES,BYTES,MODE
#   znslab.fio_zbd=none|all|N,N,... (tests of fio's t/zbd/test-zbd-support)
# On a kernel with ublk (/dev/ublk-control: the 7.x guest) the emulator is
# also served as /dev/ublkb0 (znslab ublk) and tested like the others
# (steps 1-4), then fio's zoned test suite runs on ublkb0, nullb0 and
# nvme0n1, and fio measures ublkb0 against nullb0 at QD 1 and QD 8.
set -u
DIFF_OPS=2000; SEED=1; ZW=131072,8,4,67108864,write; FIO_ZBD=none; ONLY_FIO_ZBD=0; FIO_ZBD_OPTS=
for a in $(cat /proc/cmdline); do
  case $a in
    znslab.fio_zbd=*) FIO_ZBD=${a#*=} ;;
    znslab.only_fio_zbd=1) ONLY_FIO_ZBD=1 ;;
    znslab.fio_zbd_reset_each=1) FIO_ZBD_OPTS=-w ;;  # the suite's -w: reset all zones before each write test
    znslab.diff_ops=*) DIFF_OPS=${a#*=} ;;
    znslab.seed=*) SEED=${a#*=} ;;
    znslab.zw=*) ZW=${a#*=} ;;
  esac
done
BS=$(echo "$ZW" | cut -d, -f1); QD=$(echo "$ZW" | cut -d, -f2); ZONES=$(echo "$ZW" | cut -d, -f3)
BYTES=$(echo "$ZW" | cut -d, -f4); MODE=$(echo "$ZW" | cut -d, -f5)
EMU_GEOM="zones=32&zone_size=64M&zone_cap=62M&max_open=14&max_active=14&lba=4096"
BIN=/znslab/build/znslab
TESTS=/znslab/build/tests/znslab_tests
say() { echo "[guest] $*"; }
now() { cut -d' ' -f1 /proc/uptime; }

# step NAME DIR SECONDS CMD...: runs CMD with a time limit, output to DIR/NAME.log
step() {
  s_name=$1; s_dir=$2; s_secs=$3; shift 3
  s_t0=$(now)
  timeout "$s_secs" "$@" > "$s_dir/$s_name.log" 2>&1
  s_rc=$?
  s_t1=$(now)
  echo "$s_rc" > "$s_dir/$s_name.rc"
  say "$(basename "$s_dir") $s_name: exit $s_rc ($(awk -v a="$s_t0" -v b="$s_t1" 'BEGIN {printf "%.1f", b - a}') s)"
  if [ "$s_rc" -ne 0 ]; then tail -n 15 "$s_dir/$s_name.log" | sed 's/^/    | /'; fi
  return 0
}

reset_all() { blkzone reset "/dev/$1" >/dev/null 2>&1 || say "WARNING: blkzone reset /dev/$1 failed"; }

# QEMU's NVMe namespaces by nsid (the kernel's nvme0nK numbering follows
# its parallel scan on 6.6+, not the nsid): namespace 1 (32 zones of 64 MiB)
# is tested as the sections nvme0n1 and ng0n1 (their uri names the device
# node), namespace 2 (7.x guest) is the fio suite's NVMe device.
nsid_dev() {
  for b in /sys/block/nvme*n*; do
    [ "$(cat "$b/nsid" 2>/dev/null)" = "$1" ] && { echo "${b##*/}"; return 0; }
  done
  return 1
}
NS1=$(nsid_dev 1) || NS1=nvme0n1
NG1=ng${NS1#nvme}
SPECS="nvme0n1=zbd:/dev/$NS1 ng0n1=nvme:/dev/$NG1 nullb0=zbd:/dev/nullb0"
UBLK_PID=
if [ -c /dev/ublk-control ]; then
  # The emulator as a zoned block device: same geometry as the others.
  mkdir -p /results/ublkb0
  rm -f /tmp/ublk-emu.img
  "$BIN" ublk --device "emu:/tmp/ublk-emu.img?$EMU_GEOM" --dev-id 0 > /results/ublkb0/server.log 2>&1 &
  UBLK_PID=$!
  i=0
  while [ $i -lt 300 ] && ! [ -b /dev/ublkb0 ]; do sleep 0.1; i=$((i + 1)); done
  if [ -b /dev/ublkb0 ]; then
    q=/sys/block/ublkb0/queue
    say "ublkb0: zoned=$(cat $q/zoned) nr_zones=$(cat $q/nr_zones) max_sectors_kb=$(cat $q/max_sectors_kb)" \
      "zone_append_max_bytes=$(cat $q/zone_append_max_bytes) max_open=$(cat $q/max_open_zones)" \
      "max_active=$(cat $q/max_active_zones) chunk_sectors=$(cat $q/chunk_sectors)"
    # blkzone (util-linux) against the emulator: open, close, finish, reset
    # of zone 1 and the condition the report shows after each.
    zs=$(cat $q/chunk_sectors)
    bz_ok=0
    for pair in open:oe close:cl finish:fu reset:em; do
      blkzone "${pair%%:*}" -o "$zs" -c 1 /dev/ublkb0 >> /results/ublkb0/blkzone.txt 2>&1
      blkzone report -o "$zs" -c 1 /dev/ublkb0 >> /results/ublkb0/blkzone.txt 2>&1
      tail -n 1 /results/ublkb0/blkzone.txt | grep -q "(${pair#*:})" || { bz_ok=1; say "ERROR: blkzone ${pair%%:*} on ublkb0: zone not ${pair#*:}"; }
    done
    echo $bz_ok > /results/ublkb0/blkzone.rc
    say "ublkb0 blkzone open/close/finish/reset: exit $bz_ok"
    # libzbd's zbd command (built from Debian's libzbd source package): the
    # device information, then open/close/finish/reset of zone 2 (offset and
    # length in bytes) with its condition in zbd's report after each.
    if [ -x /usr/bin/zbd ]; then
      zb=$((zs * 512)); zbd_ok=0
      zbd report -i -n /dev/ublkb0 > /results/ublkb0/zbd.txt 2>&1 || zbd_ok=1
      grep -q "Zones: $(cat $q/nr_zones) zones" /results/ublkb0/zbd.txt || { zbd_ok=1; say "ERROR: zbd report -i on ublkb0: wrong zone count"; }
      for pair in open:oe close:cl finish:fu reset:em; do
        zbd "${pair%%:*}" -ofst $((2 * zb)) -len "$zb" /dev/ublkb0 >> /results/ublkb0/zbd.txt 2>&1 || zbd_ok=1
        zbd report -ofst $((2 * zb)) -len "$zb" /dev/ublkb0 >> /results/ublkb0/zbd.txt 2>&1 || zbd_ok=1
        tail -n 1 /results/ublkb0/zbd.txt | grep -q "^Zone 00002: .*, ${pair#*:}, " ||
          { zbd_ok=1; say "ERROR: zbd ${pair%%:*} on ublkb0: zone 2 not ${pair#*:}"; }
      done
      echo $zbd_ok > /results/ublkb0/zbd.rc
      say "ublkb0 zbd report -i, open/close/finish/reset: exit $zbd_ok"
    fi
    SPECS="ublkb0=zbd:/dev/ublkb0 $SPECS"
  else
    say "ERROR: /dev/ublkb0 did not appear; server log:"; sed 's/^/    | /' /results/ublkb0/server.log
    echo missing > /results/ublkb0/missing
  fi
fi

# znslab.only_fio_zbd=1 (make vm-test-full's measurement runs): skip steps 1-4.
[ "$ONLY_FIO_ZBD" = 1 ] && SPECS=""
for spec in $SPECS; do
  name=${spec%%=*}; uri=${spec#*=}
  dev=${uri#*:}; blk=${dev#/dev/}; [ "$name" = ng0n1 ] && blk=$NS1
  out=/results/$name; mkdir -p "$out"
  echo "$uri" > "$out/uri"
  if [ "$name" = ng0n1 ] && [ ! -c "$dev" ] || [ "$name" != ng0n1 ] && [ ! -b "$dev" ]; then
    say "ERROR: $dev is missing"; echo missing > "$out/missing"; continue
  fi
  reset_all "$blk"
  ZNS_TEST_DEV=$uri step conformance "$out" 120 "$TESTS" "[zns-conformance],[zns-real],[zns-tmpfs]" -r xml -o "$out/conformance.xml"
  rm -f "/tmp/emu-$name.img"
  # Through ublk every command and zone report is a round trip through the
  # kernel to the server (about 10x slower per command under TCG): ublkb0
  # runs a third of the trace with 5x the time per command.
  dops=$DIFF_OPS; dlim=$((30 + DIFF_OPS / 40))
  if [ "$name" = ublkb0 ]; then dops=$((DIFF_OPS / 3)); dlim=$((30 + dops * 5 / 40)); fi
  step zone-diff "$out" "$dlim" "$BIN" zone-diff --quiet --seed "$SEED" --ops "$dops" --device "$uri" \
    --device "emu:/tmp/emu-$name.img?$EMU_GEOM" --json "$out/zone-diff.json"
  rm -f "/tmp/emu-$name.img"
  cat "$out/zone-diff.log" | tail -n 1 | sed "s/^/[guest] $name zone-diff: /"
  reset_all "$blk"
  if [ -f /znslab/workloads/zone-write.json ]; then
    zwlim=60; [ "$name" = ublkb0 ] && zwlim=240  # ublk: ~4x null_blk's time under TCG
    step zone-write "$out" "$zwlim" "$BIN" run /znslab/workloads/zone-write.json --device "$uri" --quiet \
      --set total_bytes="$BYTES" --out "$out/zone-write.json"
  else
    say "ERROR: workloads/zone-write.json missing"; echo "no workloads/zone-write.json" > "$out/zone-write.log"; echo 1 > "$out/zone-write.rc"
  fi
  # tiered-churn (issue 11): the slab spilling cold epochs to this device
  # and faulting them back (short: budget 1 MiB, 6 epochs, 2 x live data,
  # 5 % mispredicted); QEMU's NVMe namespace only (nvme0n1 via zbd:, ng0n1
  # via nvme:). Every zone is reset by the allocator at start.
  if [ "$name" = nvme0n1 ] || [ "$name" = ng0n1 ]; then
    step tiered-churn "$out" 120 "$BIN" run /znslab/workloads/tiered-churn.json --device "$uri" --quiet \
      --set slab_dram_budget_bytes=1M --set epochs=6 --set live_multiple=2 --set mispredicted_fraction=0.05 \
      --out "$out/tiered-churn.json"
  fi
  # fio baseline: one job per zone written concurrently, the workload's
  # queue depth spread over them (one write per zone in flight when QD <= zones).
  reset_all "$blk"
  per_job=$((BYTES / ZONES)); depth=$((QD / ZONES)); [ "$depth" -lt 1 ] && depth=1
  sched=/sys/block/$blk/queue/scheduler
  old=$(sed 's/.*\[\(.*\)\].*/\1/' "$sched")
  if [ "$name" = ng0n1 ]; then
    echo "fio --ioengine=io_uring_cmd --cmd_type=nvme --filename=$dev" > "$out/fio.cmd"
    step fio "$out" 60 fio --name=zw --filename=$dev --ioengine=io_uring_cmd --cmd_type=nvme \
      --zonemode=zbd --rw=write --bs="$BS" --iodepth="$depth" --numjobs="$ZONES" --size=64M --io_size="$per_job" \
      --offset_increment=64M --group_reporting --output-format=json --output="$out/fio.json"
    if [ "$(cat "$out/fio.rc")" != 0 ]; then
      say "fio io_uring_cmd on $dev failed; baseline falls back to io_uring on /dev/$blk"
      reset_all "$blk"
      echo "fio --ioengine=io_uring --filename=/dev/$blk (io_uring_cmd failed)" > "$out/fio.cmd"
      echo mq-deadline > "$sched" 2>/dev/null
      step fio "$out" 60 fio --name=zw --filename=/dev/$blk --direct=1 --ioengine=io_uring \
        --zonemode=zbd --rw=write --bs="$BS" --iodepth="$depth" --numjobs="$ZONES" --size=64M --io_size="$per_job" \
        --offset_increment=64M --group_reporting --output-format=json --output="$out/fio.json"
      echo "$old" > "$sched" 2>/dev/null
    fi
  else
    # fio's zbd mode keeps several writes of one zone in flight only with a
    # zone-write-locking scheduler: use mq-deadline for the baseline.
    echo "fio --ioengine=io_uring --direct=1 --filename=/dev/$blk (scheduler mq-deadline)" > "$out/fio.cmd"
    echo mq-deadline > "$sched" 2>/dev/null
    step fio "$out" 60 fio --name=zw --filename="/dev/$blk" --direct=1 --ioengine=io_uring \
      --zonemode=zbd --rw=write --bs="$BS" --iodepth="$depth" --numjobs="$ZONES" --size=64M --io_size="$per_job" \
      --offset_increment=64M --group_reporting --output-format=json --output="$out/fio.json"
    echo "$old" > "$sched" 2>/dev/null
  fi
  reset_all "$blk"
done
if [ -n "$UBLK_PID" ] && [ -b /dev/ublkb0 ] && [ "$ONLY_FIO_ZBD" = 0 ]; then
  # fio: the same job on the emulator through ublk and on null_blk, one zone
  # at QD 1 and at QD 8 (on 7.x zone write plugging keeps several writes of
  # one zone in flight without a zone-write-locking scheduler).
  for name in ublkb0 nullb0; do
    for qd in 1 8; do
      reset_all "$name"
      step "fio-qd$qd" "/results/$name" 150 fio --name=qd --filename="/dev/$name" --direct=1 --ioengine=io_uring \
        --zonemode=zbd --rw=write --bs="$BS" --iodepth="$qd" --size=64M \
        --output-format=json --output="/results/$name/fio-qd$qd.json"
    done
    reset_all "$name"
  done
fi
# stop_ublk: SIGTERM to the server; it must remove /dev/ublkb0 and exit 0.
stop_ublk() {
  [ -n "$UBLK_PID" ] || return 0
  kill -TERM "$UBLK_PID"
  i=0
  while [ $i -lt 100 ] && kill -0 "$UBLK_PID" 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
  if kill -0 "$UBLK_PID" 2>/dev/null; then
    say "ERROR: znslab ublk did not stop within 10 s of SIGTERM"; kill -KILL "$UBLK_PID"; echo 137 > /results/ublkb0/server.rc
  else
    wait "$UBLK_PID"; echo $? > /results/ublkb0/server.rc
  fi
  [ -b /dev/ublkb0 ] && echo present > /results/ublkb0/after-stop || echo gone > /results/ublkb0/after-stop
  say "ublkb0 server: exit $(cat /results/ublkb0/server.rc), /dev/ublkb0 $(cat /results/ublkb0/after-stop) after SIGTERM"
  UBLK_PID=
  rm -f /tmp/ublk-emu.img  # frees the guest memory its tmpfs file holds
}

stop_ublk

# fio's zoned test suite on three devices with the same small geometry (its
# jobs write multiples of the zone size): 128 zones of 4 MiB, capacity
# 3 MiB, 4 KiB blocks, max open/active 14: the emulator through ublk
# (/dev/ublkb1), null_blk (/dev/nullb1, made through configfs) and QEMU's
# NVMe namespace 2 (/dev/nvme0n2). Results go to the sections ublkb0,
# nullb0, nvme0n1 (fio-zbd.log, fio-zbd-logs/; the device is named there).
FIO_GEOM="zones=128&zone_size=4M&zone_cap=3M&max_open=14&max_active=14&lba=4096"
if [ "$FIO_ZBD" != none ] && [ -x /znslab/fio/t/zbd/test-zbd-support ] && [ -c /dev/ublk-control ]; then
  mkdir -p /sys/kernel/config 2>/dev/null
  mount -t configfs none /sys/kernel/config 2>/dev/null
  nb=/sys/kernel/config/nullb/nullb1
  if mkdir "$nb" 2>/dev/null; then
    for kv in blocksize=4096 size=512 zoned=1 zone_size=4 zone_capacity=3 zone_nr_conv=0 \
              zone_max_open=14 zone_max_active=14 memory_backed=1 max_sectors=1024 power=1; do
      echo "${kv#*=}" > "$nb/${kv%%=*}" || say "ERROR: nullb1 configfs ${kv%%=*}=${kv#*=} refused"
    done
  fi
  "$BIN" ublk --device "emu:/tmp/ublk-fio.img?$FIO_GEOM" --dev-id 1 > /results/ublkb0/server-fio.log 2>&1 &
  UBLK_PID=$!
  i=0
  while [ $i -lt 300 ] && ! [ -b /dev/ublkb1 ]; do sleep 0.1; i=$((i + 1)); done
  targs=""
  [ "$FIO_ZBD" = all ] || for t in $(echo "$FIO_ZBD" | tr , ' '); do targs="$targs -t $t"; done
  i=0
  while [ $i -lt 50 ] && ! NS2=$(nsid_dev 2); do sleep 0.1; i=$((i + 1)); done
  [ -n "$NS2" ] || NS2=nvme0n2
  for pair in ublkb0:ublkb1 nullb0:nullb1 nvme0n1:$NS2; do
    name=${pair%%:*}; dev=${pair#*:}
    mkdir -p "/results/$name"
    if ! [ -b "/dev/$dev" ]; then say "ERROR: /dev/$dev is missing: no fio zbd suite for $name"; continue; fi
    q=/sys/block/$dev/queue
    echo "/dev/$dev: zone_size $(($(cat $q/chunk_sectors) * 512)) B, nr_zones $(cat $q/nr_zones), max_open $(cat $q/max_open_zones), max_active $(cat $q/max_active_zones)" > "/results/$name/fio-zbd.device"
    say "$name fio-zbd on $(cat "/results/$name/fio-zbd.device")"
    reset_all "$dev"
    # -u: io_uring in place of libaio; -r: reset all zones first. Each
    # result line goes to the console as it comes.
    flim=1500; [ "$FIO_ZBD" = all ] && flim=7200
    s_t0=$(now)
    timeout "$flim" bash /znslab/fio/t/zbd/test-zbd-support -u -r $FIO_ZBD_OPTS $targs "/dev/$dev" > "/results/$name/fio-zbd.log" 2>&1 &
    fpid=$!
    shown=0
    while kill -0 $fpid 2>/dev/null; do
      sleep 2
      n=$(grep -c "^Running test" "/results/$name/fio-zbd.log")
      if [ "$n" -gt "$shown" ]; then
        grep "^Running test" "/results/$name/fio-zbd.log" | sed -n "$((shown + 1)),${n}p" | sed "s/^/[guest] $name fio-zbd $(now): /"
        shown=$n
      fi
    done
    wait $fpid; echo $? > "/results/$name/fio-zbd.rc"
    grep "^Running test" "/results/$name/fio-zbd.log" | sed -n "$((shown + 1)),\$p" | sed "s/^/[guest] $name fio-zbd: /"
    say "$name fio-zbd: exit $(cat "/results/$name/fio-zbd.rc") ($(awk -v a="$s_t0" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}') s)"
    mkdir -p "/results/$name/fio-zbd-logs"
    cp /znslab/fio/t/zbd/test-zbd-support.log.* "/results/$name/fio-zbd-logs/" 2>/dev/null
    rm -f /znslab/fio/t/zbd/test-zbd-support.log.*
    reset_all "$dev"
    # The emulator's data lives in guest memory (tmpfs): stop it before the
    # references fill null_blk's memory.
    if [ "$name" = ublkb0 ]; then
      kill -TERM "$UBLK_PID"; wait "$UBLK_PID"; UBLK_PID=; rm -f /tmp/ublk-fio.img
    fi
  done
fi
say "guest tests finished"

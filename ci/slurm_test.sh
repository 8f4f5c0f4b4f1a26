#!/bin/sh
# make slurm-test: a real single-node Slurm on this machine, a small sweep
# through `znslab sweep --engine slurm`, every result and the summary checked,
# every daemon this script started stopped by its pid.
#
#   ci/slurm_test.sh [ZNSLAB_BINARY]        (default build/znslab)
#
# Installs Debian slurm-wlm and munge when missing (as root, like make deps).
# munged, slurmctld and slurmd run in the foreground of background jobs with
# a generated configuration, key, sockets, state and logs in one temporary
# folder (removed at the end unless KEEP=1); the system's /etc/munge and
# /etc/slurm are not used. Ports: 16817/16818 unless SLURM_TEST_PORT is set.
# Exit status: 0 when every check passed.
set -eu

ZNSLAB=$(readlink -f "${1:-build/znslab}")
SRC=$(cd "$(dirname "$0")/.." && pwd)
SWEEP="$SRC/workloads/sweeps/smoke.json"
PORT=${SLURM_TEST_PORT:-16817}
t0=$(date +%s)

say() { printf 'slurm-test: %s\n' "$*"; }
fail() { say "FAILED: $*"; exit 1; }

[ -x "$ZNSLAB" ] || fail "no znslab binary at $ZNSLAB (run make first)"

# --- packages ------------------------------------------------------------------
missing=""
for p in ${SLURM_DEB_PKGS:-slurm-wlm munge}; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
  [ "$(id -u)" -eq 0 ] || fail "missing Debian packages:$missing; run: sudo apt-get install -y$missing"
  say "installing$missing"
  export DEBIAN_FRONTEND=noninteractive
  n=0
  # Another process may hold the dpkg lock: retry for a while.
  until apt-get install -y -qq --no-install-recommends $missing >/dev/null; do
    n=$((n + 1)); [ $n -lt 20 ] || fail "apt-get install$missing failed"
    sleep 15
  done
fi

TMP=$(mktemp -d /tmp/znslab-slurm-XXXXXX)
chmod 755 "$TMP"
PIDS=""
cleanup() {
  rc=$?
  for pid in $PIDS; do kill "$pid" 2>/dev/null || true; done
  for pid in $PIDS; do
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    kill -9 "$pid" 2>/dev/null || true
  done
  if [ $rc -ne 0 ]; then
    for f in "$TMP"/*.log; do [ -f "$f" ] && { echo "---- $f"; tail -n 20 "$f"; }; done
  fi
  if [ "${KEEP:-0}" = 1 ]; then say "kept $TMP"; else rm -rf "$TMP"; fi
  say "took $(( $(date +%s) - t0 )) s"
  exit $rc
}
trap cleanup EXIT INT TERM

# --- munge -----------------------------------------------------------------------
dd if=/dev/urandom of="$TMP/munge.key" bs=1024 count=1 2>/dev/null
chmod 400 "$TMP/munge.key"
SOCK="$TMP/munge.socket"
munged --foreground --force --key-file="$TMP/munge.key" --socket="$SOCK" --pid-file="$TMP/munged.pid" \
  --log-file="$TMP/munged.log" --seed-file="$TMP/munged.seed" >"$TMP/munged.out.log" 2>&1 &
PIDS="$PIDS $!"
i=0; until [ -S "$SOCK" ]; do i=$((i + 1)); [ $i -lt 100 ] || fail "munged did not start"; sleep 0.1; done
say "munged up (pid $!)"

# --- slurm ---------------------------------------------------------------------
NODE=$(hostname -s)
CPUS=$(nproc)
mkdir -p "$TMP/state" "$TMP/spool"
cat >"$TMP/slurm.conf" <<EOF
ClusterName=znslabtest
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=$(id -un)
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$SOCK
CredType=cred/munge
StateSaveLocation=$TMP/state
SlurmdSpoolDir=$TMP/spool
SlurmctldPidFile=$TMP/slurmctld.pid
SlurmdPidFile=$TMP/slurmd.pid
SlurmctldLogFile=$TMP/slurmctld.log
SlurmdLogFile=$TMP/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
MinJobAge=300
KillWait=5
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS State=UNKNOWN
PartitionName=znslab Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$TMP/slurm.conf"
slurmctld -D -i -f "$SLURM_CONF" >"$TMP/slurmctld.out.log" 2>&1 &
PIDS="$PIDS $!"
slurmd -D -f "$SLURM_CONF" >"$TMP/slurmd.out.log" 2>&1 &
PIDS="$PIDS $!"
i=0
until sinfo -h -N -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; do
  i=$((i + 1)); [ $i -lt 150 ] || fail "the node did not come up (sinfo: $(sinfo -h -N 2>&1))"
  sleep 0.2
done
say "slurmctld and slurmd up, node $NODE idle with $CPUS CPU(s) ($(( $(date +%s) - t0 )) s)"

# --- the sweep -------------------------------------------------------------------
OUT="$TMP/sweep"
mkdir -p "$OUT/runs/p001-glibc-r2.json/blocker"   # this run cannot write its result: fails twice
set +e
"$ZNSLAB" sweep "$SWEEP" --engine slurm --out "$OUT" --partition znslab --time 00:05:00 --resubmit 1 \
  >"$TMP/sweep1.out.log" 2>&1
rc=$?
set -e
cat "$TMP/sweep1.out.log"
[ $rc -eq 1 ] || fail "a sweep with a failing run exited $rc, expected 1"
grep -q "resubmitting 1 failed task" "$TMP/sweep1.out.log" || fail "the failed task was not resubmitted"
"${PYTHON:-python3}" - "$OUT" <<'EOF' || fail "failed run not reported as expected"
import json, sys
s = json.load(open(sys.argv[1] + "/summary.json"))
f = s["failed_runs"]
assert len(f) == 1, f
f = f[0]
assert f["name"] == "p001-glibc-r2" and f["engine"] == "slurm" and f["host"], f
assert "is a folder" in f["error"], f["error"]  # znslab run refuses the path before it runs
assert s["runs_ok"] == s["runs_total"] - 1, s["runs_ok"]
EOF
say "a failing run was resubmitted once and reported with its error"

rm -rf "$OUT/runs/p001-glibc-r2.json"
"$ZNSLAB" sweep "$SWEEP" --engine slurm --out "$OUT" --partition znslab --time 00:05:00 || fail "resumed sweep failed"
"${PYTHON:-python3}" - "$OUT" <<'EOF' || fail "results or summary wrong"
import json, os, sys
d = sys.argv[1]
s = json.load(open(d + "/summary.json"))
plan = json.load(open(d + "/plan.json"))
assert s["failed_runs"] == [], s["failed_runs"]
assert s["runs_ok"] == s["runs_total"] == len(plan["runs"]), (s["runs_ok"], s["runs_total"])
assert len(s["points"]) == len(plan["points"])
for r in plan["runs"]:
    doc = json.load(open(os.path.join(d, r["out"])))
    sw = doc["sweep"]
    assert sw["engine"] == "slurm" and sw["host"] and sw["job"]["job_id"], sw
    assert sw["allocator"] == r["allocator"] and sw["repeat"] == r["repeat"], sw
for p in s["points"]:
    for alloc, m in p["allocators"].items():
        v = m["ns_per_object"]
        assert len(v["values"]) == plan["repeats"], (p["id"], alloc, v)
        assert v["ci95_low"] <= v["median"] <= v["ci95_high"], v
print("slurm-test: %d runs valid, summary of %d points" % (len(plan["runs"]), len(s["points"])))
EOF
"$ZNSLAB" report "$OUT" >/dev/null || fail "znslab report $OUT failed"
"$ZNSLAB" sweep "$SWEEP" --engine slurm --out "$OUT" >"$TMP/sweep3.out.log" 2>&1 || fail "a complete sweep re-run failed"
grep -q "already done, 0 to run" "$TMP/sweep3.out.log" || fail "a complete sweep re-ran runs: $(head -1 "$TMP/sweep3.out.log")"
say "PASSED"

#!/bin/bash
# `make run-traces`: replays every trace of TRACES (results/traces/*.ztr) on the
# five allocators (temporal-slab once per epoch policy) and runs the same
# programs unmodified under each allocator (`znslab exec`), REPEATS times,
# interleaved; then one table and the plots (results/plot_traces.py).
# Usage: run.sh BUILD_DIR TRACES_DIR OUT_DIR REPEATS
set -euo pipefail
BUILD=${1:-build}; TRACES=${2:-results/traces}; OUT=${3:?out dir}; REPEATS=${4:-3}
CORPUS=$(dirname "$0"); WORK=$(mktemp -d /tmp/znstrace-run.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
. "$CORPUS/programs.sh"
prog_prepare
POLICIES=${POLICIES:-none time callsite oracle}
PEERS=${PEERS:-glibc jemalloc mimalloc tcmalloc}
EXEC_POLICIES=${EXEC_POLICIES:-time callsite}
mkdir -p "$OUT/replay" "$OUT/exec"
for r in $(seq "$REPEATS"); do
  for p in $PROGRAMS; do
    t="$TRACES/$p.ztr"
    [ -f "$t" ] || { echo "missing $t (make traces)" >&2; exit 1; }
    for pol in $POLICIES; do
      "$BUILD/znslab" run workloads/trace-replay.json --quiet --set trace="$t" --set epoch_policy="$pol" \
        --allocator temporal-slab --out "$OUT/replay/$p.temporal-slab-$pol.r$r.json"
    done
    for a in $PEERS; do
      "$BUILD/znslab" run workloads/trace-replay.json --quiet --set trace="$t" --allocator "$a" \
        --out "$OUT/replay/$p.$a.r$r.json"
    done
    echo "[run-traces] repeat $r: $p replayed" >&2
  done
  for p in $PROGRAMS; do
    for pol in $EXEC_POLICIES; do
      prog_run "$p" "$BUILD/znslab" exec --quiet --allocator temporal-slab --epoch-policy "$pol" \
        --out "$OUT/exec/$p.temporal-slab-$pol.r$r.json" --
    done
    for a in $PEERS; do
      prog_run "$p" "$BUILD/znslab" exec --quiet --allocator "$a" --out "$OUT/exec/$p.$a.r$r.json" --
    done
    echo "[run-traces] repeat $r: $p run unmodified" >&2
  done
done
"$BUILD/znslab" check "$OUT/replay/$(ls "$OUT/replay" | head -1)" --bounds ci/rss_bounds.json --quiet
/usr/bin/python3 results/plot_traces.py "$OUT"

#!/bin/bash
# `make traces`: records one trace per program into OUT (default
# results/traces/NAME.ztr) with build/libznstrace.so, and measures the
# recorder's overhead: wall time of each program plain and recorded
# (OUT/overhead.json). Usage: record.sh BUILD_DIR OUT_DIR
set -euo pipefail
BUILD=${1:-build}; OUT=${2:-results/traces}
CORPUS=$(dirname "$0"); WORK=$(mktemp -d /tmp/znstrace-corpus.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
. "$CORPUS/programs.sh"
mkdir -p "$OUT"
prog_prepare
now() { date +%s.%N; }
echo "[" > "$OUT/overhead.json.tmp"; sep=""
t_all=$(now)
for p in $PROGRAMS; do
  t0=$(now); prog_run "$p" env; t1=$(now)
  rm -f "$OUT/$p.ztr" "$OUT/$p.ztr".*
  prog_run "$p" env LD_PRELOAD="$PWD/$BUILD/libznstrace.so" ZNSTRACE_OUT="$PWD/$OUT/$p.ztr"; t2=$(now)
  events=$("$BUILD/znslab" trace info "$OUT/$p.ztr" --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["events"])')
  plain=$(echo "$t1 - $t0" | bc); rec=$(echo "$t2 - $t1" | bc)
  printf '%s: %s events, plain %.2f s, recorded %.2f s (x%.2f), %s bytes\n' "$p" "$events" "$plain" "$rec" \
    "$(echo "$rec / $plain" | bc -l)" "$(stat -c %s "$OUT/$p.ztr")"
  printf '%s{"program": "%s", "events": %s, "plain_seconds": %.3f, "recorded_seconds": %.3f}' "$sep" "$p" "$events" "$plain" "$rec" >> "$OUT/overhead.json.tmp"
  sep=$',\n'
done
echo "]" >> "$OUT/overhead.json.tmp"; mv "$OUT/overhead.json.tmp" "$OUT/overhead.json"
printf 'traces: %s (%.0f s)\n' "$OUT" "$(echo "$(now) - $t_all" | bc)"

#!/usr/bin/env python3
"""Table of a `make run-varslot` folder: one row per growth mode, medians
over the repeats (result files <mode>-r<k>.json, schema znslab.result/1,
workload varslot-growth). Usage: varslot_table.py DIR"""
import glob
import json
import os
import statistics
import sys


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else "results/varslot-growth/latest"
    runs = {}
    for p in sorted(glob.glob(os.path.join(d, "*-r*.json"))):
        doc = json.load(open(p))
        runs.setdefault(doc["summary"]["growth"], []).append(doc["summary"])
    cols = [("growth", "{}"), ("n", "{}"), ("growths", "{:.0f}"), ("remaps", "{:.0f}"),
            ("grow_p50_us", "{:.0f}"), ("grow_p99_us", "{:.0f}"), ("grow_cpu_p99_us", "{:.0f}"), ("af_p50_ns", "{:.0f}"),
            ("af_p99_ns", "{:.0f}"), ("seg_MiB", "{:.1f}"), ("peak_MiB", "{:.1f}"),
            ("seg/peak", "{:.3f}"), ("fallback", "{:.0f}"), ("corrupt", "{:.0f}"),
            ("recovered", "{:.0f}"), ("Mops/s", "{:.2f}")]
    rows = []
    for mode in ["remap", "extent_files", "fixed"]:
        ss = runs.get(mode)
        if not ss:
            continue
        rows.append([mode, len(ss),
                     med([s["growth_events"] for s in ss]), med([s["remaps"] for s in ss]),
                     med([s["grow_ns"]["p50"] / 1e3 for s in ss]), med([s["grow_ns"]["p99"] / 1e3 for s in ss]),
                     med([s.get("grow_cpu_ns", {"p99": float("nan")})["p99"] / 1e3 for s in ss]),
                     med([s["alloc_free_ns"]["p50"] for s in ss]), med([s["alloc_free_ns"]["p99"] for s in ss]),
                     med([s["segment_bytes_final"] / 2**20 for s in ss]), med([s["live_bytes_peak"] / 2**20 for s in ss]),
                     med([s["segment_over_peak"] for s in ss]), med([s["fallback_allocs"] for s in ss]),
                     max(s["corruptions"] for s in ss), med([s["recovered_slots"] for s in ss]),
                     med([s["ops_per_sec"] / 1e6 for s in ss])])
    cells = [[c[0] for c in cols]] + [[f.format(v) for (_, f), v in zip(cols, r)] for r in rows]
    w = [max(len(r[i]) for r in cells) for i in range(len(cols))]
    for k, r in enumerate(cells):
        print("  ".join(x.rjust(w[i]) if i else x.ljust(w[i]) for i, x in enumerate(r)))
        if k == 0:
            print("  ".join("-" * x for x in w))
    print(f"medians over repeats; corrupt = max over repeats; {d}")
    return 0 if rows and all(r[13] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Plots a zone-churn comparison folder (results/zone-churn/<time>/*.json).

Usage: /usr/bin/python3 results/plot_zone_churn.py DIR

Writes DIR/zone_churn.png (left: cumulative write amplification per epoch for
each placement policy; right: WA, zone resets and GC-copied MiB per policy)
and prints a summary table (stdout) from each result's "summary".
"""
import glob
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    d = sys.argv[1]
    runs = []
    for path in sorted(glob.glob(os.path.join(d, "*.json"))):
        with open(path) as f:
            doc = json.load(f)
        if doc.get("experiment") != "zone-churn":
            continue
        runs.append((os.path.splitext(os.path.basename(path))[0], doc))
    if not runs:
        print(f"plot_zone_churn: no zone-churn results in {d}", file=sys.stderr)
        return 1

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    for name, doc in runs:
        s = doc["samples"]
        x = [p["host_bytes_written"] / doc["summary"]["device_capacity_bytes"] for p in s]
        ax1.plot(x, [p["write_amplification"] for p in s], marker=".", label=name)
    ax1.axhline(1.05, color="grey", linestyle="--", linewidth=0.8, label="WA 1.05 target")
    ax1.set_xlabel("host bytes written / device capacity")
    ax1.set_ylabel("write amplification (cumulative)")
    ax1.set_title("zone-churn: WA over the run")
    ax1.legend()

    names = [n for n, _ in runs]
    wa = [doc["summary"]["write_amplification"] for _, doc in runs]
    resets = [doc["summary"]["zone_resets"] for _, doc in runs]
    copied = [doc["summary"]["gc_copied_bytes"] / 2**20 for _, doc in runs]
    xs = range(len(names))
    ax2.bar([i - 0.25 for i in xs], wa, width=0.25, label="WA")
    ax2b = ax2.twinx()
    ax2b.bar([i for i in xs], resets, width=0.25, color="tab:orange", label="zone resets")
    ax2b.bar([i + 0.25 for i in xs], copied, width=0.25, color="tab:green", label="GC copied MiB")
    ax2.set_xticks(list(xs))
    ax2.set_xticklabels(names)
    ax2.set_ylabel("write amplification")
    ax2b.set_ylabel("resets / MiB copied")
    h1, l1 = ax2.get_legend_handles_labels()
    h2, l2 = ax2b.get_legend_handles_labels()
    ax2.legend(h1 + h2, l1 + l2, loc="upper left", fontsize="small")
    dev = runs[0][1].get("device", {})
    ax2.set_title(f"{dev.get('backend', '?')}: {dev.get('zone_count', '?')} zones x "
                  f"{dev.get('zone_capacity', 0) / 2**20:.0f} MiB")
    fig.tight_layout()
    out = os.path.join(d, "zone_churn.png")
    fig.savefig(out, dpi=110)

    cols = ["placement", "gc", "WA", "WA after 1x", "x capacity", "resets", "finishes", "GC MiB", "util@reset",
            "MiB/s", "write p50 us", "write p99 us"]
    print(" | ".join(cols))
    for name, doc in runs:
        s = doc["summary"]
        w = doc.get("latency_ns", {}).get("write", {})
        print(" | ".join([
            s["placement"], s["gc"], f"{s['write_amplification']:.3f}",
            f"{s.get('write_amplification_after_1x', float('nan')):.3f}", f"{s['capacity_multiple_written']:.2f}",
            str(s["zone_resets"]), str(s["zone_finishes"]), f"{s['gc_copied_bytes'] / 2**20:.1f}",
            f"{s['utilisation_at_reset']:.3f}", f"{s['throughput_mib_s']:.1f}",
            f"{w.get('p50', 0) / 1000:.1f}", f"{w.get('p99', 0) / 1000:.1f}"]))
    print(f"plot: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

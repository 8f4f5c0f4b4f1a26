#!/usr/bin/python3
"""Table and plots of `make run-traces` (issue 12, docs/trace.md).

    /usr/bin/python3 results/plot_traces.py results/run-traces/latest

Reads DIR/replay/PROGRAM.CONFIG.rN.json (trace replays) and
DIR/exec/PROGRAM.CONFIG.rN.json (unmodified runs under `znslab exec`),
takes medians over the repeats N and writes:
  table.txt            one table: replay and unmodified figures per program
                       and allocator (printed too)
  rss_PROGRAM.png      RSS over time per allocator: replay (left) and the
                       unmodified run (right), first repeat
Exit status 0 when the table was written.
"""
import glob
import json
import os
import re
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

MIB = 1048576.0


def load(folder):
    runs = {}
    for path in sorted(glob.glob(os.path.join(folder, "*.json"))):
        m = re.match(r"(.+?)\.(.+)\.r(\d+)\.json$", os.path.basename(path))
        if not m:
            continue
        with open(path) as f:
            runs.setdefault((m.group(1), m.group(2)), []).append((int(m.group(3)), json.load(f)))
    return runs


def med(docs, key):
    vals = [d["summary"].get(key) for _, d in docs if d["summary"].get(key) is not None]
    return statistics.median(vals) if vals else None


def fmt(v, scale=1.0, digits=1):
    return "-" if v is None else f"{v / scale:.{digits}f}"


def main(folder):
    replay, execs = load(os.path.join(folder, "replay")), load(os.path.join(folder, "exec"))
    programs = sorted({p for p, _ in replay} | {p for p, _ in execs})
    lines = []
    hdr = (f"{'program':9} {'allocator':24} {'ops':>9} {'Mops/s':>7} {'ns/op':>7} {'peak+':>8} {'drain+':>8} "
           f"{'fallb%':>6} {'mispr%':>6} | {'wall s':>7} {'peak':>8} {'drain':>8} {'minflt':>9} {'n':>2}")
    lines += [hdr, "-" * len(hdr)]
    for p in programs:
        configs = sorted({c for q, c in replay if q == p} | {c for q, c in execs if q == p})
        for c in configs:
            r, e = replay.get((p, c), []), execs.get((p, c), [])
            ops = med(r, "ops_replayed")
            fb = None
            if r and ops:
                fb = 100.0 * med(r, "fallback_ops") / ops
            n = max(len(r), len(e))
            lines.append(
                f"{p:9} {c:24} {fmt(ops, 1, 0):>9} {fmt(med(r, 'ops_per_sec'), 1e6, 2):>7} "
                f"{fmt(med(r, 'ns_per_op'), 1, 0):>7} {fmt(med(r, 'peak_rss_over_baseline_bytes'), MIB):>8} "
                f"{fmt(med(r, 'post_drain_over_baseline_bytes'), MIB):>8} {fmt(fb):>6} {fmt(med(r, 'mispredicted_pct')):>6} | "
                f"{fmt(med(e, 'wall_seconds'), 1, 2):>7} {fmt(med(e, 'peak_rss_bytes'), MIB):>8} "
                f"{fmt(med(e, 'post_drain_rss_bytes'), MIB):>8} {fmt(med(e, 'minor_faults'), 1, 0):>9} {n:>2}")
        lines.append("")
    lines.append("replay: ops, Mops/s, ns/op (wall, incl. touching pages), peak+ = peak RSS over the")
    lines.append("pre-replay baseline (MiB), drain+ = RSS after freeing everything minus that baseline")
    lines.append("(MiB), fallb% = ops sent to the >768 B fallback, mispr% = objects live")
    lines.append("when their epoch closed. unmodified (znslab exec): wall s, peak RSS (MiB), drain = last")
    lines.append("RSS sample before exit (MiB), minor faults. Medians over n repeats.")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(folder, "table.txt"), "w") as f:
        f.write(text)
    print(text)
    for p in programs:
        fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
        for ax, runs, title in ((axes[0], replay, "trace replay"), (axes[1], execs, "unmodified program")):
            for (q, c), docs in sorted(runs.items()):
                if q != p:
                    continue
                d = sorted(docs, key=lambda x: x[0])[0][1]
                samples = [s for s in d["samples"] if "rss_bytes" in s]
                t0 = samples[0]["t_ns"] if samples else 0  # replay: the "start" sample (trace loaded)
                pts = [((s["t_ns"] - t0) / 1e9, s["rss_bytes"] / MIB) for s in samples]
                if pts:
                    ax.plot([x for x, _ in pts], [y for _, y in pts], label=c, linewidth=1)
            ax.set_title(f"{p}: {title}")
            ax.set_xlabel("time (s)")
            ax.set_ylabel("RSS (MiB)")
            ax.grid(alpha=0.3)
            if ax.get_lines():
                ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(os.path.join(folder, f"rss_{p}.png"), dpi=110)
        plt.close(fig)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "results/run-traces/latest"))

#!/usr/bin/python3
"""Plots a sweep folder written by `znslab sweep` (its summary.json, schema
znslab.sweep-summary/1).

    /usr/bin/python3 results/plot_sweep.py DIR [--metrics m1,m2|all]
    make plot DIR=...          (results/plot.py hands sweep folders to this script)

For each metric, DIR/plots/<metric>.png has one panel per swept parameter:
the metric's median against that parameter, the 95 % interval of the median
as a band, one line per allocator (and per value of the other swept
parameters: "glibc, threads=2"). Numeric parameters use a numeric axis,
others (placement) are categories in the sweep file's order. Default
metrics: the headline ones present (ns_per_object, post_free_rss_bytes,
write_amplification, ...); byte metrics in MiB.

Uses matplotlib (Debian python3-matplotlib). Exit status 0 when at least one
plot was written, 1 otherwise.
"""
import itertools
import json
import os
import sys
import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

HEADLINE = ["ns_per_object", "ops_per_sec", "post_free_rss_bytes", "peak_rss_bytes", "retention_pct",
            "rss_stability_pct", "committed_drift_pct", "write_amplification", "throughput_mib_s",
            "latency_ns.alloc.p99", "latency_ns.free.p99", "latency_ns.write.p99"]


def interval(agg, metric):
    """The {median, ci95_low, ci95_high} of `metric` in one allocator's aggregate, or None."""
    if metric.startswith("latency_ns."):
        op, _, pct = metric[len("latency_ns."):].rpartition(".")
        return agg.get("latency_ns", {}).get(op, {}).get(pct)
    v = agg.get(metric)
    return v if isinstance(v, dict) and "median" in v else None


def all_metrics(summary):
    names = set()
    for p in summary["points"]:
        for agg in p["allocators"].values():
            names |= {k for k, v in agg.items() if isinstance(v, dict) and "median" in v}
            for op, pcts in agg.get("latency_ns", {}).items():
                names |= {f"latency_ns.{op}.{pct}" for pct in pcts}
    return sorted(names)


def label_of(v):
    return v if isinstance(v, str) else json.dumps(v)


def plot_metric(summary, metric, folder):
    axes_def = summary.get("axes", {})
    keys = list(axes_def)
    if not keys:
        return None
    scale, unit = (1 / 2**20, " (MiB)") if metric.endswith("_bytes") else (1, "")
    if metric.startswith("latency_ns."):
        unit = " (ns)"
    allocs = sorted({a for p in summary["points"] for a in p["allocators"]})
    colours = {a: plt.cm.tab10(i % 10) for i, a in enumerate(allocs)}
    styles = ["-", "--", ":", "-."]
    markers = ["o", "s", "^", "D", "v", "x"]
    fig, panels = plt.subplots(1, len(keys), figsize=(5.6 * len(keys), 5.4), squeeze=False)
    drew = False
    for ax, key in zip(panels[0], keys):
        values = axes_def[key]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        xpos = {label_of(v): (v if numeric else i) for i, v in enumerate(values)}
        others = [k for k in keys if k != key]
        combos = list(itertools.product(*[axes_def[k] for k in others])) or [()]
        for ci, combo in enumerate(combos):
            fixed = dict(zip(others, combo))
            for a in allocs:
                xs, med, lo, hi = [], [], [], []
                for p in summary["points"]:
                    if any(p["params"].get(k) != v for k, v in fixed.items()):
                        continue
                    iv = interval(p["allocators"].get(a, {}), metric)
                    if iv is None:
                        continue
                    xs.append(xpos[label_of(p["params"][key])])
                    med.append(iv["median"] * scale)
                    lo.append(iv["ci95_low"] * scale)
                    hi.append(iv["ci95_high"] * scale)
                if not xs:
                    continue
                order = sorted(range(len(xs)), key=lambda i: xs[i])
                xs, med, lo, hi = ([s[i] for i in order] for s in (xs, med, lo, hi))
                ax.plot(xs, med, styles[ci % len(styles)], marker=markers[ci % len(markers)],
                        color=colours[a])
                ax.fill_between(xs, lo, hi, color=colours[a], alpha=0.15, linewidth=0)
                drew = True
        if numeric and len(values) <= 12:
            ax.set_xticks(values)
        if not numeric:
            ax.set_xticks(range(len(values)))
            ax.set_xticklabels([label_of(v) for v in values])
        ax.set_xlabel(key)
        ax.set_ylabel(metric + unit)
        ax.grid(True, alpha=0.3)
        # Colour = allocator, line style and marker = values of the other swept parameters.
        handles = [Line2D([], [], color=colours[a], label=a) for a in allocs]
        if others:
            handles += [Line2D([], [], color="0.4", linestyle=styles[ci % len(styles)],
                               marker=markers[ci % len(markers)],
                               label=", ".join(f"{k}={label_of(v)}" for k, v in zip(others, combo)))
                        for ci, combo in enumerate(combos)]
        ax.legend(handles=handles, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=3,
                  frameon=False)
    if not drew:
        plt.close(fig)
        return None
    workload = os.path.basename(str(summary.get("workload", "")))
    fixed = ", ".join(f"{k}={label_of(v)}" for k, v in summary.get("set", {}).items())
    n = summary.get("repeats", "?")
    coverage = min((iv.get("ci_coverage", 1.0) for p in summary["points"] for a in p["allocators"].values()
                    for iv in [interval(a, metric)] if iv), default=1.0)
    band = ("95 % interval of the median" if coverage >= 0.95
            else f"[min, max] band (covers the median with {100 * coverage:.0f} %)")
    width = max(50, int(75 * len(keys)))
    lines = [f"{workload}: {metric}"] + textwrap.wrap(f"median of {n} repeats, {band}", width)
    if fixed:
        lines += textwrap.wrap(fixed, width)
    fig.suptitle("\n".join(lines), fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.035 * len(lines)))
    os.makedirs(os.path.join(folder, "plots"), exist_ok=True)
    out = os.path.join(folder, "plots", metric.replace("/", "_") + ".png")
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    folder = argv[0]
    metrics = None
    if len(argv) >= 3 and argv[1] == "--metrics":
        metrics = argv[2].split(",")
    path = os.path.join(folder, "summary.json")
    try:
        with open(path) as f:
            summary = json.load(f)
    except (OSError, ValueError) as e:
        print(f"plot_sweep: {path}: {e}", file=sys.stderr)
        return 1
    present = all_metrics(summary)
    if metrics == ["all"]:
        metrics = present
    elif metrics is None:
        metrics = [m for m in HEADLINE if m in present] or present
    written = [w for w in (plot_metric(summary, m, folder) for m in metrics) if w]
    for w in written:
        print(f"plot: wrote {w}")
    if not written:
        print(f"plot_sweep: {folder}: nothing to plot (no swept parameter or no metric)", file=sys.stderr)
    return 0 if written else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

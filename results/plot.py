#!/usr/bin/python3
"""Plots one result folder written by `znslab compare` (or any folder of
znslab.result/1 JSON files, one per allocator).

    /usr/bin/python3 results/plot.py results/churn/latest     (make plot DIR=...)

churn results:
  rss.png        RSS per cycle for each allocator: after the cycle's frees
                 (post_free, solid) and at the cycle's peak (dashed); the
                 live bytes of the pinned objects (dotted) for reference.
  committed.png  the allocator's committed bytes per cycle (peak and
                 post_free) next to its live bytes; only allocators that
                 expose the counter (temporal-slab) appear.
  timeline.png   RSS against time from every sample (periodic included).
  speed.png      ns per object (alloc phase + free phase) per cycle.
tiered-churn results (make run-tiered; docs/tiered.md):
  tiered_rss.png RSS above the baseline (before the first slab allocation)
                 against time for each label, the run nearest the label's
                 median peak RSS, with the DRAM budget as a line.
  tiered_wa.png  write amplification (device bytes written / slab bytes
                 spilled) and ops/s per label: median over the repeats with
                 [min..max] bars.
alternating results:
  latency.png    alloc and free latency percentiles (p50, p90, p99, p99.9)
                 per allocator, log scale, and throughput.

Lines are keyed by the result's label (`--label`, default the allocator), so
two configurations of one allocator stay two lines. In a folder written with
--repeats, the per-run files <label>.r<k>.json are skipped in favour of
<label>.json (the run nearest the median). Subtitles list the keys that
differ from the workload file.

Uses matplotlib (Debian python3-matplotlib); run it with /usr/bin/python3.
Exit status 0 when at least one plot was written, 1 otherwise.
"""
import glob
import json
import os
import re
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402

ORDER = ["temporal-slab", "glibc", "jemalloc", "mimalloc", "tcmalloc"]
MIB = 1024.0 * 1024.0


def load(folder):
    docs = {}
    paths = sorted(glob.glob(os.path.join(folder, "*.json")))
    names = {os.path.basename(p) for p in paths}
    for path in paths:
        base = os.path.basename(path)
        if base == "summary.json":
            continue
        m = re.match(r"^(.*)\.r[0-9]+\.json$", base)
        if m and (m.group(1) + ".json") in names:
            continue  # a single repeat; <label>.json is the median run
        try:
            with open(path) as f:
                d = json.load(f)
        except (OSError, ValueError) as e:
            print(f"plot: skipping {path}: {e}", file=sys.stderr)
            continue
        if d.get("schema") != "znslab.result/1":
            continue
        name = (d.get("label") or (d.get("allocator") or {}).get("name")
                or os.path.splitext(base)[0])
        if name in docs:
            name = os.path.splitext(base)[0]
        docs[name] = d
    return dict(sorted(docs.items(), key=lambda kv: (ORDER.index(kv[0]) if kv[0] in ORDER else 99, kv[0])))


def intervals(folder):
    """{label: {metric: {median, ci95_low, ci95_high, values}}} from the
    folder's summary.json (written by compare / run --repeats), or {}."""
    try:
        with open(os.path.join(folder, "summary.json")) as f:
            s = json.load(f)
    except (OSError, ValueError):
        return {}
    a = s.get("allocators")
    return a if isinstance(a, dict) else {}


def changed_keys(doc):
    """Workload keys whose value differs from the workload file (or the --set
    arguments when the file cannot be read)."""
    cfg = doc.get("config") or {}
    path = doc.get("workload_file")
    base = None
    if path:
        try:
            with open(path) as f:
                base = json.load(f)
        except (OSError, ValueError):
            base = None
    if base is not None:
        return {k: v for k, v in cfg.items() if k != "workload" and k in base and base[k] != v}
    out = {}
    argv = doc.get("command") or []
    for i, a in enumerate(argv):
        if a == "--set" and i + 1 < len(argv) and "=" in argv[i + 1]:
            k = argv[i + 1].split("=", 1)[0]
            if k in cfg:
                out[k] = cfg[k]
    return out


def readable_log_axis(ax, axis="y"):
    """Log axis with plain-number tick labels (10, 100, 1000, not 10^2)."""
    fmt = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}")
    a = ax.yaxis if axis == "y" else ax.xaxis
    a.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    a.set_major_formatter(fmt)
    a.set_minor_formatter(matplotlib.ticker.NullFormatter())


def per_cycle(doc, phase, field):
    xs, ys = [], []
    for s in doc.get("samples", []):
        if s.get("phase") == phase and s.get("cycle") is not None and s.get(field) is not None:
            xs.append(s["cycle"])
            ys.append(s[field] / MIB)
    return xs, ys


def title_of(docs, what):
    any_doc = next(iter(docs.values()))
    c = any_doc.get("config", {})
    src = any_doc.get("workload_file") or any_doc.get("experiment")
    diffs = {}
    for name, d in docs.items():
        for k, v in changed_keys(d).items():
            diffs.setdefault(k, set()).add(json.dumps(v))
    if diffs:
        params = "changed from " + str(src) + ": " + ", ".join(
            f"{k}={'|'.join(sorted(v))}" for k, v in sorted(diffs.items()))
    else:
        params = f"as in {src}: " + ", ".join(
            f"{k}={c[k]}" for k in ["cycles", "objects_per_cycle", "threads", "pinned_fraction"] if k in c)
    return f"{any_doc.get('experiment')}: {what}\n{params}"


def steady_start(doc):
    return (doc.get("summary") or {}).get("steady_state_first_cycle")


def plot_churn(docs, folder):
    written = []
    colors = {}
    fig, ax = plt.subplots(figsize=(11, 6))
    for i, (name, d) in enumerate(docs.items()):
        x, y = per_cycle(d, "post_free", "rss_bytes")
        (line,) = ax.plot(x, y, label=f"{name} RSS after frees", linewidth=1.6)
        colors[name] = line.get_color()
        x, y = per_cycle(d, "peak", "rss_bytes")
        ax.plot(x, y, "--", color=colors[name], linewidth=0.9, alpha=0.7, label=f"{name} RSS at peak")
    for name, d in docs.items():
        x, y = per_cycle(d, "post_free", "objects_live_bytes")
        if x:
            ax.plot(x, y, ":", color="black", linewidth=1.2, label=f"live bytes after frees ({name})")
            break
    base = next(((d.get("summary") or {}).get("baseline_rss_bytes") for d in docs.values()
                 if (d.get("summary") or {}).get("baseline_rss_bytes") is not None), None)
    if base:
        ax.axhline(base / MIB, color="grey", linestyle="-.", linewidth=0.8,
                   label="process RSS before the first allocation")
    s0 = next((steady_start(d) for d in docs.values() if steady_start(d) is not None), None)
    if s0:
        ax.axvline(s0, color="grey", linewidth=0.8)
        ax.text(s0, ax.get_ylim()[1] * 0.98, " steady state", va="top", fontsize=8, color="grey")
    ax.set_xlabel("cycle")
    ax.set_ylabel("RSS (MiB)")
    ax.set_ylim(bottom=0)
    ax.set_title(title_of(docs, "RSS per cycle (/proc/self/statm)"))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc="center right")
    fig.tight_layout()
    out = os.path.join(folder, "rss.png")
    fig.savefig(out, dpi=110)
    plt.close(fig)
    written.append(out)

    fig, ax = plt.subplots(figsize=(11, 6))
    have = False
    for name, d in docs.items():
        x, y = per_cycle(d, "post_free", "committed_bytes")
        if not x:
            continue
        have = True
        c = colors.get(name)
        ax.plot(x, y, color=c, linewidth=1.6, label=f"{name} committed after frees")
        x, y = per_cycle(d, "peak", "committed_bytes")
        ax.plot(x, y, "--", color=c, linewidth=0.9, alpha=0.7, label=f"{name} committed at peak")
        x, y = per_cycle(d, "post_free", "live_bytes")
        ax.plot(x, y, ":", color="black", linewidth=1.2, label=f"{name} live bytes after frees")
        drift = (d.get("summary") or {}).get("committed_drift_pct")
        if drift is not None:
            ax.text(0.01, 0.97, f"{name}: committed drift {drift:.2f} %", transform=ax.transAxes,
                    va="top", fontsize=9)
    no_counter = [n for n, d in docs.items() if not per_cycle(d, "post_free", "committed_bytes")[0]]
    if no_counter:
        ax.text(0.01, 0.90, "no committed-bytes counter: " + ", ".join(no_counter), transform=ax.transAxes,
                va="top", fontsize=8, color="grey")
    ax.set_xlabel("cycle")
    ax.set_ylabel("bytes (MiB)")
    ax.set_ylim(0, max(ax.get_ylim()[1], 1.0) * 1.2)  # room for the notes at the top
    ax.set_title(title_of(docs, "allocator committed bytes per cycle"))
    ax.grid(True, alpha=0.3)
    if have:
        ax.legend(fontsize=8, loc="center right")
    fig.tight_layout()
    out = os.path.join(folder, "committed.png")
    fig.savefig(out, dpi=110)
    plt.close(fig)
    written.append(out)

    fig, ax = plt.subplots(figsize=(11, 5))
    for name, d in docs.items():
        pts = [(s["t_ns"] / 1e9, s["rss_bytes"] / MIB) for s in d.get("samples", []) if s.get("rss_bytes") is not None]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], color=colors.get(name), linewidth=0.8, label=name)
    ax.set_xlabel("time since start of run (s)")
    ax.set_ylabel("RSS (MiB)")
    ax.set_ylim(bottom=0)
    ax.set_title(title_of(docs, "RSS over time (every sample)"))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = os.path.join(folder, "timeline.png")
    fig.savefig(out, dpi=110)
    plt.close(fig)
    written.append(out)

    fig, ax = plt.subplots(figsize=(11, 5))
    have = False
    for name, d in docs.items():
        n = (d.get("config") or {}).get("objects_per_cycle")
        alloc = {s["cycle"]: s["alloc_phase_ns"] for s in d.get("samples", [])
                 if s.get("phase") == "peak" and s.get("alloc_phase_ns") is not None}
        free = {s["cycle"]: s["free_phase_ns"] for s in d.get("samples", [])
                if s.get("phase") == "post_free" and s.get("free_phase_ns") is not None}
        cyc = sorted(set(alloc) & set(free))
        if not n or not cyc:
            continue
        have = True
        ax.plot(cyc, [(alloc[c] + free[c]) / n for c in cyc], color=colors.get(name), linewidth=1.2,
                label=f"{name} (whole run: {(d.get('summary') or {}).get('ns_per_object', 0):.0f} ns/object)")
    if have:
        ax.set_yscale("log")
        readable_log_axis(ax)
        ax.set_xlabel("cycle")
        ax.set_ylabel("ns per object (alloc + free phases, wall)")
        ax.set_title(title_of(docs, "speed per cycle"))
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        out = os.path.join(folder, "speed.png")
        fig.savefig(out, dpi=110)
        written.append(out)
    plt.close(fig)
    return written


def plot_latency(docs, folder):
    qs = [("p50", "p50"), ("p90", "p90"), ("p99", "p99"), ("p999", "p99.9")]
    names = list(docs)
    fig, axes = plt.subplots(1, 3, figsize=(14, 5))
    for ax, op in zip(axes[:2], ["alloc", "free"]):
        width = 0.8 / len(qs)
        for j, (k, label) in enumerate(qs):
            vals = [((docs[n].get("latency_ns") or {}).get(op) or {}).get(k, 0) for n in names]
            ax.bar([i + j * width for i in range(len(names))], vals, width, label=label)
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(names))])
        ax.set_xticklabels(names, rotation=20, fontsize=8)
        ax.set_yscale("log")
        readable_log_axis(ax)
        ax.set_ylabel("ns (timer overhead included)")
        ax.set_title(f"{op} latency")
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    ops = [(docs[n].get("summary") or {}).get("ops_per_sec", 0) / 1e6 for n in names]
    iv = [intervals(folder).get(n, {}).get("ops_per_sec") for n in names]
    if all(iv):
        med = [i["median"] / 1e6 for i in iv]
        err = [[m - i["ci95_low"] / 1e6 for m, i in zip(med, iv)], [i["ci95_high"] / 1e6 - m for m, i in zip(med, iv)]]
        axes[2].bar(names, med, yerr=err, capsize=6)
        axes[2].set_title(f"throughput: median of {len(iv[0]['values'])} runs, 95 % interval")
    else:
        axes[2].bar(names, ops)
    axes[2].set_ylabel("Mops/s (alloc + free)")
    if not all(iv):
        axes[2].set_title("throughput (batch pass)")
    axes[2].tick_params(axis="x", rotation=20, labelsize=8)
    fig.suptitle(title_of(docs, "latency and throughput").replace("\n", "  "))
    fig.tight_layout()
    out = os.path.join(folder, "latency.png")
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return [out]


def tiered_groups(folder):
    """{label: [result, ...]} of every tiered-churn result in the folder
    (each repeat <label>.r<k>.json counted), labels in file order."""
    groups = {}
    for path in sorted(glob.glob(os.path.join(folder, "*.json"))):
        try:
            with open(path) as f:
                d = json.load(f)
        except (OSError, ValueError):
            continue
        if d.get("schema") != "znslab.result/1" or d.get("experiment") != "tiered-churn":
            continue
        label = d.get("label") or os.path.splitext(os.path.basename(path))[0]
        groups.setdefault(label, []).append(d)
    return groups


def median_of(values):
    v = sorted(values)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2.0


def plot_tiered(folder):
    groups = tiered_groups(folder)
    if not groups:
        return []
    written = []
    fig, ax = plt.subplots(figsize=(11, 6))
    budget = None
    for label, runs in groups.items():
        peaks = [(r.get("summary") or {}).get("peak_rss_bytes", 0) for r in runs]
        med = median_of(peaks)
        d = min(runs, key=lambda r: abs((r.get("summary") or {}).get("peak_rss_bytes", 0) - med))
        summ = d.get("summary") or {}
        base = summ.get("baseline_rss_bytes", 0)
        budget = budget or summ.get("dram_budget_bytes")
        pts = [(s["t_ns"] / 1e9, (s["rss_bytes"] - base) / MIB) for s in d.get("samples", [])
               if s.get("rss_bytes") is not None and s.get("phase") in ("epoch", "end")]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], linewidth=1.3,
                    label=f"{label} (over budget {summ.get('rss_over_budget_pct', 0):.1f} %, "
                          f"median of {len(runs)})")
    if budget:
        ax.axhline(budget / MIB, color="black", linestyle="--", linewidth=1.0, label="DRAM budget")
    ax.set_xlabel("time since start of run (s)")
    ax.set_ylabel("RSS - baseline RSS (MiB)")
    ax.set_ylim(bottom=0)
    ax.set_title(title_of({k: v[0] for k, v in groups.items()}, "RSS over time above the baseline"))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = os.path.join(folder, "tiered_rss.png")
    fig.savefig(out, dpi=110)
    plt.close(fig)
    written.append(out)

    names = list(groups)
    fig, axes = plt.subplots(1, 2, figsize=(12, 5))
    for ax, metric, ylabel in [(axes[0], "write_amplification", "device bytes written / slab bytes spilled"),
                               (axes[1], "ops_per_sec", "ops/s (alloc + free + access)")]:
        meds, lo, hi = [], [], []
        for n in names:
            v = [(r.get("summary") or {}).get(metric) or 0 for r in groups[n]]
            m = median_of(v)
            meds.append(m)
            lo.append(m - min(v))
            hi.append(max(v) - m)
        ax.bar(names, meds, yerr=[lo, hi], capsize=6)
        for i, m in enumerate(meds):
            ax.text(i, m, f"{m:.3f}" if metric == "write_amplification" else f"{m:.3g}", ha="center",
                    va="bottom", fontsize=8)
        ax.set_ylabel(ylabel)
        ax.set_title(f"{metric}: median, [min..max] bars")
        ax.grid(True, axis="y", alpha=0.3)
        ax.tick_params(axis="x", rotation=15, labelsize=8)
    fig.suptitle(title_of({k: v[0] for k, v in groups.items()}, "write amplification and speed").replace("\n", "  "))
    fig.tight_layout()
    out = os.path.join(folder, "tiered_wa.png")
    fig.savefig(out, dpi=110)
    plt.close(fig)
    written.append(out)
    return written


def is_sweep_folder(folder):
    try:
        with open(os.path.join(folder, "summary.json")) as f:
            return json.load(f).get("schema") == "znslab.sweep-summary/1"
    except (OSError, ValueError, AttributeError):
        return False


def main():
    if len(sys.argv) != 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0 if len(sys.argv) == 2 else 2
    folder = sys.argv[1]
    if not os.path.isdir(folder):
        print(f"plot: {folder}: not a folder", file=sys.stderr)
        return 1
    if is_sweep_folder(folder):  # a `znslab sweep` folder: metric against swept parameters
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import plot_sweep
        return plot_sweep.main([folder])
    docs = load(folder)
    if not docs:
        print(f"plot: {folder}: no znslab.result/1 JSON files", file=sys.stderr)
        return 1
    experiments = {d.get("experiment") for d in docs.values()}
    written = []
    if "churn" in experiments:
        written += plot_churn({n: d for n, d in docs.items() if d.get("experiment") == "churn"}, folder)
    if "tiered-churn" in experiments:
        written += plot_tiered(folder)
    if experiments & {"alternating"} or not written:
        lat = {n: d for n, d in docs.items() if d.get("latency_ns")}
        if lat and "churn" not in experiments:
            written += plot_latency(lat, folder)
    for w in written:
        print(f"plot: wrote {w}")
    return 0 if written else 1


if __name__ == "__main__":
    sys.exit(main())

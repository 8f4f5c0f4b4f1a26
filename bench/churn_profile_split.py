#!/usr/bin/env python3
"""Splits a perf profile of a churn run into cost categories (issue 14).

    perf record -e cpu-clock -F 10000 -g -o P.data \\
        build/znslab run workloads/churn.json --set cycles=150 -q -o R.json
    bench/churn_profile_split.py P.data

Each sample goes to the first category (in the order of RULES) one of whose
keys occurs in a frame of its call stack, leaf to root; samples matching
none are "harness" (the harness loops, its fill memset, timers). Prints the
percentage of all samples per category, then per thread id.
"""
import collections
import subprocess
import sys

RULES = [
    ("sampler (smaps_rollup)", ["smaps", "show_smap", "seq_read"]),
    ("madvise populate", ["madvise_populate", "faultin_page_range", "__get_user_pages"]),
    ("madvise dontneed", ["madvise_dontneed", "zap_page_range", "unmap_page_range", "do_madvise"]),
    ("page fault", ["asm_exc_page_fault", "exc_page_fault", "handle_mm_fault"]),
    ("decommit_pending", ["decommit_pending"]),
    ("drain_bin", ["drain_bin"]),
    ("acquire_slab", ["acquire_slab"]),
    ("free", ["SlabAllocator::free", "release_bit", "free_body", "tc_"]),
    ("allocate", ["SlabAllocator::allocate", "allocate_shared", "finish_alloc"]),
]


def classify(stack):
    for name, keys in RULES:
        for frame in stack:
            if any(k in frame for k in keys):
                return name
    return "harness"


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: churn_profile_split.py PERF_DATA")
    out = subprocess.run(["perf", "script", "-i", sys.argv[1], "-F", "tid,ip,sym"],
                         capture_output=True, text=True, check=True).stdout
    cats, by_tid = collections.Counter(), collections.Counter()
    total = 0
    tid, stack = None, []

    def flush():
        nonlocal total
        if not stack:
            return
        total += 1
        c = classify(stack)
        cats[c] += 1
        by_tid[(tid or "?", c)] += 1

    for line in out.splitlines():
        if not line.strip():
            flush()
            tid, stack = None, []
        elif line[0] in " \t":
            parts = line.strip().split(None, 1)
            stack.append(parts[1] if len(parts) > 1 else "")
        else:
            tid = line.split()[0]
    flush()
    if not total:
        sys.exit("no samples")
    print(f"samples {total}")
    for c, v in cats.most_common():
        print(f"{c:26s} {100.0 * v / total:5.1f} %")
    print("per thread:")
    for (t, c), v in sorted(by_tid.items()):
        if v / total >= 0.003:
            print(f"  {t:>8s} {c:26s} {100.0 * v / total:5.1f} %")


if __name__ == "__main__":
    main()

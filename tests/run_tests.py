#!/usr/bin/env python3
"""Runs everything `make test` checks and prints one closing line.

1. The Catch2 suite (build/tests/znslab_tests) with the XML reporter: each
   test case counts as passed, failed, or skipped (a test that printed
   "SKIPPED: <reason>", see tests/skip.h). Assertions are reported too.
2. The RSS-bound check (ci/rss_bounds.json): each run listed there executes
   `znslab run`, then `znslab check RESULT --bounds ci/rss_bounds.json`;
   each run counts as one check, passed or failed. Under SANITIZE builds the
   check is skipped with the reason printed (shadow memory makes RSS
   meaningless).

3. Short libFuzzer runs (tests/fuzz.mk, `make fuzz` for long ones): each
   fuzz target runs FUZZ_SHORT_RUNS inputs (default 3000) with seed 1 and
   counts as one check; skipped when clang++ is missing.

The last line is "N passed, N failed, N skipped" (test cases + checks).
Exit status: 0 when nothing failed.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET


def run_catch(binary, extra_args):
    """Returns (passed, failed, skipped, assertions_ok, assertions_failed, ok)."""
    with tempfile.NamedTemporaryFile(suffix=".xml", delete=False) as tmp:
        xml_path = tmp.name
    cmd = [binary, "-r", "xml", "-o", xml_path, "--durations", "no"] + extra_args
    print("+ " + " ".join(cmd), flush=True)
    proc = subprocess.run(cmd)
    try:
        tree = ET.parse(xml_path)
    except (ET.ParseError, FileNotFoundError) as e:
        print(f"run_tests: could not read Catch2 XML report ({e}); exit status {proc.returncode}")
        return 0, 1, 0, 0, 0, False
    finally:
        try:
            os.unlink(xml_path)
        except OSError:
            pass
    passed = failed = skipped = 0
    root = tree.getroot()
    for tc in root.iter("TestCase"):
        name = tc.get("name")
        res = tc.find("OverallResult")
        ok = res is not None and res.get("success") == "true"
        out = "".join(x.text or "" for x in tc.iter("StdOut"))
        skip_lines = [l for l in out.splitlines() if l.startswith("SKIPPED:")]
        if not ok:
            failed += 1
            print(f"FAILED:  {name}")
        elif skip_lines:
            skipped += 1
            print(f"SKIPPED: {name}: {skip_lines[0][len('SKIPPED:'):].strip()}")
        else:
            passed += 1
    totals = root.find("OverallResults")
    a_ok = int(totals.get("successes", 0)) if totals is not None else 0
    a_fail = int(totals.get("failures", 0)) if totals is not None else 0
    if proc.returncode != 0 and failed == 0:
        # Crash or runner error not attributed to a test case.
        failed += 1
        print(f"FAILED:  {binary} exited with status {proc.returncode}")
    return passed, failed, skipped, a_ok, a_fail, True


def run_bounds(build, bounds_path):
    """Returns (passed, failed)."""
    with open(bounds_path) as f:
        spec = json.load(f)
    znslab = os.path.join(build, "znslab")
    passed = failed = 0
    outdir = os.path.join(build, "rss-check")
    os.makedirs(outdir, exist_ok=True)
    for run in spec.get("runs", []):
        name = run["name"]
        out = os.path.join(outdir, name + ".json")
        cmd = [znslab, "run", run["workload"], "--allocator", run["allocator"], "--out", out]
        for k, v in run.get("set", {}).items():
            cmd += ["--set", f"{k}={json.dumps(v) if not isinstance(v, str) else v}"]
        print("+ " + " ".join(cmd), flush=True)
        r = subprocess.run(cmd)
        if r.returncode != 0:
            print(f"FAILED:  rss-bound run {name}: znslab run exited {r.returncode}")
            failed += 1
            continue
        cmd = [znslab, "check", out, "--bounds", bounds_path]
        print("+ " + " ".join(cmd), flush=True)
        r = subprocess.run(cmd)
        if r.returncode == 0:
            passed += 1
            print(f"PASSED:  rss-bound check {name}")
        else:
            failed += 1
            print(f"FAILED:  rss-bound check {name}")
    return passed, failed


def run_fuzz(runs):
    """Returns (passed, failed, skipped): one check per fuzz target."""
    import re
    import shutil
    names = ["uri", "workload", "slab_handles"]
    if shutil.which("clang++") is None:
        print("SKIPPED: fuzz targets: clang++ not installed (Debian clang, libclang-rt-14-dev)")
        return 0, 0, len(names)
    print("+ make -s fuzz-build", flush=True)
    if subprocess.run(["make", "-s", "fuzz-build"]).returncode != 0:
        print("FAILED:  fuzz targets: make fuzz-build failed")
        return 0, len(names), 0
    passed = failed = 0
    for n in names:
        # New inputs go to the first folder: a scratch one, never the seeds.
        scratch = tempfile.mkdtemp(prefix="fuzz-" + n + "-")
        cmd = [os.path.join("build", "fuzz", "fuzz_" + n), f"-runs={runs}", "-seed=1",
               "-print_final_stats=1", "-artifact_prefix=build/fuzz/crash-" + n + "-",
               scratch, os.path.join("tests", "fuzz", "corpus", n)]
        print("+ " + " ".join(cmd), flush=True)
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        shutil.rmtree(scratch, ignore_errors=True)
        m = re.search(r"stat::number_of_executed_units: (\d+)", r.stdout)
        units = m.group(1) if m else "?"
        if r.returncode == 0:
            passed += 1
            print(f"PASSED:  fuzz_{n}: {units} runs")
        else:
            failed += 1
            print(r.stdout[-3000:])
            print(f"FAILED:  fuzz_{n}: exit {r.returncode} after {units} runs (input in build/fuzz/crash-{n}-*)")
    return passed, failed, 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build", help="build folder (build, build/asan, build/tsan)")
    ap.add_argument("--sanitize", default="", help="asan|tsan|'' (skips the RSS check when set)")
    ap.add_argument("--bounds", default="ci/rss_bounds.json")
    ap.add_argument("catch_args", nargs="*", help="extra Catch2 arguments (test spec)")
    args = ap.parse_args()

    passed, failed, skipped, a_ok, a_fail, _ = run_catch(
        os.path.join(args.build, "tests", "znslab_tests"), args.catch_args)
    print(f"catch2: {passed} test cases passed, {failed} failed, {skipped} skipped; "
          f"{a_ok} assertions passed, {a_fail} failed")

    if args.sanitize:
        print(f"SKIPPED: rss-bound check: SANITIZE={args.sanitize} build (sanitizer shadow "
              f"memory makes RSS meaningless)")
        skipped += 1
    else:
        p, f = run_bounds(args.build, args.bounds)
        passed += p
        failed += f

    p, f, s = run_fuzz(int(os.environ.get("FUZZ_SHORT_RUNS", "3000")))
    passed += p
    failed += f
    skipped += s

    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

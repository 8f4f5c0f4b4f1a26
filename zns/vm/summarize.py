#!/usr/bin/python3
"""Turn the guest's results into results/vm/<ts>/summary.json.

usage: summarize.py OUT_DIR

Reads OUT_DIR/results.b64 (the guest's second serial port: base64 of a tar
between ZNSLAB-RESULTS-BEGIN/END), unpacks it into OUT_DIR/guest/, and
writes OUT_DIR/summary.json with one object per device (nvme0n1, ng0n1,
nullb0):
  uri                     the znslab device URI tested
  passed, failed, skipped conformance test cases ([zns-conformance]); a test
                          that printed "SKIPPED:" counts as skipped
  mismatches              differential trace vs emu: (znslab zone-diff)
  documented_differences  commands failing on both with different classes
                          (zbd: only; see README "documented differences")
  diff_ops                commands in the trace; diff_failed_commands: of them,
                          commands that failed on the device (must-fail ones)
  throughput_mib_s        workloads/zone-write.json summary.throughput_mib_s (MiB/s)
  fio_throughput_mib_s    fio --zonemode=zbd write bandwidth (MiB/s)
  fio_ratio               throughput_mib_s / fio_throughput_mib_s
  tiered_churn            (nvme0n1, ng0n1) a short workloads/tiered-churn.json
                          spilling to the device: spilled_bytes, faultback_ns
                          (p50, p99), write_amplification, ok (exit 0, slabs
                          spilled and faulted back, no corrupt object)
  ok                      no failed test, >= 1 passed test, 0 mismatches,
                          both throughputs measured
  errors                  what went wrong, in words
plus guest_seconds (the guest run's wall time) at the top level.
The 7.x guest's run (OUT/kernel_7/) goes under "kernel_7" with the same
layout and the device ublkb0 (the emulator through `znslab ublk`); its
devices may also carry
  fio_zbd                 fio's t/zbd/test-zbd-support: passed, failed, skipped
                          (counts), passed_tests, failed_tests, skipped_tests
                          (test numbers), exit_status, seconds
  fio_qd1_mib_s, fio_qd8_mib_s  one-zone fio write (ublkb0, nullb0)
  server_exit_status, removed_after_sigterm  (ublkb0) the clean stop
  blkzone_ok, zbd_ok      (ublkb0) blkzone and libzbd's zbd command gave the
                          expected zone conditions (zbd_ok null: no zbd built)
and kernel_7.fio_zbd_emulator_regressions lists the tests that pass on
nullb0 or nvme0n1 but not on ublkb0 (must be empty).
Exit status 0 when every device is ok, else 1 (prints a table either way).
"""
import base64
import io
import json
import os
import re
import sys
import tarfile
import xml.etree.ElementTree as ET

DEVICES = [("nvme0n1", "zbd:/dev/nvme0n1"), ("ng0n1", "nvme:/dev/ng0n1"), ("nullb0", "zbd:/dev/nullb0")]
# The 7.x guest adds the emulator served through ublk (znslab ublk).
DEVICES_7 = [("ublkb0", "zbd:/dev/ublkb0")] + DEVICES


def read(path, default=None):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


def unpack(out):
    raw = read(os.path.join(out, "results.b64"), "")
    b = raw.find("ZNSLAB-RESULTS-BEGIN")
    e = raw.find("ZNSLAB-RESULTS-END")
    if b < 0 or e < 0:
        return "the guest sent no results (no ZNSLAB-RESULTS-END on the second serial port)"
    data = base64.b64decode("".join(raw[b + len("ZNSLAB-RESULTS-BEGIN"):e].split()))
    dest = os.path.join(out, "guest")
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        t.extractall(dest)
    return None


def conformance(d, r):
    path = os.path.join(d, "conformance.xml")
    rc = (read(os.path.join(d, "conformance.rc"), "?") or "?").strip()
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as ex:
        r["errors"].append(f"conformance suite produced no report (exit {rc}): {ex}")
        r["failed"] += 1
        return
    for tc in root.iter("TestCase"):
        res = tc.find("OverallResult")
        ok = res is not None and res.get("success") == "true"
        text = "".join(x.text or "" for x in tc.iter("StdOut"))
        if not ok:
            r["failed"] += 1
            r["failed_tests"].append(tc.get("name"))
        elif any(l.startswith("SKIPPED:") for l in text.splitlines()):
            r["skipped"] += 1
        else:
            r["passed"] += 1
    if r["passed"] + r["failed"] + r["skipped"] == 0:
        r["errors"].append(f"no [zns-conformance] test case ran (exit {rc})")


def fio_zbd(d):
    """Parse fio's t/zbd/test-zbd-support output ("Running test NN ... PASS|FAIL|SKIP")."""
    log = read(os.path.join(d, "fio-zbd.log"))
    if log is None:
        return None
    r = {"passed": 0, "failed": 0, "skipped": 0, "passed_tests": [], "failed_tests": [], "skipped_tests": [],
         "exit_status": None, "seconds": None}
    for m in re.finditer(r"Running test (\d+) \.\.\. *(?:\x1b\[[0-9;]*m)?(PASS|FAIL|SKIP)", log):
        n, st = int(m.group(1)), m.group(2)
        key = {"PASS": "passed", "FAIL": "failed", "SKIP": "skipped"}[st]
        r[key] += 1
        r[key + "_tests"].append(n)
    rc = (read(os.path.join(d, "fio-zbd.rc"), "") or "").strip()
    r["exit_status"] = int(rc) if rc.lstrip("-").isdigit() else None
    r["device"] = (read(os.path.join(d, "fio-zbd.device"), "") or "").strip() or None
    m = re.search(r"Run time: (\d+):(\d+):(\d+)", log)
    if m:
        r["seconds"] = int(m.group(1)) * 3600 + int(m.group(2)) * 60 + int(m.group(3))
    return r


def fio_bw(d, name):
    try:
        text = read(os.path.join(d, name), "") or ""
        f = json.loads(text[text.find("{"):])  # fio may print a note before the JSON
        return sum(j["write"]["bw"] for j in f["jobs"]) / 1024.0
    except (ValueError, KeyError, TypeError):
        return None


def tiered(d, r):
    """The short tiered-churn run on this device (issue 11) -> r["tiered_churn"]."""
    t = {"spilled_bytes": None, "faultback_ns": None, "write_amplification": None, "ok": False}
    try:
        s = json.loads(read(os.path.join(d, "tiered-churn.json"), ""))["summary"]
        t["spilled_bytes"] = s["spilled_bytes"]
        t["faultback_ns"] = {"p50": s["faultback_ns"]["p50"], "p99": s["faultback_ns"]["p99"]}
        t["write_amplification"] = s["write_amplification"]
        rc = (read(os.path.join(d, "tiered-churn.rc"), "") or "").strip()
        t["ok"] = rc == "0" and s["spilled_bytes"] > 0 and s["faultbacks"] > 0 and s["corrupt_objects"] == 0
        if not t["ok"]:
            r["errors"].append(f"tiered-churn: exit {rc or '?'}, spilled {s['spilled_bytes']} B, "
                               f"{s['faultbacks']} fault-backs, {s['corrupt_objects']} corrupt objects")
    except (ValueError, KeyError, TypeError):
        r["errors"].append("tiered-churn produced no result: " +
                           (read(os.path.join(d, "tiered-churn.log"), "") or "")[-300:])
    r["tiered_churn"] = t


def summarize_run(out, devices):
    """One guest run in OUT (results.b64, meta.json): returns (summary dict, ok)."""
    summary = {}
    err = unpack(out)
    meta = read(os.path.join(out, "meta.json"))
    if meta:
        summary.update(json.loads(meta))
    secs = (read(os.path.join(out, "guest-seconds"), "") or "").strip()
    summary["guest_seconds"] = int(secs) if secs.isdigit() else None
    g = os.path.join(out, "guest")
    guest_rc = (read(os.path.join(g, "guest-rc"), "") or "").strip()
    summary["guest_exit_status"] = int(guest_rc) if guest_rc.isdigit() else None
    summary["error"] = err
    all_ok = err is None and guest_rc == "0"
    for name, uri in devices:
        d = os.path.join(g, name)
        # The guest names the device node it tested (NVMe: by nsid).
        uri = (read(os.path.join(d, "uri"), "") or "").strip() or uri
        r = {"uri": uri, "passed": 0, "failed": 0, "skipped": 0, "failed_tests": [], "mismatches": None,
             "documented_differences": None, "diff_ops": None, "diff_failed_commands": None,
             "throughput_mib_s": None, "fio_throughput_mib_s": None, "fio_ratio": None,
             "fio_command": (read(os.path.join(d, "fio.cmd"), "") or "").strip() or None, "errors": []}
        if err:
            r["errors"].append(err)
        elif os.path.exists(os.path.join(d, "missing")) or not os.path.isdir(d):
            r["errors"].append(f"/dev/{name} did not appear in the guest")
        else:
            conformance(d, r)
            try:
                z = json.loads(read(os.path.join(d, "zone-diff.json"), ""))
                r["mismatches"] = z["mismatches"]
                r["documented_differences"] = z["documented_differences"]
                r["diff_ops"] = z["ops_run"]
                r["diff_failed_commands"] = z["failed_commands"]
                if z.get("error"):
                    r["errors"].append("zone-diff: " + z["error"])
                if z["mismatches"]:
                    first = z["recorded"][0] if z["recorded"] else {}
                    r["errors"].append(f"zone-diff: {z['mismatches']} mismatches; first at op "
                                       f"{first.get('op_index')}: expected {first.get('expected')}, "
                                       f"got {first.get('got')}")
                    r["first_mismatch"] = first
            except (ValueError, KeyError, TypeError):
                r["errors"].append("zone-diff produced no JSON: " +
                                   (read(os.path.join(d, "zone-diff.log"), "") or "")[-300:])
            try:
                w = json.loads(read(os.path.join(d, "zone-write.json"), ""))
                r["throughput_mib_s"] = w["summary"]["throughput_mib_s"]
            except (ValueError, KeyError, TypeError):
                r["errors"].append("zone-write produced no result: " +
                                   (read(os.path.join(d, "zone-write.log"), "") or "")[-300:])
            if name in ("nvme0n1", "ng0n1"):
                tiered(d, r)
            r["fio_throughput_mib_s"] = fio_bw(d, "fio.json")
            if r["fio_throughput_mib_s"] is None:
                r["errors"].append("fio produced no result: " + (read(os.path.join(d, "fio.log"), "") or "")[-300:])
            if r["throughput_mib_s"] and r["fio_throughput_mib_s"]:
                r["fio_ratio"] = r["throughput_mib_s"] / r["fio_throughput_mib_s"]
            # 7.x guest: one-zone fio writes at QD 1 and QD 8 (ublkb0, nullb0).
            for qd in (1, 8):
                if os.path.exists(os.path.join(d, f"fio-qd{qd}.json")):
                    r[f"fio_qd{qd}_mib_s"] = fio_bw(d, f"fio-qd{qd}.json")
            z = fio_zbd(d)
            if z is not None:
                r["fio_zbd"] = z
            if name == "ublkb0":
                src = (read(os.path.join(d, "server.rc"), "") or "").strip()
                r["server_exit_status"] = int(src) if src.isdigit() else None
                r["removed_after_sigterm"] = (read(os.path.join(d, "after-stop"), "") or "").strip() == "gone"
                bz = (read(os.path.join(d, "blkzone.rc"), "") or "").strip()
                r["blkzone_ok"] = bz == "0"
                if bz != "0":
                    r["errors"].append("blkzone open/close/finish/reset on /dev/ublkb0 did not give the expected "
                                       "zone conditions (see blkzone.txt)")
                zb = read(os.path.join(d, "zbd.rc"))
                r["zbd_ok"] = None if zb is None else zb.strip() == "0"
                if r["zbd_ok"] is False:
                    r["errors"].append("libzbd's zbd report -i/open/close/finish/reset on /dev/ublkb0 did not give "
                                       "the expected device information and zone conditions (see zbd.txt)")
                if r["server_exit_status"] != 0 or not r["removed_after_sigterm"]:
                    r["errors"].append(f"znslab ublk did not stop cleanly on SIGTERM (exit {src or '?'}, "
                                       f"/dev/ublkb0 {'removed' if r['removed_after_sigterm'] else 'still present'})")
        r["ok"] = (not r["errors"] and r["failed"] == 0 and r["passed"] > 0 and r["mismatches"] == 0
                   and r["fio_ratio"] is not None)
        all_ok = all_ok and r["ok"]
        summary[name] = r  # one object per device, keyed by device name
    # fio zbd target: every test passing on null_blk or QEMU's ZNS passes on the emulator (ublkb0).
    if "ublkb0" in summary and "fio_zbd" in summary["ublkb0"]:
        ref = set()
        for n in ("nullb0", "nvme0n1"):
            ref |= set(summary.get(n, {}).get("fio_zbd", {}).get("passed_tests", []))
        emu_only = sorted(ref - set(summary["ublkb0"]["fio_zbd"]["passed_tests"]))
        summary["fio_zbd_emulator_regressions"] = emu_only
        if emu_only:
            summary["ublkb0"]["errors"].append(f"fio zbd tests passing on a reference but not on the emulator: {emu_only}")
            summary["ublkb0"]["ok"] = False
            all_ok = False
    summary["ok"] = all_ok
    return summary, all_ok


def print_table(title, summary, devices):
    print(title)
    fmt = "{:<8} {:>6} {:>6} {:>7} {:>10} {:>10} {:>9} {:>9} {:>6}  {}"
    print(fmt.format("device", "passed", "failed", "skipped", "mismatches", "doc.diffs", "MiB/s", "fio MiB/s",
                     "ratio", "status"))

    def n(v, p=1):
        return "-" if v is None else (f"{v:.{p}f}" if isinstance(v, float) else str(v))
    for name, _ in devices:
        r = summary[name]
        print(fmt.format(name, r["passed"], r["failed"], r["skipped"], n(r["mismatches"]),
                         n(r["documented_differences"]), n(r["throughput_mib_s"]), n(r["fio_throughput_mib_s"]),
                         n(r["fio_ratio"], 2), "ok" if r["ok"] else "FAIL"))
        for e in r["errors"]:
            print(f"  {name}: {e}")
        for t in r["failed_tests"]:
            print(f"  {name}: failed test: {t}")
    for name, _ in devices:
        r = summary[name]
        if "fio_qd1_mib_s" in r or "fio_qd8_mib_s" in r:
            print(f"  {name}: fio one-zone write QD1 {n(r.get('fio_qd1_mib_s'))} MiB/s, "
                  f"QD8 {n(r.get('fio_qd8_mib_s'))} MiB/s")
        t = r.get("tiered_churn")
        if t:
            fb = t.get("faultback_ns") or {}
            print(f"  {name}: tiered-churn: spilled {n(t['spilled_bytes'])} B, fault-back p50/p99 "
                  f"{n(fb.get('p50'))}/{n(fb.get('p99'))} ns, WA {n(t['write_amplification'], 3)}, "
                  f"{'ok' if t['ok'] else 'FAIL'}")
        z = r.get("fio_zbd")
        if z:
            print(f"  {name}: fio t/zbd: {z['passed']} passed, {z['failed']} failed, {z['skipped']} skipped"
                  f" (failed {z['failed_tests']}, skipped {z['skipped_tests']}; {n(z['seconds'])} s)")


def main():
    out = sys.argv[1]
    summary = {"schema": "znslab.vm-summary/2"}
    all_ok = True
    ran = False
    if os.path.exists(os.path.join(out, "meta.json")):  # the 6.1 guest: top level
        s61, ok = summarize_run(out, DEVICES)
        summary.update(s61)
        all_ok = all_ok and ok
        ran = True
    k7 = os.path.join(out, "kernel_7")
    if os.path.exists(os.path.join(k7, "meta.json")):
        s7, ok = summarize_run(k7, DEVICES_7)
        summary["kernel_7"] = s7
        all_ok = all_ok and ok
        ran = True
    summary["ok"] = all_ok and ran
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")
    if "nvme0n1" in summary:
        print_table(f"kernel {summary.get('kernel')} ({summary.get('guest_seconds')} s):", summary, DEVICES)
    if "kernel_7" in summary:
        s7 = summary["kernel_7"]
        print_table(f"kernel {s7.get('kernel')} ({s7.get('guest_seconds')} s):", s7, DEVICES_7)
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

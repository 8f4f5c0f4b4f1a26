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
  ok                      no failed test, >= 1 passed test, 0 mismatches,
                          both throughputs measured
  errors                  what went wrong, in words
Exit status 0 when every device is ok, else 1 (prints a table either way).
"""
import base64
import io
import json
import os
import sys
import tarfile
import xml.etree.ElementTree as ET

DEVICES = [("nvme0n1", "zbd:/dev/nvme0n1"), ("ng0n1", "nvme:/dev/ng0n1"), ("nullb0", "zbd:/dev/nullb0")]


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


def main():
    out = sys.argv[1]
    summary = {"schema": "znslab.vm-summary/1"}
    err = unpack(out)
    meta = read(os.path.join(out, "meta.json"))
    if meta:
        summary.update(json.loads(meta))
    g = os.path.join(out, "guest")
    guest_rc = (read(os.path.join(g, "guest-rc"), "") or "").strip()
    summary["guest_exit_status"] = int(guest_rc) if guest_rc.isdigit() else None
    summary["error"] = err
    all_ok = err is None and guest_rc == "0"
    for name, uri in DEVICES:
        d = os.path.join(g, name)
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
            try:
                f = json.loads(read(os.path.join(d, "fio.json"), ""))
                r["fio_throughput_mib_s"] = sum(j["write"]["bw"] for j in f["jobs"]) / 1024.0
            except (ValueError, KeyError, TypeError):
                r["errors"].append("fio produced no result: " + (read(os.path.join(d, "fio.log"), "") or "")[-300:])
            if r["throughput_mib_s"] and r["fio_throughput_mib_s"]:
                r["fio_ratio"] = r["throughput_mib_s"] / r["fio_throughput_mib_s"]
        r["ok"] = (not r["errors"] and r["failed"] == 0 and r["passed"] > 0 and r["mismatches"] == 0
                   and r["fio_ratio"] is not None)
        all_ok = all_ok and r["ok"]
        summary[name] = r  # one object per device, keyed by device name
    summary["ok"] = all_ok
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")
    fmt = "{:<8} {:>6} {:>6} {:>7} {:>10} {:>10} {:>9} {:>9} {:>6}  {}"
    print(fmt.format("device", "passed", "failed", "skipped", "mismatches", "doc.diffs", "MiB/s", "fio MiB/s",
                     "ratio", "status"))

    def n(v, p=1):
        return "-" if v is None else (f"{v:.{p}f}" if isinstance(v, float) else str(v))
    for name, _ in DEVICES:
        r = summary[name]
        print(fmt.format(name, r["passed"], r["failed"], r["skipped"], n(r["mismatches"]),
                         n(r["documented_differences"]), n(r["throughput_mib_s"]), n(r["fio_throughput_mib_s"]),
                         n(r["fio_ratio"], 2), "ok" if r["ok"] else "FAIL"))
        for e in r["errors"]:
            print(f"  {name}: {e}")
        for t in r["failed_tests"]:
            print(f"  {name}: failed test: {t}")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())

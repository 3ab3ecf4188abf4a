#!/usr/bin/env python3
"""Asserts a `glasnode test --json` result against one row of the scenario table.

usage: verdicts.py RESULT.json BOTTLENECK_MBPS EXPECT NORMAL

EXPECT: space-separated terms PORT/DIRECTION=VERDICTS[/BASIS] or PORT/DIRECTION!=VERDICTS,
  PORT bt|neutral|*, DIRECTION upload|download|*, VERDICTS one verdict or several joined by ","
  (none, throttled, blocked, reset-injected, inconclusive), BASIS none|content|port.
  Every verdict selected by PORT/DIRECTION must satisfy the term; a term that selects nothing
  fails.
NORMAL: space-separated terms KIND/PORT/DIRECTION>=FRACTION: the median rate of the selected
  flows (KIND bt|control|*) must be at least FRACTION x the bottleneck (flows the policy does
  not target ran at the path's normal rate). A term that selects no flow fails.
Besides the terms, the result must have one verdict for each direction x port.
Prints the verdicts, the flows and one PASS/FAIL line per check; exit 0 when all pass, else 1.
"""

import json
import re
import statistics
import sys

DIRECTIONS = ("upload", "download")
PORTS = ("bt", "neutral")
VERDICTS = {"none", "throttled", "blocked", "reset-injected", "inconclusive"}
BASES = {"none", "content", "port"}


def load(path):
    text = open(path, encoding="utf-8", errors="replace").read()
    try:
        return json.loads(text)
    except ValueError:
        # Tolerate log lines before the document: take the last line that parses.
        for line in reversed(text.splitlines()):
            if line.startswith("{"):
                try:
                    return json.loads(line)
                except ValueError:
                    continue
    raise ValueError("no JSON document in %s" % path)


def matches(sel, value):
    return sel == "*" or sel == value


def fmt(x):
    return "-" if x is None else ("%.3g" % x if isinstance(x, float) else str(x))


def main():
    path, bottleneck, expect, normal = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]
    checks = []

    def check(ok, msg):
        checks.append((bool(ok), msg))

    try:
        doc = load(path)
    except (OSError, ValueError) as exc:
        print("FAIL  the agent's output is not a JSON result: %s" % exc)
        return 1
    verdicts = doc.get("verdicts") if isinstance(doc.get("verdicts"), list) else []
    flows = doc.get("flows") if isinstance(doc.get("flows"), list) else []

    print("test_id %s, duration %s s" % (doc.get("test_id"), fmt(doc.get("duration_s"))))
    print("  %-9s %-8s %-15s %-8s %9s %9s %9s %7s" % (
        "direction", "port", "verdict", "basis", "bt_mbps", "ctl_mbps", "ks_p", "area"))
    for v in verdicts:
        print("  %-9s %-8s %-15s %-8s %9s %9s %9s %7s" % (
            v.get("direction"), v.get("port"), v.get("verdict"), v.get("basis"),
            fmt(v.get("bt_mbps")), fmt(v.get("control_mbps")), fmt(v.get("ks_p")),
            fmt(v.get("area"))))
    print("  flows (direction port kind Mbit/s end):")
    for f in flows:
        print("    %-9s %-8s %-8s %8s  %s" % (f.get("direction"), f.get("port"), f.get("kind"),
                                             fmt(f.get("mbps")), f.get("end")))

    for d in DIRECTIONS:
        for p in PORTS:
            n = sum(1 for v in verdicts if v.get("direction") == d and v.get("port") == p)
            check(n == 1, "one verdict for %s on port %s (found %d)" % (d, p, n))
    for v in verdicts:
        check(v.get("verdict") in VERDICTS and v.get("basis") in BASES,
              "verdict fields are known values (%s/%s)" % (v.get("verdict"), v.get("basis")))

    for term in expect.split():
        m = re.fullmatch(r"(bt|neutral|\*)/(upload|download|\*)(!?=)([a-z,-]+)(?:/([a-z]+))?", term)
        if not m:
            check(False, "expectation term %r is malformed" % term)
            continue
        port, direction, op, want, basis = m.groups()
        wanted = set(want.split(","))
        sel = [v for v in verdicts
               if matches(port, v.get("port")) and matches(direction, v.get("direction"))]
        check(sel, "%s selects at least one verdict" % term)
        for v in sel:
            got = v.get("verdict")
            ok = (got in wanted) if op == "=" else (got not in wanted)
            if basis is not None and op == "=":
                ok = ok and v.get("basis") == basis
            check(ok, "%s on port %s: verdict %s basis %s, expected %s" % (
                v.get("direction"), v.get("port"), got, v.get("basis"), term))

    for term in normal.split():
        m = re.fullmatch(r"(bt|control|\*)/(bt|neutral|\*)/(upload|download|\*)>=([0-9.]+)", term)
        if not m:
            check(False, "normal-rate term %r is malformed" % term)
            continue
        kind, port, direction, frac = m.groups()
        rates = [float(f.get("mbps") or 0.0) for f in flows
                 if matches(kind, f.get("kind")) and matches(port, f.get("port"))
                 and matches(direction, f.get("direction"))]
        need = float(frac) * bottleneck
        if not rates:
            check(False, "%s selects at least one flow" % term)
            continue
        med = statistics.median(rates)
        check(med >= need, "%s: median of %d flows %.2f Mbit/s, need >= %.2f" % (
            term, len(rates), med, need))

    failed = [msg for ok, msg in checks if not ok]
    for ok, msg in checks:
        print("%s  %s" % ("PASS" if ok else "FAIL", msg))
    print("%d of %d checks failed" % (len(failed), len(checks)) if failed
          else "all %d checks passed" % len(checks))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Asserts a `glasnode test --json` result against one row of the scenario table.

usage: verdicts.py RESULT.json BOTTLENECK_MBPS EXPECT NORMAL

BOTTLENECK_MBPS: the link's rate, one number for both directions or DOWN/UP (download = B to A,
  upload = A to B), e.g. 50 or 50/5.
EXPECT: space-separated terms PORT/DIRECTION=VERDICTS[/BASIS] or PORT/DIRECTION!=VERDICTS,
  PORT bt|neutral|*, DIRECTION upload|download|*, VERDICTS one verdict or several joined by ","
  (none, throttled, blocked, reset-injected, inconclusive), BASIS none|content|port|endpoint.
  Every verdict selected by PORT/DIRECTION must satisfy the term; a term that selects nothing
  fails.
NORMAL: "-" (no flow the policy leaves alone: nothing to check) or space-separated terms
  KIND/PORT/DIRECTION>=FRACTION: EVERY selected flow (KIND bt|control|*) must have run at at
  least FRACTION x the bottleneck of its own direction, or x the test's pacing cap
  (max_rate_mbps) when that is lower (the flows the policy does not target ran at the path's
  normal rate; one slow flow is enough to fail).
  KIND/PORT/DIRECTION~FRACTION: EVERY selected flow must have run at at least FRACTION x the
  median of the selected flows of its own direction in this run: the rate this machine's path
  gave this test, so a slower machine moves the reference, not the check, and one flow the
  policy slowed stands out.
  The worst flow is reported with its sample intervals (how many fell below half the flow's
  median interval: stalls, or a rate that was low throughout). A term that selects no flow
  fails.
Besides the terms, the result must have one verdict for each direction x port.
Prints the verdicts, the flows, the bytes they moved and one PASS/FAIL line per check; exit 0
when all pass, else 1.
"""

import json
import re
import sys

DIRECTIONS = ("upload", "download")
PORTS = ("bt", "neutral")
VERDICTS = {"none", "throttled", "blocked", "reset-injected", "inconclusive"}
BASES = {"none", "content", "port", "endpoint"}


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


def median(xs):
    xs = sorted(xs)
    if not xs:
        return None
    mid = len(xs) // 2
    return xs[mid] if len(xs) % 2 else (xs[mid - 1] + xs[mid]) / 2


def rate(f):
    return float(f.get("mbps") or 0.0)


def describe_samples(f):
    """How a flow's rate was made: its intervals, and how many fell below half its median one
    (a stall: the path or the machine gave nothing for a while) or were low throughout."""
    samples = f.get("samples")
    if not isinstance(samples, list) or not samples:
        return "none recorded"
    xs = [float(x) for x in samples if isinstance(x, (int, float))]
    mid = median(xs) or 0.0
    interval_s = float(f.get("interval_ms") or 0.0) / 1e3
    stalls = sum(1 for x in xs if x < mid / 2)
    per_interval = ("median interval %.1f Mbit/s" % (mid * 8 / interval_s / 1e6)
                    if interval_s > 0 else "median interval %d B" % mid)
    return "%d intervals, %s, %d below half of it, min_rtt %s ms, %s retransmits" % (
        len(xs), per_interval, stalls, fmt(f.get("min_rtt_ms")), fmt(f.get("retransmits")))


def fmt(x):
    return "-" if x is None else ("%.3g" % x if isinstance(x, float) else str(x))


def main():
    path, link, expect, normal = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    down, _, up = link.partition("/")
    bottleneck = {"download": float(down), "upload": float(up or down)}
    checks = []

    def check(ok, msg):
        checks.append((bool(ok), msg))

    try:
        doc = load(path)
    except (OSError, ValueError) as exc:
        print("FAIL  the agent's output is not a JSON result: %s" % exc)
        return 1
    # The test paces its flows at max_rate_mbps: below the link, that is the rate a flow the
    # policy leaves alone can reach.
    cap = doc.get("max_rate_mbps")
    if isinstance(cap, (int, float)) and cap > 0:
        for d in DIRECTIONS:
            bottleneck[d] = min(bottleneck[d], float(cap))
        print("flows paced at <= %s Mbit/s: the floor's reference is min(link, that)" % fmt(cap))
    verdicts = doc.get("verdicts") if isinstance(doc.get("verdicts"), list) else []
    flows = doc.get("flows") if isinstance(doc.get("flows"), list) else []
    # Upload flows paired with a download on a narrow uplink ran paced at paired_upload_pace_mbps.
    pace = doc.get("paired_upload_pace_mbps")
    pace = float(pace) if isinstance(pace, (int, float)) and pace > 0 else 0.0
    paced = set()
    if pace > 0:
        downloads = {(f.get("run"), f.get("group")) for f in flows
                     if f.get("direction") == "download"}
        paced = {id(f) for f in flows if f.get("direction") == "upload"
                 and (f.get("run"), f.get("group")) in downloads}
        print("%d upload flows paired and paced at <= %s Mbit/s: measured against that" % (
            len(paced), fmt(pace)))

    print("test_id %s, duration %s s" % (doc.get("test_id"), fmt(doc.get("duration_s"))))
    print("  %-9s %-8s %-15s %-8s %9s %9s %9s %7s" % (
        "direction", "port", "verdict", "basis", "bt_mbps", "ctl_mbps", "ks_p", "area"))
    for v in verdicts:
        print("  %-9s %-8s %-15s %-8s %9s %9s %9s %7s" % (
            v.get("direction"), v.get("port"), v.get("verdict"), v.get("basis"),
            fmt(v.get("bt_mbps")), fmt(v.get("control_mbps")), fmt(v.get("ks_p")),
            fmt(v.get("area"))))
    print("  flows (direction port kind Mbit/s end):")
    moved = 0.0
    for f in flows:
        print("    %-9s %-8s %-8s %8s  %s" % (f.get("direction"), f.get("port"), f.get("kind"),
                                             fmt(f.get("mbps")), f.get("end")))
        moved += float(f.get("mbps") or 0.0) * 1e6 / 8 * float(f.get("duration_us") or 0) / 1e6
    print("  %d flows moved %.1f MB (receivers' rate x duration)" % (len(flows), moved / 1e6))

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

    for term in ([] if normal.strip() == "-" else normal.split()):
        m = re.fullmatch(r"(bt|control|\*)/(bt|neutral|\*)/(upload|download|\*)(>=|~)([0-9.]+)",
                         term)
        if not m:
            check(False, "normal-rate term %r is malformed" % term)
            continue
        kind, port, direction, op, frac = m.groups()
        sel = [f for f in flows
               if matches(kind, f.get("kind")) and matches(port, f.get("port"))
               and matches(direction, f.get("direction"))]
        if not sel:
            check(False, "%s selects at least one flow" % term)
            continue
        # A paced upload (one that ran beside a download on a narrow uplink) is measured
        # against its pace, and against the other paced uploads' median.
        def klass(f):
            return (f.get("direction"), id(f) in paced)

        if op == ">=":
            reference = {(d, p): min(bottleneck[d], pace) if p else bottleneck[d]
                         for d in DIRECTIONS for p in (False, True)}
            against = "its direction's bottleneck" + (
                " (paced uploads: %s Mbit/s)" % fmt(pace) if paced else "")
        else:
            reference = {k: median([rate(f) for f in sel if klass(f) == k])
                         for k in {klass(f) for f in sel}}
            against = "the median of its direction's selected flows (%s Mbit/s)" % ", ".join(
                "%s%s %.1f" % (d, " paced" if p else "", reference[(d, p)])
                for d in DIRECTIONS for p in (False, True)
                if reference.get((d, p)) is not None)

        def share(f):
            ref = reference.get(klass(f))
            return rate(f) / ref if ref else 0.0

        worst = min(sel, key=share)
        slow = sum(1 for f in sel if share(f) < float(frac))
        check(slow == 0, "%s: %d of %d flows below; worst %s %s %s (run %s) %.2f Mbit/s = %.2f x "
              "%s; its samples: %s" % (
                  term, slow, len(sel), worst.get("direction"), worst.get("port"),
                  worst.get("kind"), worst.get("run"), rate(worst), share(worst), against,
                  describe_samples(worst)))
    if normal.strip() == "-":
        print("note  no normal-rate guard: the policy targets every flow of this scenario")

    failed = [msg for ok, msg in checks if not ok]
    for ok, msg in checks:
        print("%s  %s" % ("PASS" if ok else "FAIL", msg))
    print("%d of %d checks failed" % (len(failed), len(checks)) if failed
          else "all %d checks passed" % len(checks))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

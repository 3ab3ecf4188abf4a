#!/usr/bin/env python3
"""Tallies the verdicts of bench/accuracy/run.sh reports: for each scenario, how many runs gave
each verdict per (direction, port), the share of inconclusive, and the test wall time."""
import json
import statistics
import sys
from collections import Counter
from pathlib import Path


def main() -> int:
    out = Path(sys.argv[1])
    scenarios = sys.argv[2:]
    print("| scenario | runs | direction/port | none | throttled | blocked | reset-injected | inconclusive | wall time s (median, max) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for s in scenarios:
        reports = []
        for f in sorted(out.glob(f"{s}.*.json")):
            try:
                reports.append(json.loads(f.read_text()))
            except (OSError, json.JSONDecodeError):
                pass
        if not reports:
            print(f"| {s} | 0 | - | | | | | | |")
            continue
        walls = [r.get("duration_s", 0) for r in reports]
        counts: dict[str, Counter] = {}
        for r in reports:
            for v in r.get("verdicts", []):
                counts.setdefault(f"{v['direction']}/{v['port']}", Counter())[v["verdict"]] += 1
        for key in sorted(counts):
            c = counts[key]
            print(f"| {s} | {len(reports)} | {key} | {c['none']} | {c['throttled']} | {c['blocked']} | "
                  f"{c['reset-injected']} | {c['inconclusive']} | "
                  f"{statistics.median(walls):.0f}, {max(walls):.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

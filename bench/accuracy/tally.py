#!/usr/bin/env python3
"""Tallies the verdicts of bench/accuracy/run.sh reports. First table, a row per scenario: runs,
runs whose every check of tests/emu/scenarios.txt passed (its log ends "== scenario NAME
passed"), throttled verdicts among all comparisons, the share of inconclusive, the test wall
time and the megabytes a test moved. Second table: the verdict counts per scenario and (direction, port)."""
import json
import statistics
import sys
from collections import Counter
from pathlib import Path


def load(out: Path, scenario: str) -> list[tuple[dict, bool]]:
    runs = []
    for f in sorted(out.glob(f"{scenario}.*.json")):
        try:
            report = json.loads(f.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        log = f.with_suffix(".log")
        passed = log.exists() and f"== scenario {scenario} passed" in log.read_text(errors="replace")
        runs.append((report, passed))
    return runs


def test_megabytes(report: dict) -> float:
    """Bytes one test moved, in MB: what the agent's own flows sent and received on the wire
    (headers of the peer-wire protocol included; TCP/IP headers not), i.e. what a volunteer's
    data allowance pays. Reports without wire counts: the receivers' window bytes (samples)."""
    total = 0
    for f in report.get("flows", []):
        w = f.get("wire_bytes")
        if isinstance(w, dict):
            total += int(w.get("agent_sent", 0)) + int(w.get("agent_received", 0))
        else:
            total += sum(int(b) for b in f.get("samples", []))
    return total / 1e6


def main() -> int:
    if len(sys.argv) < 3:
        print("usage: tally.py OUT_DIR SCENARIO...", file=sys.stderr)
        return 2
    out = Path(sys.argv[1])
    scenarios = sys.argv[2:]
    loaded = {s: load(out, s) for s in scenarios}

    print("| scenario | runs | runs with the expected verdicts | throttled / comparisons | "
          "inconclusive | wall time s (median, max) | MB per test (median, max) |")
    print("|---|---:|---:|---:|---:|---|---|")
    for s in scenarios:
        runs = loaded[s]
        if not runs:
            print(f"| {s} | 0 | | | | | |")
            continue
        verdicts = [v["verdict"] for r, _ in runs for v in r.get("verdicts", [])]
        c = Counter(verdicts)
        walls = [r.get("duration_s", 0) for r, _ in runs]
        share = 100.0 * c["inconclusive"] / len(verdicts) if verdicts else 0.0
        mbs = [test_megabytes(r) for r, _ in runs]
        print(f"| {s} | {len(runs)} | {sum(p for _, p in runs)} | {c['throttled']} / {len(verdicts)} | "
              f"{c['inconclusive']} ({share:.0f}%) | {statistics.median(walls):.0f}, {max(walls):.0f} | "
              f"{statistics.median(mbs):.0f}, {max(mbs):.0f} |")

    print()
    print("| scenario | direction/port | none | throttled | blocked | reset-injected | inconclusive |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for s in scenarios:
        counts: dict[str, Counter] = {}
        for r, _ in loaded[s]:
            for v in r.get("verdicts", []):
                counts.setdefault(f"{v['direction']}/{v['port']}", Counter())[v["verdict"]] += 1
        for key in sorted(counts):
            c = counts[key]
            print(f"| {s} | {key} | {c['none']} | {c['throttled']} | {c['blocked']} | "
                  f"{c['reset-injected']} | {c['inconclusive']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

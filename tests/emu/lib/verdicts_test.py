#!/usr/bin/env python3
"""Checks verdicts.py, the scenarios' judge, on made-up results: the normal-rate guard must fail
a run where one untargeted flow was slowed and pass one where a slower machine slowed them all,
and every malformed or empty term must fail. No root, no testbed: CTest runs it as a unit test."""

import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
JUDGE = os.path.join(HERE, "verdicts.py")


def flow(direction, port, kind, mbps):
    return {"direction": direction, "port": port, "kind": kind, "mbps": mbps, "run": 0,
            "end": "completed", "duration_us": 2500000, "interval_ms": 25.0,
            "samples": [int(mbps * 1e6 / 8 * 0.025)] * 100, "min_rtt_ms": 0.01,
            "retransmits": 0}


def result(rates):
    """rates: {(direction, port, kind, repetition): Mbit/s}; every direction x port gets a `none`
    verdict."""
    verdicts = [{"direction": d, "port": p, "verdict": "none", "basis": "none"}
                for d in ("upload", "download") for p in ("bt", "neutral")]
    flows = [flow(d, p, k, r) for (d, p, k, _), r in rates.items()]
    return {"test_id": "t", "duration_s": 40.0, "verdicts": verdicts, "flows": flows}


def uniform(mbps):
    """One run as the agent makes it: two repetitions of each direction x port x kind."""
    return {(d, p, k, rep): mbps for d in ("upload", "download") for p in ("bt", "neutral")
            for k in ("bt", "control") for rep in (0, 1)}


class NormalRateGuard(unittest.TestCase):
    def judge(self, doc, normal, link="50", expect="*/*=none"):
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(doc, f)
            path = f.name
        try:
            run = subprocess.run([sys.executable, JUDGE, path, link, expect, normal],
                                 capture_output=True, text=True, timeout=60)
        finally:
            os.unlink(path)
        return run.returncode, run.stdout

    def test_a_full_rate_path_passes_both_forms(self):
        code, out = self.judge(result(uniform(47.5)), "*/*/*>=0.8 */*/*~0.8")
        self.assertEqual(code, 0, out)

    def test_a_slower_machine_fails_the_absolute_form_only(self):
        rates = uniform(36.0)  # 0.72 x the link on every flow: the machine, not a policy
        self.assertEqual(self.judge(result(rates), "*/*/*~0.8")[0], 0)
        code, out = self.judge(result(rates), "*/*/*>=0.8")
        self.assertEqual(code, 1)
        self.assertIn("16 of 16 flows below", out)

    def test_one_slowed_control_flow_fails_the_relative_form(self):
        rates = uniform(44.0)
        rates[("download", "bt", "control", 0)] = 17.0  # a 40% throttle leaking onto one flow
        code, out = self.judge(result(rates), "control/*/*~0.8")
        self.assertEqual(code, 1)
        self.assertIn("worst download bt control", out)
        self.assertIn("1 of 8 flows below", out)
        self.assertIn("download 44.0", out)

    def test_a_leak_onto_most_flows_is_left_to_the_absolute_floor(self):
        rates = uniform(44.0)
        for key in list(rates):
            if key[2] == "control" and key[1:] != ("neutral", "control", 1):
                rates[key] = 17.0  # the median moves with them: the relative form cannot see it
        self.assertEqual(self.judge(result(rates), "control/*/*~0.8")[0], 0)
        code, out = self.judge(result(rates), "control/*/*>=0.6 control/*/*~0.8")
        self.assertEqual(code, 1)
        self.assertIn("6 of 8 flows below", out)

    def test_the_median_is_taken_per_direction(self):
        rates = {k: (45.0 if k[0] == "download" else 4.5) for k in uniform(0)}
        self.assertEqual(self.judge(result(rates), "*/*/*~0.9", link="50/5")[0], 0)
        rates[("upload", "neutral", "bt", 1)] = 2.0
        self.assertEqual(self.judge(result(rates), "*/*/*~0.9", link="50/5")[0], 1)

    def test_the_floor_is_the_pacing_cap_below_the_link(self):
        doc = result(uniform(38.0))  # paced at 40 on a 50 Mbit/s link: 0.95 of the cap
        self.assertEqual(self.judge(doc, "*/*/*>=0.8")[0], 1)
        doc["max_rate_mbps"] = 40.0
        code, out = self.judge(doc, "*/*/*>=0.8")
        self.assertEqual(code, 0, out)
        self.assertIn("paced at <= 40", out)
        doc["max_rate_mbps"] = 0  # no cap: the link again
        self.assertEqual(self.judge(doc, "*/*/*>=0.8")[0], 1)

    def test_paired_uploads_are_measured_against_their_pace(self):
        # 50/5: download flows at 45, the first upload reference alone at 4.6, the rest paired
        # (sharing a group with a download flow) and paced at 2.8.
        rates = {k: (45.0 if k[0] == "download" else 2.75) for k in uniform(0)}
        doc = result(rates)
        for i, f in enumerate(doc["flows"]):
            f["group"] = i
        downloads = [f for f in doc["flows"] if f["direction"] == "download"]
        uploads = [f for f in doc["flows"] if f["direction"] == "upload"]
        uploads[0]["mbps"] = 4.6  # alone: unpaced
        for up, down in zip(uploads[1:], downloads):
            up["group"] = down["group"]
        # Without the pace in the result: 2.75 is 0.55 of the uplink.
        self.assertEqual(self.judge(doc, "*/*/*>=0.9", link="50/5")[0], 1)
        doc["paired_upload_pace_mbps"] = 2.8
        code, out = self.judge(doc, "*/*/*>=0.9 */*/*~0.9", link="50/5")
        self.assertEqual(code, 0, out)
        self.assertIn("7 upload flows paired and paced at <= 2.8", out)
        # A paced upload slowed below its pace still fails, against the pace and the paced median.
        uploads[3]["mbps"] = 1.2
        code, out = self.judge(doc, "*/*/*>=0.9", link="50/5")
        self.assertEqual(code, 1)
        self.assertIn("1 of 16 flows below", out)
        code, out = self.judge(doc, "*/*/*~0.9", link="50/5")
        self.assertEqual(code, 1)
        self.assertIn("upload paced 2.8", out)

    def test_a_term_that_selects_nothing_fails(self):
        rates = {k: v for k, v in uniform(45.0).items() if k[2] == "bt"}
        code, out = self.judge(result(rates), "control/*/*~0.8")
        self.assertEqual(code, 1)
        self.assertIn("selects at least one flow", out)

    def test_a_malformed_term_fails(self):
        for term in ("control/*/*>0.8", "control/*~0.8", "control/*/*~", "ctl/*/*>=0.8"):
            code, out = self.judge(result(uniform(45.0)), term)
            self.assertEqual(code, 1, term)
            self.assertIn("malformed", out)

    def test_the_worst_flows_samples_are_described(self):
        rates = uniform(44.0)
        doc = result(rates)
        slow = doc["flows"][0]
        slow["mbps"] = 20.0
        slow["samples"] = [137500] * 50 + [0] * 50  # full rate, then nothing: a stall
        code, out = self.judge(doc, "*/*/*~0.8")
        self.assertEqual(code, 1)
        self.assertIn("100 intervals", out)
        self.assertIn("50 below half of it", out)


if __name__ == "__main__":
    unittest.main()

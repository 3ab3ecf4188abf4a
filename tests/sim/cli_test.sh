#!/usr/bin/env bash
# `glasnode sim` as a person and a script use it: a scenario file in, verdicts, seed and trace
# hash out; bad files and arguments refused with one line and exit status 2.
# usage: cli_test.sh GLASNODE_BINARY REPO_ROOT
set -euo pipefail
glasnode=$1
repo=$2
scenarios=$repo/sim/scenarios
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

# --json: one object with the run's identity and the verdicts in `glasnode test --json`'s shape.
"$glasnode" sim "$scenarios/port_throttle.toml" --seed 5 --json >"$work/a.json" || fail "sim --json failed"
python3 - "$work/a.json" <<'PY' || fail "sim --json output: $(cat "$work/a.json")"
import json, re, sys
j = json.load(open(sys.argv[1]))
assert re.fullmatch(r"[0-9a-f]{16}", j["trace_hash"]), j["trace_hash"]
assert j["seed"] == 5 and isinstance(j["seed"], int)
assert j["scenario"] == "port-throttle"
assert isinstance(j["sim_duration_s"], (int, float)) and j["sim_duration_s"] > 0
assert j["outcome"] == "done"
v = {(x["direction"], x["port"]): x for x in j["verdicts"]}
assert len(v) == 4, v.keys()
fields = {"direction", "port", "verdict", "basis", "bt_mbps", "control_mbps", "ratio", "ks_p",
          "area", "confirmed", "runs", "forged_reset", "content_comparison"}
for key, x in v.items():
    assert fields <= set(x), (key, fields - set(x))
    assert ("port_comparison" in x) == (key[1] == "bt"), key
assert v[("download", "bt")]["verdict"] == "throttled" and v[("download", "bt")]["basis"] == "port"
assert v[("upload", "neutral")]["verdict"] == "none"
assert j["expectations_met"] is True and len(j["expect"]) == 4
PY

# The same seed gives the same trace hash; another seed another.
hash() { python3 -c 'import json,sys; print(json.load(sys.stdin)["trace_hash"])'; }
h1=$(hash <"$work/a.json")
h2=$("$glasnode" sim "$scenarios/port_throttle.toml" --seed 5 --json | hash)
h3=$("$glasnode" sim "$scenarios/port_throttle.toml" --seed 6 --json | hash)
[ "$h1" = "$h2" ] || fail "seed 5 gave $h1 then $h2"
[ "$h1" != "$h3" ] || fail "seeds 5 and 6 gave the same trace hash $h1"

# Without --json: the verdict table, the seed (the file's by default) and the trace hash.
"$glasnode" sim "$scenarios/neutral.toml" >"$work/table" || fail "sim failed"
grep -q "^  download  bt       none " "$work/table" || fail "no verdict row: $(cat "$work/table")"
grep -q "^seed: 1$" "$work/table" || fail "no seed line: $(cat "$work/table")"
grep -Eq "^trace hash: [0-9a-f]{16}$" "$work/table" || fail "no trace hash: $(cat "$work/table")"
[ "$(sed -n 's/^trace hash: //p' "$work/table")" = \
  "$("$glasnode" sim "$scenarios/neutral.toml" --seed 1 --json | hash)" ] \
  || fail "the table and --json disagree on the trace hash"

# Bad input: exit status 2 and one line naming what is wrong.
expect_bad() { # <what the line must contain> <args...>
  local what=$1; shift
  set +e; "$glasnode" sim "$@" >"$work/out" 2>"$work/err"; local rc=$?; set -e
  [ "$rc" -eq 2 ] || fail "sim $* exited $rc, expected 2"
  [ "$(wc -l <"$work/err")" -eq 1 ] || fail "sim $*: error is not one line: $(cat "$work/err")"
  grep -q "^glasnode: .*$what" "$work/err" || fail "sim $*: error does not name $what: $(cat "$work/err")"
}
printf '[path]\nrate_mbps = -3\nrtt_ms = 20\n' >"$work/bad.toml"
expect_bad "path.rate_mbps" "$work/bad.toml"
printf '[path]\nrate_mbps = 3\nrtt_ms = 20\n[policy]\nkind = "port-throttle"\n' >"$work/nofraction.toml"
expect_bad "policy.fraction" "$work/nofraction.toml"
expect_bad "no-such.toml" "$work/no-such.toml"
expect_bad "--seed" "$scenarios/neutral.toml" --seed twelve
expect_bad "--seed" "$scenarios/neutral.toml" --seed -1
echo "sim cli_test: all checks passed"

#!/usr/bin/env bash
# The glasnode command line as a person uses it: real processes, real files, real TCP on loopback.
# usage: cli_test.sh GLASNODE_BINARY REPO_ROOT
set -euo pipefail
glasnode=$1
repo=$2
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

# keygen creates the key with mode 0600 and prints the id; status prints the same id.
out=$("$glasnode" keygen --data-dir "$work/a")
id=$(sed -n 's/^node id: //p' <<<"$out")
[[ $id =~ ^[0-9a-f]{64}$ ]] || fail "keygen printed no node id: $out"
[ "$(stat -c %a "$work/a/node.key")" = 600 ] || fail "node.key mode is $(stat -c %a "$work/a/node.key")"
"$glasnode" status --data-dir "$work/a" | grep -q "^node id:  $id$" || fail "status does not print $id"
[ "$("$glasnode" status --data-dir "$work/a" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["node_id"])')" = "$id" ] \
  || fail "status --json node_id differs"
# keygen again keeps the identity.
"$glasnode" keygen --data-dir "$work/a" | grep -q "already exists" || fail "second keygen did not keep the key"
"$glasnode" status --data-dir "$work/a" | grep -q "$id" || fail "identity changed after second keygen"

# status without an identity fails with advice.
if "$glasnode" status --data-dir "$work/none" 2>"$work/err"; then fail "status without key succeeded"; fi
grep -q "glasnode keygen" "$work/err" || fail "no advice: $(cat "$work/err")"

# A group-readable key is refused.
cp -r "$work/a" "$work/loose"; chmod 0644 "$work/loose/node.key"
if "$glasnode" status --data-dir "$work/loose" 2>"$work/err"; then fail "loose key accepted"; fi
grep -q "644" "$work/err" || fail "loose key error does not name the mode: $(cat "$work/err")"

# Bad config values: one line naming the key, exit status 2.
expect_bad() { # <key> <args...>
  local key=$1; shift
  set +e; "$glasnode" "$@" >"$work/out" 2>"$work/err"; local rc=$?; set -e
  [ "$rc" -eq 2 ] || fail "$* exited $rc, expected 2"
  [ "$(wc -l <"$work/err")" -eq 1 ] || fail "$*: error is not one line: $(cat "$work/err")"
  grep -q "^glasnode: $key: " "$work/err" || fail "$*: error does not name $key: $(cat "$work/err")"
}
expect_bad control_port run --data-dir "$work/a" --control-port 70000
expect_bad bind run --data-dir "$work/a" --bind not-an-address
expect_bad handshake_timeout status --data-dir "$work/a" --set handshake_timeout=soon
expect_bad colour status --data-dir "$work/a" --set colour=blue
printf 'idle_timeout = "forever"\n' >"$work/bad.toml"
expect_bad idle_timeout status --data-dir "$work/a" --config "$work/bad.toml"

# docs/configuration.md is generated from the settings table.
"$glasnode" config --markdown | diff -u "$repo/docs/configuration.md" - \
  || fail "docs/configuration.md is stale: regenerate with glasnode config --markdown"

# Two processes: a node serves its control port; another authenticates to it and pings it.
mkfifo "$work/ready"
"$glasnode" run --data-dir "$work/a" --bind 127.0.0.1 --control-port 0 --bt-port 0 --neutral-port 0 \
  >"$work/ready" 2>"$work/run.log" &
pids+=($!)
read -r -t 20 line <"$work/ready" || fail "node did not print its ready line"
[[ $line == "glasnode ready "* ]] || fail "unexpected first line: $line"
control=$(sed -n 's/.*control=\([^ ]*\).*/\1/p' <<<"$line")
"$glasnode" ping "$control" --data-dir "$work/b" --count 2 --peer-id "$id" >"$work/ping" \
  || fail "ping failed: $(cat "$work/ping")"
grep -q "peer $id" "$work/ping" || fail "ping did not authenticate $id"
[ "$(grep -c '^pong seq=' "$work/ping")" -eq 2 ] || fail "expected 2 pongs: $(cat "$work/ping")"
# The wrong peer id is refused.
if "$glasnode" ping "$control" --data-dir "$work/b" --peer-id "$(printf '0%.0s' {1..64})" 2>"$work/err"; then
  fail "ping accepted a peer with another id"
fi
grep -q "was expected" "$work/err" || fail "no reason for the refused peer: $(cat "$work/err")"

# A short differential test against the node, stored, listed, and judged anew by analyse.
"$glasnode" test "$control" --data-dir "$work/b" --peer-id "$id" --flow-duration 500 \
  --repetitions 1 --no-confirm --json >"$work/test.json" 2>"$work/test.err" \
  || fail "test failed: $(tail -3 "$work/test.err")"
verdicts() { python3 -c 'import json,sys
for line in sys.stdin:
    j = json.loads(line)
    for r in (j if isinstance(j, list) else [j]):
        print(" ".join(v["direction"] + "/" + v["port"] + "=" + v["verdict"] for v in r["verdicts"]))'; }
[ "$(verdicts <"$work/test.json" | wc -w)" -eq 4 ] || fail "test did not judge 4 comparisons"
"$glasnode" results --data-dir "$work/b" --json >"$work/results.json"
[ "$(verdicts <"$work/results.json")" = "$(verdicts <"$work/test.json")" ] || fail "stored verdicts differ"
"$glasnode" analyse --json "$work/results.json" >"$work/again.json" || fail "analyse failed"
[ "$(verdicts <"$work/again.json")" = "$(verdicts <"$work/test.json")" ] \
  || fail "analyse judged the stored flows differently: $(verdicts <"$work/again.json")"
"$glasnode" analyse "$work/test.json" | grep -q "^  upload " || fail "analyse printed no table"
# A file that is not a report: a clear error, exit 1, the other files still judged.
echo '{"flows": "none"}' >"$work/bad.json"
set +e; "$glasnode" analyse --json "$work/bad.json" "$work/test.json" >"$work/out" 2>"$work/err"; rc=$?; set -e
[ "$rc" -eq 1 ] || fail "analyse of a bad report exited $rc"
grep -q "bad.json: .*flows" "$work/err" || fail "no error naming the file and field: $(cat "$work/err")"
[ "$(wc -l <"$work/out")" -eq 1 ] || fail "the good report was not judged after the bad one"

# SIGTERM stops the node cleanly.
kill -TERM "${pids[0]}"
wait "${pids[0]}" || fail "node exited with status $? on SIGTERM"
pids=()
grep -q "shutting down" "$work/run.log" || fail "no shutdown line in the log"
# The demo: a provider and an agent in one process on loopback, one (short) test, its table.
"$glasnode" demo --data-dir "$work/demo" --flow-duration 500 --repetitions 1 --no-confirm \
  >"$work/demo.out" 2>"$work/demo.err" || fail "demo failed: $(tail -3 "$work/demo.err")"
for row in "download  bt" "download  neutral" "upload    bt" "upload    neutral"; do
  grep -q "^  $row " "$work/demo.out" || fail "demo printed no verdict for $row: $(cat "$work/demo.out")"
done
grep -q "^stored in " "$work/demo.out" || fail "demo did not say where the result is stored"
"$glasnode" results --data-dir "$work/demo/demo/agent" | grep -q "^test " \
  || fail "the demo's result is not listed by results"
echo "cli_test: all checks passed"

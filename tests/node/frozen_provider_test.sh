#!/usr/bin/env bash
# A provider that stops answering mid-test (SIGSTOP: its sockets stay open, nothing answers)
# ends the agent's test within 30 s with a clear error, and the agent stores no verdict.
# Real processes on loopback. usage: frozen_provider_test.sh GLASNODE_BINARY
set -euo pipefail
glasnode=$1
work=$(mktemp -d)
provider=""
agent=""
stop() { # <pid>: SIGTERM, then SIGKILL if it has not exited within 5 s
  kill -CONT "$1" 2>/dev/null || true # a stopped process acts on SIGTERM only once continued
  kill -TERM "$1" 2>/dev/null || return 0
  timeout 5 tail --pid="$1" -f /dev/null || kill -KILL "$1" 2>/dev/null || true
}
cleanup() {
  if [ -n "$agent" ]; then stop "$agent"; fi
  if [ -n "$provider" ]; then stop "$provider"; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  for log in provider agent; do
    [ -s "$work/$log.log" ] && { echo "--- $log log (last lines)" >&2; tail -5 "$work/$log.log" >&2; }
  done
  exit 1
}

mkfifo "$work/ready"
"$glasnode" run --data-dir "$work/p" --bind 127.0.0.1 --control-port 0 --bt-port 0 --neutral-port 0 \
  >"$work/ready" 2>"$work/provider.log" &
provider=$!
read -r -t 20 line <"$work/ready" || fail "provider did not print its ready line"
control=$(sed -n 's/.*control=\([^ ]*\).*/\1/p' <<<"$line")

# The log exists before the agent starts, so that tail below never races its creation.
: >"$work/agent.log"
"$glasnode" test "$control" --data-dir "$work/a" --flow-duration 1000 --repetitions 2 --no-confirm \
  --json >"$work/test.json" 2>>"$work/agent.log" &
agent=$!
# Freeze the provider once a few flows have run (the agent prints a line per flow).
timeout 60 grep -m1 -q '^\[ 3/' <(tail -n +1 --pid="$agent" -f "$work/agent.log") \
  || fail "the test did not get going: $(tail -5 "$work/agent.log")"
kill -STOP "$provider"
frozen=$(date +%s%N)

# The agent must give up by itself; the bound here only keeps a broken agent from hanging CI.
set +e
timeout 60 tail --pid="$agent" -f /dev/null
wait "$agent"; rc=$?
set -e
agent=""
elapsed_ms=$(( ($(date +%s%N) - frozen) / 1000000 ))
echo "agent exited with status $rc, ${elapsed_ms} ms after the provider froze"
[ "$rc" -ne 0 ] || fail "the agent reported success against a frozen provider"
[ "$elapsed_ms" -lt 30000 ] || fail "the agent took ${elapsed_ms} ms to give up (bound 30000)"
grep -q "stopped answering" "$work/agent.log" || fail "no clear error: $(tail -3 "$work/agent.log")"
[ ! -s "$work/test.json" ] || fail "a result was printed: $(head -c 200 "$work/test.json")"
stored=$("$glasnode" results --data-dir "$work/a" --json)
[ "$(python3 -c 'import json,sys; print(len(json.loads(sys.stdin.read() or "[]")))' <<<"$stored")" = 0 ] \
  || fail "the agent stored a result: $stored"
echo "frozen_provider_test: all checks passed"

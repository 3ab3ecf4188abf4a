#!/usr/bin/env bash
# `glasnode run` ends on SIGTERM and on SIGINT within 2 s, with exit status 0 and its database
# intact, whatever its test ports and agents are doing at that moment. Real processes on
# 127.0.0.1 only.
#
# usage: shutdown_test.sh GLASNODE_BINARY STATE
# STATE (what the node is doing when the signal arrives):
#   idle         nothing connected
#   queued       one agent's test running, two more agents waiting in the provider's queue
#   half_open    connections to both test ports and the control port that never send a byte
#   closed       test port connections that connected and closed without a handshake (seen
#                by the node, and one closed right before the signal)
#   partial      test port connections that sent part of a handshake and went silent
#   in_progress  a differential test with a flow running
#   after_test   a test that completed just before the signal (its record must be committed)
#   agent_signal the agent gets the signal mid-test: it ends within 2 s, the node serves on
#
# Each state runs twice on one data directory: SIGTERM on a fresh node, then SIGINT on a node
# restarted on the same database. Every wait polls for a condition with a deadline.
set -euo pipefail
glasnode=$1
state=$2
work=$(mktemp -d)
pids=() # every background process started here; killed by PID on exit
cleanup() {
  for p in "${pids[@]}"; do
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "FAIL [$state${sig:+, SIG$sig}]: $*" >&2
  for f in "$work"/*.log "$work"/*.err; do
    [ -s "$f" ] && { echo "--- $(basename "$f") (last lines)" >&2; tail -n 15 "$f" >&2; }
  done
  exit 1
}

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# wait_for SECONDS WHAT COMMAND...: runs COMMAND until it succeeds; fails the test after SECONDS.
wait_for() {
  local seconds=$1 what=$2
  shift 2
  local limit=$(( $(now_ms) + seconds * 1000 ))
  until "$@"; do
    [ "$(now_ms)" -lt "$limit" ] || fail "waited ${seconds} s for: $what"
    sleep 0.02
  done
}

# True once PID has exited (gone, or a zombie not yet reaped).
exited() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  stat=${stat##*) }
  [ "${stat%% *}" = Z ]
}

forget() { # PID: drop it from the kill list once it has been reaped
  local keep=() p
  for p in "${pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  pids=("${keep[@]}")
}

# signal_and_time PID SIG: sends SIG and waits (2 s at most) for PID to exit; sets
# exit_ms (signal to exit, in ms) and exit_rc.
signal_and_time() {
  local pid=$1 s=$2 t0
  t0=$(now_ms)
  kill -"$s" "$pid"
  until exited "$pid"; do
    [ $(( $(now_ms) - t0 )) -le 2000 ] || fail "process $pid still running 2 s after SIG$s"
    sleep 0.01
  done
  exit_ms=$(( $(now_ms) - t0 ))
  set +e
  wait "$pid"
  exit_rc=$?
  set -e
  forget "$pid"
}

count() { grep -c -- "$1" "$2" || true; } # PATTERN FILE: matching lines (0 when none)
at_least() { [ "$(count "$2" "$3")" -ge "$1" ]; } # N PATTERN FILE

start_node() { # DATA_DIR
  node_out=$work/node.$sig.out
  node_log=$work/node.$sig.log
  "$glasnode" run --data-dir "$1" --bind 127.0.0.1 --control-port 0 --bt-port 0 \
    --neutral-port 0 --log-level debug >"$node_out" 2>"$node_log" &
  node_pid=$!
  pids+=("$node_pid")
  wait_for 20 "the node's ready line" grep -qs '^glasnode ready ' "$node_out"
  local line
  line=$(head -n 1 "$node_out")
  control=$(sed -n 's/.* control=\([^ ]*\).*/\1/p' <<<"$line")
  bt=$(sed -n 's/.* bt=\([0-9]*\).*/\1/p' <<<"$line")
  neutral=$(sed -n 's/.* neutral=\([0-9]*\).*/\1/p' <<<"$line")
  node_id=$(sed -n 's/.* id=\([0-9a-f]*\).*/\1/p' <<<"$line")
  [[ $control == 127.0.0.1:* && -n $bt && -n $neutral && -n $node_id ]] \
    || fail "unexpected ready line: $line"
}

agents=() # this round's agents, reaped at its end
start_agent() { # NAME TEST_OPTIONS...: a `glasnode test` against the node in the background
  local name=$1
  shift
  "$glasnode" test "$control" --data-dir "$work/$name" --peer-id "$node_id" "$@" \
    >"$work/$name.out" 2>"$work/$name.err" &
  agent_pid=$!
  pids+=("$agent_pid")
  agents+=("$agent_pid")
}
# Long enough (16 flows of 3 s) to be mid-test whenever the signal comes.
long_test=(--flow-duration 3000 --repetitions 2 --no-confirm)
short_test=(--flow-duration 500 --repetitions 1 --no-confirm)

agent_id() { "$glasnode" status --data-dir "$work/$1" --json | python3 -c \
  'import json,sys; print(json.load(sys.stdin)["node_id"])'; }

# has_served DATA_DIR PEER_ID: the node's database lists a test it served to PEER_ID.
has_served() {
  "$glasnode" results --data-dir "$1" --limit 0 2>/dev/null \
    | grep -q "^test [0-9a-f]* (provider) with ${2:0:16} "
}

# A short test run to completion; the node stores what it served.
seed_test() { # NAME
  "$glasnode" test "$control" --data-dir "$work/$1" --peer-id "$node_id" "${short_test[@]}" \
    --json >"$work/$1.out" 2>"$work/$1.err" || fail "test $1 failed: $(tail -n 3 "$work/$1.err")"
}

accepted() { count "test port $1: accepted" "$node_log"; } # PORT
more_accepted() { [ "$(accepted "$1")" -gt "$2" ]; } # PORT BASE
flows_accepted_at_least() { [ $(( $(accepted "$bt") + $(accepted "$neutral") )) -ge "$1" ]; }

close_fd() { # VARIABLE: closes the descriptor whose number it holds, once
  local name=$1
  [ -n "${!name:-}" ] || return 0
  eval "exec ${!name}>&-"
  unset "$name"
}

# Server side of the loopback connections to PORT: true when every established one has an
# empty receive queue (the node has read what was sent).
node_read_everything() { # PORT
  python3 - "$1" <<'EOF'
import sys
port = int(sys.argv[1])
seen = False
with open("/proc/net/tcp") as f:
    next(f)
    for line in f:
        fields = line.split()
        local, st, queues = fields[1], fields[3], fields[4]
        if int(local.split(":")[1], 16) == port and st == "01":
            seen = True
            if int(queues.split(":")[1], 16) != 0:
                sys.exit(1)
sys.exit(0 if seen else 1)
EOF
}

data=$work/node
stored_peer="" # the peer whose served test must survive every shutdown
for sig in TERM INT; do
  signo=$(kill -l "$sig")
  start_node "$data"
  if [ -z "$stored_peer" ]; then
    seed_test seed
    stored_peer=$(agent_id seed)
    # after_test checks the commit at shutdown itself; the others want it stored before.
    [ "$state" = after_test ] || wait_for 10 "the served test in the node's database" \
      has_served "$data" "$stored_peer"
  fi

  case $state in
  idle) ;;
  queued)
    start_agent "running.$sig" "${long_test[@]}"
    wait_for 20 "the first agent's grant" grep -q ' flows in ' "$work/running.$sig.err"
    for n in 1 2; do
      start_agent "waiting$n.$sig" "${long_test[@]}"
      wait_for 20 "agent $n in the provider's queue" \
        grep -q 'waiting for the provider: position' "$work/waiting$n.$sig.err"
    done
    ;;
  half_open | closed | partial)
    base_bt=$(accepted "$bt")
    base_neutral=$(accepted "$neutral")
    exec {bt_fd}<>"/dev/tcp/127.0.0.1/$bt"
    exec {neutral_fd}<>"/dev/tcp/127.0.0.1/$neutral"
    wait_for 10 "the node to accept the BT port connection" more_accepted "$bt" "$base_bt"
    wait_for 10 "the node to accept the neutral port connection" \
      more_accepted "$neutral" "$base_neutral"
    case $state in
    half_open)
      base_control=$(count "control: accepted" "$node_log")
      # shellcheck disable=SC2034 # closed through close_fd at the end of the round
      exec {control_fd}<>"/dev/tcp/${control%:*}/${control##*:}"
      wait_for 10 "the node to accept the control connection" \
        at_least $((base_control + 1)) "control: accepted" "$node_log"
      ;;
    closed)
      base_closed=$(count "closed_early" "$node_log")
      close_fd bt_fd
      close_fd neutral_fd
      wait_for 10 "the node to see both connections closed" \
        at_least $((base_closed + 2)) "closed_early" "$node_log"
      # And one closed just before the signal: its EOF and the signal may arrive together.
      base_bt=$(accepted "$bt")
      exec {bt_fd}<>"/dev/tcp/127.0.0.1/$bt"
      wait_for 10 "the node to accept one more connection" more_accepted "$bt" "$base_bt"
      close_fd bt_fd
      ;;
    partial)
      # 20 of the 68 bytes of a BitTorrent handshake.
      printf '\x13BitTorrent protocol' >&"$bt_fd"
      printf '\x13BitTorrent protocol' >&"$neutral_fd"
      wait_for 10 "the node to read the partial handshake (BT port)" node_read_everything "$bt"
      wait_for 10 "the node to read the partial handshake (neutral port)" \
        node_read_everything "$neutral"
      ;;
    esac
    ;;
  in_progress | agent_signal)
    base_flows=$(( $(accepted "$bt") + $(accepted "$neutral") ))
    start_agent "running.$sig" "${long_test[@]}"
    wait_for 30 "the first flow to finish" grep -q '^\[ 1/' "$work/running.$sig.err"
    wait_for 10 "the second flow to connect" flows_accepted_at_least $((base_flows + 2))
    if [ "$state" = agent_signal ]; then
      finished=$(count "provider: test of .* finished" "$node_log")
      signal_and_time "$agent_pid" "$sig"
      echo "agent: SIG$sig mid-test -> exit status $exit_rc in $exit_ms ms"
      [ "$exit_rc" -eq $((128 + signo)) ] \
        || fail "the agent exited with status $exit_rc on SIG$sig, expected $((128 + signo))"
      wait_for 10 "the node to end the agent's test" \
        at_least $((finished + 1)) "provider: test of .* finished" "$node_log"
      # The slot is free again: another agent's test runs to the end.
      seed_test "after.$sig"
    fi
    ;;
  after_test)
    if [ "$sig" = INT ]; then # the TERM round's seed test was the first one
      seed_test "after.$sig"
      stored_now=$(agent_id "after.$sig")
    else
      stored_now=$stored_peer
    fi
    ;;
  *) fail "unknown state $state" ;;
  esac

  signal_and_time "$node_pid" "$sig"
  echo "node: $state, SIG$sig -> exit status $exit_rc in $exit_ms ms"
  [ "$exit_rc" -eq 0 ] || fail "the node exited with status $exit_rc on SIG$sig"
  grep -q "received signal $signo, shutting down" "$node_log" || fail "no shutdown line in the log"
  grep -q " stopped$" "$node_log" || fail "no 'stopped' line in the log"

  # The database opens, lists, and keeps what was stored before the signal.
  "$glasnode" results --data-dir "$data" >"$work/results.$sig.out" 2>"$work/results.$sig.err" \
    || fail "results after shutdown failed: $(cat "$work/results.$sig.err")"
  grep -q "^test .*(provider)" "$work/results.$sig.out" || fail "results lists no served test"
  has_served "$data" "$stored_peer" || fail "the test served before the signal is gone"
  if [ "$state" = after_test ]; then
    has_served "$data" "$stored_now" || fail "the test completed just before SIG$sig is gone"
  fi

  for p in "${agents[@]}"; do
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
    forget "$p"
  done
  agents=()
  for fd in bt_fd neutral_fd control_fd; do close_fd "$fd"; done
done
echo "shutdown_test $state: all checks passed"

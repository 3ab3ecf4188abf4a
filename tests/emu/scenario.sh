#!/usr/bin/env bash
# Runs one row of scenarios.txt: a glasnode provider in host B, the ISP policy (and cross
# traffic) on router R, one `glasnode test` from host A, then checks its JSON verdicts.
#
# usage: scenario.sh GLASNODE_BINARY SCENARIO [TABLE]
#        scenario.sh --list [TABLE]
# Exit 0 the verdicts matched, 1 they did not (or the run failed), 77 the machine cannot run
# the testbed (1 instead in CI, CI=true). TB_KEEP=1 keeps the run's logs and data directories;
# GLASNODE_CROSS_SEED=N replaces the row's cross traffic seed (the accuracy benchmark varies it
# per run); GLASNODE_DELAY_MS=N replaces the row's delay: N ms each way at the router (tb_delay;
# needs TB_NFQ_DELAY, the built glasnode_nfq_delay), to measure a scenario at a longer RTT;
# GLASNODE_TEST_ARGS adds options to `glasnode test` (e.g. --directions apart).
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

trim() {
  local s=$1
  s=${s#"${s%%[![:space:]]*}"}
  s=${s%"${s##*[![:space:]]}"}
  printf '%s' "$s"
}

# read_row NAME TABLE: sets S_RATE S_DELAY S_POLICY S_CROSS S_TIMEOUT S_EXPECT S_NORMAL (the
# optional ninth field, labels, is CMake's).
read_row() {
  local line f
  local -a fields
  while IFS= read -r line; do
    [[ $line =~ ^[[:space:]]*(#|$) ]] && continue
    IFS='|' read -r -a fields <<<"$line"
    [[ $(trim "${fields[0]}") == "$1" ]] || continue
    if ((${#fields[@]} != 8 && ${#fields[@]} != 9)); then
      echo "scenario: row '$1' of $2 has ${#fields[@]} fields, not 8 or 9" >&2
      return 1
    fi
    for f in "${!fields[@]}"; do fields[f]=$(trim "${fields[f]}"); done
    S_RATE=${fields[1]} S_DELAY=${fields[2]} S_POLICY=${fields[3]} S_CROSS=${fields[4]}
    S_TIMEOUT=${fields[5]} S_EXPECT=${fields[6]} S_NORMAL=${fields[7]}
    return 0
  done <"$2"
  echo "scenario: no row named '$1' in $2" >&2
  return 1
}

if [[ ${1:-} == --list ]]; then
  grep -Ev '^[[:space:]]*(#|$)' "${2:-$here/scenarios.txt}" | cut -d'|' -f1 | tr -d ' \t'
  exit 0
fi
if (($# < 2)); then
  sed -n '2,9p' "$0" >&2
  exit 2
fi
glasnode=$1 name=$2 table=${3:-$here/scenarios.txt}

# shellcheck source=lib/testbed.sh
source "$here/lib/testbed.sh"
tb_require python3
if [[ ! -x $glasnode ]]; then
  echo "scenario: $glasnode is not an executable glasnode binary" >&2
  exit 1
fi
# Until the binary has the subcommands of the CLI contract, the scenarios cannot run: skip.
for sub in run test; do
  if ! "$glasnode" --help 2>/dev/null | grep -Eq "^[[:space:]]+$sub([[:space:]]|$)"; then
    tb_skip "$glasnode has no '$sub' subcommand yet"
  fi
done
read_row "$name" "$table" || exit 1
[[ $S_TIMEOUT =~ ^[0-9]+$ ]] || { echo "scenario: timeout '$S_TIMEOUT' is not seconds" >&2; exit 1; }
delay_ms=${GLASNODE_DELAY_MS:-$S_DELAY}
[[ $delay_ms == - ]] && delay_ms=0
[[ $delay_ms =~ ^[0-9]+$ ]] || { echo "scenario: delay '$delay_ms' is not milliseconds" >&2; exit 1; }
if ((delay_ms > 0)) && [[ -z ${TB_NFQ_DELAY:-} || ! -x ${TB_NFQ_DELAY:-} ]]; then
  tb_skip "row $name needs ${delay_ms} ms of delay: TB_NFQ_DELAY is not the built glasnode_nfq_delay"
fi
if [[ $S_CROSS != - ]]; then
  tb_require iperf3
fi

tb_up || exit 1
tb_bottleneck "$S_RATE" || exit 1
tb_policy "$S_POLICY" || exit 1
if ((delay_ms > 0)); then
  tb_delay "$delay_ms" || exit 1
fi
if [[ $S_CROSS != - ]]; then
  declare -a cross_args=(--max-s $((S_TIMEOUT + 60)) --phases $((S_TIMEOUT + 60)))
  for kv in $S_CROSS; do
    case ${kv%%=*} in
      seed) cross_args+=(--seed "${GLASNODE_CROSS_SEED:-${kv#*=}}") ;;
      dir) cross_args+=(--dir "${kv#*=}") ;;
      par) cross_args+=(--parallel "${kv#*=}") ;;
      *) echo "scenario: unknown cross traffic setting $kv" >&2; exit 1 ;;
    esac
  done
  tb_cross_start "${cross_args[@]}" || exit 1
fi

provider_dir=$TB_DIR/provider-data agent_dir=$TB_DIR/agent-data result=$TB_DIR/result.json
mkdir -p "$provider_dir" "$agent_dir"

show_logs() {
  local f
  for f in provider.out provider.err agent.err; do
    [[ -s $TB_DIR/$f ]] || continue
    echo "---- last lines of $f"
    tail -n 30 "$TB_DIR/$f"
  done
}

echo "== scenario $name: bottleneck $S_RATE, delay ${delay_ms} ms each way, policy '$S_POLICY'," \
  "cross '$S_CROSS'"
if ! tb_spawn --ready '^glasnode ready ' --timeout 30 provider "$TB_NS_B" \
  "$glasnode" run --data-dir "$provider_dir" --bind "$TB_IP_B" --control-port 9773 \
  --bt-port "$TB_BT_PORT" --neutral-port "$TB_NEUTRAL_PORT" --api-port 9774; then
  echo "FAIL  the provider did not become ready"
  show_logs
  exit 1
fi

# GLASNODE_TEST_ARGS: more `glasnode test` options, split on spaces (to compare schedules).
read -r -a extra_args <<<"${GLASNODE_TEST_ARGS:-}"
started=$(_tb_usec)
tb_run "$S_TIMEOUT" "$TB_NS_A" "$glasnode" test "$TB_IP_B:9773" --json --data-dir "$agent_dir" \
  "${extra_args[@]}" >"$result" 2>"$TB_DIR/agent.err"
rc=$?
test_s=$(awk -v d=$(($(_tb_usec) - started)) 'BEGIN { printf "%.1f\n", d / 1e6 }')
echo "== glasnode test exited $rc after $test_s s"
# The accuracy benchmark (bench/accuracy) keeps every report.
if [[ -n ${GLASNODE_RESULT_OUT:-} && -s $result ]]; then cp "$result" "$GLASNODE_RESULT_OUT"; fi
failed=0
if ((rc == 124 || rc == 137)); then
  echo "FAIL  glasnode test did not finish within ${S_TIMEOUT}s"
  failed=1
elif ((rc != 0)); then
  echo "FAIL  glasnode test exited with status $rc"
  failed=1
fi
if ! kill -0 "${TB_PID[provider]}" 2>/dev/null; then
  echo "FAIL  the provider died during the test"
  failed=1
fi
if ((!failed)); then
  python3 "$TB_LIB_DIR/verdicts.py" "$result" "$(tb_bottleneck_mbps both)" "$S_EXPECT" "$S_NORMAL" ||
    failed=1
fi
if [[ $S_CROSS != - ]]; then
  tb_cross_stop
  # The cross traffic must have loaded the path during the test: at least CROSS_MIN_SHARE (default
  # 0.15) of what the bottleneck (both directions) could carry in the test's wall time, counted
  # at the receivers. Measured: 0.37 (cross) and 0.34 (cross_throttle) with seed 7.
  read -r cross_bytes cross_need < <(awk -v b="$(tb_cross_bytes)" -v s="$test_s" \
    -v d="$TB_RATE_KBIT" -v u="$TB_UP_RATE_KBIT" -v f="${CROSS_MIN_SHARE:-0.15}" \
    'BEGIN { printf "%d %d\n", b, f * s * (d + u) * 1000 / 8 }')
  bursts=$(grep -c '^on ' "$TB_DIR/cross.out")
  if ((cross_bytes >= cross_need && bursts >= 2)); then
    echo "PASS  cross traffic moved $cross_bytes bytes in $bursts bursts (need >= $cross_need)"
  else
    echo "FAIL  cross traffic moved $cross_bytes bytes in $bursts bursts (need >= $cross_need, 2 bursts)"
    failed=1
  fi
fi
if ((delay_ms > 0)) && grep -q 'error:' "$TB_DIR/nfq_delay.err" 2>/dev/null; then
  echo "FAIL  the path did not have the delay asked for: $(grep -m1 'error:' "$TB_DIR/nfq_delay.err")"
  failed=1
fi
if ((failed)); then
  echo "== scenario $name FAILED (expect: $S_EXPECT; normal: $S_NORMAL)"
  show_logs
  exit 1
fi
echo "== scenario $name passed"
exit 0

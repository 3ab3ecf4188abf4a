#!/usr/bin/env bash
# Loopback throughput of one glasnode flow against iperf3's single TCP flow, measured
# alternately in the same run so that both see the same machine load.
#
#   bench/flow/flow_vs_iperf3.sh BUILD_DIR [RUNS] [DURATION_S]
#
# Each round runs: iperf3 (one flow, 127.0.0.1), a BT download flow, a control upload flow.
# Prints every run, then the median of each column and the flows' ratio to iperf3.
set -euo pipefail

build=${1:?usage: flow_vs_iperf3.sh BUILD_DIR [RUNS] [DURATION_S]}
runs=${2:-5}
secs=${3:-5}
bench="$build/bench/flow/glasnode_flow_bench"
[[ -x $bench ]] || { echo "missing $bench (build target glasnode_flow_bench)" >&2; exit 2; }
command -v iperf3 >/dev/null || { echo "iperf3 not installed" >&2; exit 2; }
(( runs >= 1 && runs <= 50 && secs >= 1 && secs <= 60 )) || { echo "runs 1-50, seconds 1-60" >&2; exit 2; }

port=$(( 20000 + RANDOM % 20000 ))
server_pid=""
cleanup() {
    if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then kill "$server_pid"; fi
}
trap cleanup EXIT

iperf_run() {
    iperf3 -s -1 -B 127.0.0.1 -p "$port" >/dev/null 2>&1 &
    server_pid=$!
    # The server needs a moment to listen; retry the client instead of sleeping a fixed time.
    local out="" tries=0
    # (iperf3 -J exits 0 even when the connection is refused: look for the result instead.)
    until out=$(timeout $((secs + 20)) iperf3 -c 127.0.0.1 -p "$port" -t "$secs" -J 2>/dev/null) &&
        [[ $out == *sum_received* ]]; do
        tries=$((tries + 1))
        (( tries < 50 )) || { echo "iperf3 client failed" >&2; return 1; }
        kill -0 "$server_pid" 2>/dev/null || { echo "iperf3 server exited" >&2; return 1; }
        sleep 0.1
    done
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
    python3 -c 'import json,sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9))' <<<"$out"
}

flow_run() { # kind direction
    timeout $((secs + 60)) "$bench" --kind "$1" --direction "$2" --duration-ms $((secs * 1000)) |
        sed -n 's/.*gbit_s=\([0-9.]*\).*agent_end=\([a-z_]*\) provider_end=\([a-z_]*\).*/\1 \2 \3/p'
}

printf '%-5s %12s %16s %16s\n' run iperf3_gbit bt_down_gbit control_up_gbit
ip=() bt=() ct=()
for ((i = 0; i < runs; i++)); do
    a=$(iperf_run)
    read -r b bend pend < <(flow_run bt download)
    [[ $bend == completed && $pend == completed ]] || echo "bt flow ended $bend/$pend" >&2
    read -r c cend cpend < <(flow_run control upload)
    [[ $cend == completed && $cpend == completed ]] || echo "control flow ended $cend/$cpend" >&2
    printf '%-5s %12s %16s %16s\n' "$i" "$a" "$b" "$c"
    ip+=("$a") bt+=("$b") ct+=("$c")
done

python3 - "${ip[*]}" "${bt[*]}" "${ct[*]}" <<'PY'
import statistics, sys
ip, bt, ct = ([float(x) for x in a.split()] for a in sys.argv[1:4])
mi, mb, mc = (statistics.median(x) for x in (ip, bt, ct))
print(f"{'median':<5} {mi:12.2f} {mb:16.2f} {mc:16.2f}")
print(f"ratio to iperf3 (medians): bt download {mb / mi:.0%}, control upload {mc / mi:.0%}")
PY

#!/usr/bin/env bash
# Verifies every testbed policy on this machine without glasnode: iperf3 (random data) and
# lib/bt_flow.py (a BitTorrent handshake or its bit-inverted control, then random bytes) through
# the router, rates measured at the receiver. Also the guard against policies that silently match
# everything (e.g. a u32 mark filter): the control flow is measured through every policy.
# Exit 0 all checks passed, 1 a check failed, 77 the machine cannot run the testbed.
# Environment: CHECK_SECS (seconds per flow, default 3), CHECK_RATE (bottleneck, default
# 50mbit), CHECK_THROTTLE (default 2mbit), TB_KEEP=1 keeps the logs.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/testbed.sh
source "$here/lib/testbed.sh"
tb_require iperf3 python3

SECS=${CHECK_SECS:-3}
RATE=${CHECK_RATE:-50mbit}
THROTTLE=${CHECK_THROTTLE:-2mbit}
BT=$TB_BT_PORT
OTHER=$TB_NEUTRAL_PORT

tb_up || exit 1
tb_bottleneck "$RATE" || exit 1
B=$(tb_bottleneck_mbps)
T=$(awk -v k="$(_tb_kbit "$THROTTLE")" 'BEGIN { print k / 1000 }')
# A flow ran at the path's normal rate / was throttled:
HI=$(awk -v b="$B" 'BEGIN { print 0.7 * b }')
LO=$(awk -v t="$T" 'BEGIN { print 1.5 * t }')
POLICY=""
declare -a RATES=()

jfield() { python3 -c 'import json, sys
d = json.loads(sys.argv[1] or "{}")
v = d.get(sys.argv[2])
print("" if v is None else str(v).lower() if isinstance(v, bool) else v)' "$1" "$2"; }

record() { RATES+=("$(printf '%-22s %-34s %9s  %s' "$POLICY" "$1" "$2" "$3")"); }

# flow DIR PORT PAYLOAD [ACCEPT_TIMEOUT]: A connects to B; "up" = A sends, "down" = B sends.
# Sets F_RATE (receiver's Mbit/s), F_CLIENT / F_SERVER (JSON), F_CEND / F_SEND (ends).
flow() {
  local dir=$1 port=$2 payload=$3
  tb_pyflow "$dir" "$port" "$payload" "$SECS" "${4:-15}"
  F_CLIENT=$TB_FLOW_CLIENT F_SERVER=$TB_FLOW_SERVER
  F_CEND=$(jfield "$F_CLIENT" end)
  F_SEND=$(jfield "$F_SERVER" end)
  if [[ $dir == up ]]; then F_RATE=$(jfield "$F_SERVER" mbps); else F_RATE=$(jfield "$F_CLIENT" mbps); fi
  local rst_c rst_s
  rst_c=$(jfield "$F_CLIENT" reset_after_s) rst_s=$(jfield "$F_SERVER" reset_after_s)
  record "$payload $dir port $port" "${F_RATE:--}" \
    "client=$F_CEND${rst_c:+@${rst_c}s} server=${F_SEND:-none}${rst_s:+@${rst_s}s}"
}

# iperf DIR PORT [iperf3 options]: random data (iperf3's default payload). Sets I_RATE.
iperf() {
  local dir=$1 port=$2 json
  shift 2
  local -a rev=()
  [[ $dir == down ]] && rev=(-R)
  I_RATE=""
  tb_spawn --ready 'Server listening' iperf_srv "$TB_NS_B" iperf3 -s -1 -B "$TB_IP_B" \
    -p "$port" --forceflush || return 1
  json=$(tb_run $((SECS + 20)) "$TB_NS_A" iperf3 -c "$TB_IP_B" -p "$port" -t "$SECS" -J \
    "${rev[@]}" "$@")
  tb_wait iperf_srv 10
  I_RATE=$(python3 -c 'import json, sys
try:
    print(round(json.loads(sys.argv[1])["end"]["sum_received"]["bits_per_second"] / 1e6, 3))
except (ValueError, KeyError):
    print("")' "$json")
  record "random(iperf3) $dir port $port $*" "${I_RATE:--}" ""
}

is_normal() { tb_assert_cmp "$1 ran at the normal rate" "${2:-0}" ">=" "$HI"; }
is_throttled() { tb_assert_cmp "$1 was throttled" "${2:-999}" "<=" "$LO"; }
is_reset() { tb_assert_eq "$1" "$2" reset; }

echo "== bottleneck $B Mbit/s, throttled class $T Mbit/s, $SECS s per flow"
echo "== normal rate >= $HI Mbit/s, throttled <= $LO Mbit/s"

POLICY=library
t0=$(_tb_usec)
tb_spawn --ready 'never printed' --timeout 1 silent - sleep 30 2>/dev/null
rc=$?
waited=$(awk -v d=$(($(_tb_usec) - t0)) 'BEGIN { printf "%.2f\n", d / 1e6 }')
tb_assert_eq "library: a readiness wait gives up (status 2)" "$rc" 2
tb_assert_cmp "library: ... after its 1 s timeout (s)" "$waited" "<=" 1.5
tb_stop silent
tb_assert_eq "library: tb_stop ends it (status of a TERMed process)" "$?" 143

POLICY=clean
tb_policy_clean
iperf up "$BT"; is_normal "clean: random data up on port $BT" "$I_RATE"
iperf down "$OTHER"; is_normal "clean: random data down on port $OTHER" "$I_RATE"
flow up "$BT" bt; is_normal "clean: BitTorrent up on port $BT" "$F_RATE"
tb_assert_eq "clean: the receiver got the handshake intact" "$(jfield "$F_SERVER" prefix_ok)" true
flow down "$OTHER" bt; is_normal "clean: BitTorrent down on port $OTHER" "$F_RATE"
flow up "$BT" control; is_normal "clean: control up on port $BT" "$F_RATE"

POLICY="content $THROTTLE"
tb_policy_content_throttle "$THROTTLE" || exit 1
flow up "$BT" bt; is_throttled "content: BitTorrent up on port $BT" "$F_RATE"
flow down "$BT" bt; is_throttled "content: BitTorrent down on port $BT" "$F_RATE"
flow up "$OTHER" bt; is_throttled "content: BitTorrent up on port $OTHER" "$F_RATE"
iperf up "$BT"; is_normal "content: random data up on port $BT" "$I_RATE"
iperf down "$BT"; is_normal "content: random data down on port $BT" "$I_RATE"
flow up "$BT" control; is_normal "content: control up on port $BT" "$F_RATE"
flow down "$BT" control; is_normal "content: control down on port $BT" "$F_RATE"

POLICY="content 40%"
tb_policy_content_throttle 40% || exit 1
flow down "$BT" bt
tb_assert_cmp "content 40%: BitTorrent down at most 45% of the bottleneck" "${F_RATE:-999}" "<=" \
  "$(awk -v b="$B" 'BEGIN { print 0.45 * b }')"
tb_assert_cmp "content 40%: BitTorrent down at least 30% of the bottleneck" "${F_RATE:-0}" ">=" \
  "$(awk -v b="$B" 'BEGIN { print 0.30 * b }')"
flow down "$BT" control; is_normal "content 40%: control down on port $BT" "$F_RATE"

POLICY="port $BT $THROTTLE"
tb_policy_port_throttle "$BT" "$THROTTLE" || exit 1
iperf up "$BT"; is_throttled "port: random data up on port $BT" "$I_RATE"
iperf down "$BT"; is_throttled "port: random data down on port $BT" "$I_RATE"
flow up "$BT" control; is_throttled "port: control up on port $BT" "$F_RATE"
iperf up "$OTHER"; is_normal "port: random data up on port $OTHER" "$I_RATE"
flow up "$OTHER" bt; is_normal "port: BitTorrent up on port $OTHER" "$F_RATE"
flow down "$OTHER" control; is_normal "port: control down on port $OTHER" "$F_RATE"

POLICY="reset both ends"
tb_policy_reset_both || exit 1
flow up "$BT" bt
is_reset "reset-both: BitTorrent up, the sender (client) got a RST" "$F_CEND"
is_reset "reset-both: BitTorrent up, the receiver (server) got a RST" "$F_SEND"
tb_assert_eq "reset-both: the handshake itself passed" "$(jfield "$F_SERVER" prefix_ok)" true
flow down "$OTHER" bt
is_reset "reset-both: BitTorrent down, the receiver (client) got a RST" "$F_CEND"
is_reset "reset-both: BitTorrent down, the sender (server) got a RST" "$F_SEND"
flow up "$BT" control; is_normal "reset-both: control up on port $BT" "$F_RATE"
tb_assert_eq "reset-both: control up ended cleanly" "$F_CEND/$F_SEND" "done/eof"

POLICY="reset client only"
tb_policy_reset_client || exit 1
flow up "$BT" bt
is_reset "reset-client: BitTorrent up, the sender (client) got a RST" "$F_CEND"
tb_assert_eq "reset-client: BitTorrent up, the receiver (server) saw neither RST nor FIN" \
  "$F_SEND" idle
flow down "$BT" bt
is_reset "reset-client: BitTorrent down, the receiver (client) got a RST" "$F_CEND"
tb_assert "reset-client: BitTorrent down, the sender (server) got no RST ($F_SEND)" \
  test "$F_SEND" != reset
flow down "$BT" control; is_normal "reset-client: control down on port $BT" "$F_RATE"
tb_assert_eq "reset-client: control down ended cleanly" "$F_CEND/$F_SEND" "eof/done"

POLICY="block $BT"
tb_policy_block "$BT" || exit 1
flow up "$BT" bt 6
tb_assert_eq "block: BitTorrent connect to port $BT" "$(jfield "$F_CLIENT" connect)" timeout
flow up "$BT" control 6
tb_assert_eq "block: control connect to port $BT" "$(jfield "$F_CLIENT" connect)" timeout
flow up "$OTHER" bt; is_normal "block: BitTorrent up on port $OTHER" "$F_RATE"
flow down "$OTHER" control; is_normal "block: control down on port $OTHER" "$F_RATE"

POLICY="delayed 3MB $THROTTLE"
tb_policy_delayed_throttle 3MB "$THROTTLE" || exit 1
flow down "$BT" bt
tb_assert_cmp "delayed: BitTorrent down, the first 3 MB arrived (bytes)" \
  "$(jfield "$F_CLIENT" bytes)" ">=" 3000000
tb_assert_cmp "delayed: BitTorrent down, then throttled (Mbit/s at most half the bottleneck)" \
  "${F_RATE:-999}" "<=" "$(awk -v b="$B" 'BEGIN { print 0.5 * b }')"
flow down "$BT" control; is_normal "delayed: control down on port $BT" "$F_RATE"

POLICY="police $THROTTLE"
tb_policy_police "$THROTTLE" || exit 1
flow up "$OTHER" bt; is_throttled "police: BitTorrent up on port $OTHER" "$F_RATE"
flow down "$BT" bt; is_throttled "police: BitTorrent down on port $BT" "$F_RATE"
flow down "$BT" control; is_normal "police: control down on port $BT" "$F_RATE"
tb_assert_cmp "police: the policer dropped packets" "$(tb_policy_drops)" ">" 0

for mode in client both; do
  POLICY="reset early $mode"
  tb_policy_reset_early "$mode" || exit 1
  flow up "$BT" bt
  is_reset "reset-early $mode: BitTorrent up, the sender (client) got a RST" "$F_CEND"
  tb_assert_eq "reset-early $mode: BitTorrent up, the receiver got no byte" \
    "$(jfield "$F_SERVER" bytes)" 0
  flow down "$OTHER" bt
  is_reset "reset-early $mode: BitTorrent down, the sender (server) got a RST" "$F_SEND"
  tb_assert_eq "reset-early $mode: BitTorrent down, the receiver got no byte" \
    "$(jfield "$F_CLIENT" bytes)" 0
  flow up "$BT" control; is_normal "reset-early $mode: control up on port $BT" "$F_RATE"
done

POLICY="reset after 200KB"
tb_policy_reset_after 200KB || exit 1
flow up "$BT" bt
is_reset "reset-after: BitTorrent up, the sender (client) got a RST" "$F_CEND"
is_reset "reset-after: BitTorrent up, the receiver (server) got a RST" "$F_SEND"
tb_assert_cmp "reset-after: the receiver got the first 100 KB (bytes)" \
  "$(jfield "$F_SERVER" bytes)" ">=" 100000
tb_assert_cmp "reset-after: ... and not much more than 200 KB (bytes)" \
  "$(jfield "$F_SERVER" bytes)" "<=" 400000
flow down "$BT" control; is_normal "reset-after: control down on port $BT" "$F_RATE"

POLICY="stateful 60 $THROTTLE"
tb_policy_stateful 60 "$THROTTLE" || exit 1
flow down "$OTHER" control; is_normal "stateful: control down on port $OTHER before any BitTorrent" "$F_RATE"
flow down "$BT" bt; is_throttled "stateful: BitTorrent down on port $BT" "$F_RATE"
tb_assert_eq "stateful: B's endpoint is remembered" "$(tb_policy_stateful_entries)" \
  "$TB_IP_B,tcp:$BT"
flow down "$BT" control; is_throttled "stateful: control down on port $BT afterwards" "$F_RATE"
iperf up "$BT"; is_throttled "stateful: random data up on port $BT afterwards" "$I_RATE"
flow down "$OTHER" control; is_normal "stateful: control down on port $OTHER afterwards" "$F_RATE"
tb_policy_clean
tb_assert_eq "stateful: the set is gone with the policy" \
  "$(tb_ns "$TB_NS_R" ipset list -n | grep -c "^$TB_IPSET\$")" 0

POLICY="loss 1%"
tb_policy_loss 1 || exit 1
rx_packets() {
  local ns_sum=0 dev n
  for dev in "$TB_DEV_RA" "$TB_DEV_RB"; do
    n=$(tb_ns "$TB_NS_R" cat "/sys/class/net/$dev/statistics/rx_packets") || return 1
    ns_sum=$((ns_sum + n))
  done
  echo "$ns_sum"
}
rx0=$(rx_packets) drop0=$(tb_policy_drops)
iperf up "$OTHER"
iperf down "$OTHER" -C cubic
flow up "$BT" bt; bt_loss=$F_RATE
flow up "$BT" control; is_normal "loss: control up on port $BT (bbr)" "$F_RATE"
rx1=$(rx_packets) drop1=$(tb_policy_drops)
ratio=$(awk -v d=$((drop1 - drop0)) -v n=$((rx1 - rx0)) 'BEGIN { printf "%.4f\n", n ? 100 * d / n : 0 }')
record "dropped packets (% of $((rx1 - rx0)))" "$ratio" ""
tb_assert_cmp "loss: share of forwarded packets dropped (%) above 0.6" "$ratio" ">=" 0.6
tb_assert_cmp "loss: share of forwarded packets dropped (%) below 1.4" "$ratio" "<=" 1.4
tb_assert_cmp "loss: BitTorrent and control alike (BitTorrent >= 0.8 x control)" "${bt_loss:-0}" \
  ">=" "$(awk -v c="${F_RATE:-0}" 'BEGIN { print 0.8 * c }')"

POLICY="clean + cross"
tb_policy_clean
tb_cross_start --seed 7 --dir both --parallel 2 --max-s 60 || exit 1
# Sample the router's forwarded bytes (both directions) every 0.25 s for 8 s.
samples=$(tb_ns "$TB_NS_R" python3 - "$TB_DEV_RA" "$TB_DEV_RB" <<'EOF'
import sys, time
def tx():
    return sum(int(open("/sys/class/net/%s/statistics/tx_bytes" % d).read()) for d in sys.argv[1:])
prev, t0 = tx(), time.monotonic()
out = []
for _ in range(32):
    time.sleep(0.25)
    cur, t1 = tx(), time.monotonic()
    out.append("%.2f" % ((cur - prev) * 8 / (t1 - t0) / 1e6))
    prev, t0 = cur, t1
print(" ".join(out))
EOF
)
echo "cross traffic, router Mbit/s per 0.25 s (both directions): $samples"
read -r cmax cmin switches < <(awk -v b="$B" '{ mx = 0; mn = 1e9; sw = 0; st = -1
  for (i = 1; i <= NF; i++) { if ($i > mx) mx = $i; if ($i < mn) mn = $i
    s = ($i > 0.3 * b) ? 1 : ($i < 0.05 * b) ? 0 : st
    if (st >= 0 && s != st) sw++; st = s }
  print mx, mn, sw }' <<<"$samples")
record "cross: peak / trough Mbit/s" "$cmax / $cmin" "$switches on/off switches in 8 s"
tb_assert_cmp "cross: bursts reach the bottleneck (peak Mbit/s)" "$cmax" ">=" \
  "$(awk -v b="$B" 'BEGIN { print 0.5 * b }')"
tb_assert_cmp "cross: silences between bursts (trough Mbit/s)" "$cmin" "<=" \
  "$(awk -v b="$B" 'BEGIN { print 0.05 * b }')"
tb_assert_cmp "cross: switches on and off" "$switches" ">=" 2
flow down "$BT" control
tb_assert_cmp "cross: control down still got through" "${F_RATE:-0}" ">" 1
tb_cross_stop
tb_assert_cmp "cross: the loop logged its phases" "$(grep -c '^on ' "$TB_DIR/cross.out")" ">=" 2
left=$(ps -e -o pgid=,stat= | awk -v a="${TB_PID[cross]}" -v b="${TB_PID[cross_server]}" \
  '($1 == a || $1 == b) && $2 !~ /^Z/' | wc -l)
tb_assert_eq "cross: stopped (live processes left in its groups)" "$left" 0
POLICY="delay 20 ms each way"
if [[ -n ${TB_NFQ_DELAY:-} ]]; then
  # The TCP connect time is one round trip (SYN, SYN-ACK).
  flow down "$BT" control
  rtt0=$(jfield "$F_CLIENT" connect_ms)
  tb_delay 20 || exit 1
  flow down "$BT" bt
  rtt1=$(jfield "$F_CLIENT" connect_ms)
  record "connect RTT ms before / with delay" "$rtt0 / $rtt1" ""
  tb_assert_cmp "delay: RTT with 20 ms each way (ms) at least 38" "${rtt1:-0}" ">=" 38
  tb_assert_cmp "delay: RTT with 20 ms each way (ms) at most 100" "${rtt1:-999}" "<=" 100
  is_normal "delay: BitTorrent down on port $BT" "$F_RATE"
  tb_delay_off
else
  echo "note: TB_NFQ_DELAY is not set (glasnode_nfq_delay not built): delay not checked"
fi

POLICY="asymmetric 10:1"
down_kbit=$(_tb_kbit "$RATE") || exit 1
tb_bottleneck "${RATE}/$((down_kbit / 10))kbit" || exit 1
tb_policy_clean
UP=$(tb_bottleneck_mbps up)
iperf up "$OTHER"
tb_assert_cmp "asym: random data up at most the uplink (Mbit/s)" "${I_RATE:-999}" "<=" "$UP"
tb_assert_cmp "asym: random data up at least 0.7 x the uplink (Mbit/s)" "${I_RATE:-0}" ">=" \
  "$(awk -v b="$UP" 'BEGIN { print 0.7 * b }')"
iperf down "$OTHER"; is_normal "asym: random data down" "$I_RATE"

echo
echo "== measured (receiver's Mbit/s; congestion control $(jfield "$F_CLIENT" cc))"
printf '%-22s %-34s %9s  %s\n' policy flow Mbit/s ends
printf '%s\n' "${RATES[@]}"
echo
tb_finish

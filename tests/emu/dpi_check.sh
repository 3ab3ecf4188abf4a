#!/usr/bin/env bash
# Checks that real classifiers see BitTorrent where glasnode means BitTorrent, and nothing where
# it means control: each flow-producing command runs on a neutral testbed path while tcpdump
# captures on the router; then tshark (the BitTorrent dissector, its heuristic enabled, so the
# port does not matter) and nDPI (ndpiReader, when installed) classify every TCP stream.
#
# usage: dpi_check.sh [--setup CMD] [--bt CMD]... [--control CMD]... [--ports "P..."]
#                     [--snaplen N]
#   --setup CMD    run once before the captures (e.g. start a provider in B with tb_spawn)
#   --bt CMD       its capture must hold payload-carrying TCP streams, and EVERY one of them must
#                  carry a BitTorrent handshake (tshark) and be labelled BitTorrent by nDPI
#   --control CMD  its capture must hold payload-carrying TCP streams, none of them BitTorrent
#                  for either classifier (on ports 6881-6889 tshark decodes any payload as
#                  BitTorrent "continuation data", so the criterion is the handshake)
#   --ports "P..." the ports of the test's own flows (default: TB_BT_PORT and TB_NEUTRAL_PORT):
#                  only TCP between A and B with one of them on a port listed here is captured
#                  and classified, so control channels and other traffic are left out
# CMD is bash evaluated in this script: it may use the tb_* functions, TB_NS_A, TB_NS_B,
# TB_IP_A, TB_IP_B, TB_BT_PORT, TB_NEUTRAL_PORT, TB_DIR and dpi_flow DIR PORT PAYLOAD [SECS]
# (lib/bt_flow.py: A connects to B, "up" = A sends). It must end by itself (bounded).
# Without --bt/--control, the lib/bt_flow.py flows: BitTorrent and control, ports 6881 and 9775.
# nDPI (ndpiReader, Debian libndpi-bin) is required; DPI_WITHOUT_NDPI=1 runs with tshark alone.
# A command that exits non-zero, or a classifier that fails, is a failed check.
# Exit 0 all checks passed, 1 a check failed, 77 the machine cannot run it (1 in CI, CI=true).
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/testbed.sh
source "$here/lib/testbed.sh"

setup="" snaplen=${DPI_SNAPLEN:-256} ports="$TB_BT_PORT $TB_NEUTRAL_PORT"
declare -a bt_cmds=() control_cmds=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --setup) setup=$2 ;;
    --bt) bt_cmds+=("$2") ;;
    --control) control_cmds+=("$2") ;;
    --ports) ports=$2 ;;
    --snaplen) snaplen=$2 ;;
    -h | --help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "dpi_check: unknown argument $1" >&2; exit 2 ;;
  esac
  shift 2
done
have_ndpi=1
if [[ ${DPI_WITHOUT_NDPI:-0} == 1 ]]; then
  have_ndpi=0
  tb_require tcpdump tshark python3
else
  tb_require tcpdump tshark python3 ndpiReader
fi
# The capture filter: the test's own flows only.
port_expr="" p=""
for p in $ports; do
  [[ $p =~ ^[0-9]+$ ]] || { echo "dpi_check: bad port '$p'" >&2; exit 2; }
  port_expr+="${port_expr:+ or }port $p"
done
[[ -n $port_expr ]] || { echo "dpi_check: no ports to capture" >&2; exit 2; }
capture_filter="tcp and host $TB_IP_A and host $TB_IP_B and ($port_expr)"

# shellcheck disable=SC2317 # called from the evaluated commands
dpi_flow() { tb_pyflow "$1" "$2" "$3" "${4:-1}"; }

if ((${#bt_cmds[@]} + ${#control_cmds[@]} == 0)); then
  # shellcheck disable=SC2016 # expanded when evaluated
  bt_cmds=('dpi_flow up "$TB_BT_PORT" bt' 'dpi_flow down "$TB_NEUTRAL_PORT" bt')
  # shellcheck disable=SC2016 # expanded when evaluated
  control_cmds=('dpi_flow up "$TB_BT_PORT" control' 'dpi_flow down "$TB_NEUTRAL_PORT" control')
fi

tb_up || exit 1
tb_bottleneck 50mbit || exit 1
tb_policy_clean || exit 1
if [[ -n $setup ]]; then
  eval "$setup" || { echo "dpi_check: setup failed: $setup" >&2; exit 1; }
fi

n=0
# capture_and_classify KIND CMD: captures on the router while CMD runs, then classifies.
# Sets C_STREAMS, C_TSHARK_BT, C_NDPI_BT.
capture_and_classify() {
  local kind=$1 cmd=$2 pcap fields summary
  n=$((n + 1))
  pcap=$TB_DIR/$kind-$n.pcap
  fields=$TB_DIR/$kind-$n.tsv
  # -Z root: keep writing into this run's private directory; -c bounds the file.
  tb_spawn --stderr --ready 'listening on' "capture$n" "$TB_NS_R" \
    tcpdump -i "$TB_DEV_RB" -s "$snaplen" -c 2000000 -U -Z root -w "$pcap" "$capture_filter" ||
    return 1
  local rc=0
  eval "$cmd" || rc=$?
  tb_stop "capture$n"
  if ((rc)); then
    echo "dpi_check: the command exited with status $rc: $cmd" >&2
    return 1
  fi
  tshark -n -r "$pcap" --enable-heuristic bittorrent_tcp -Y 'tcp.len > 0' -T fields \
    -E separator=/t -e tcp.stream -e ip.src -e tcp.srcport -e ip.dst -e tcp.dstport \
    -e tcp.len -e bittorrent.protocol.name >"$fields" 2>"$fields.err" || {
    echo "dpi_check: tshark failed on $pcap:" >&2
    cat "$fields.err" >&2
    return 1
  }
  local -a ndpi_args=()
  if ((have_ndpi)); then
    if ! ndpiReader -q -i "$pcap" -C "$TB_DIR/$kind-$n.csv" >"$TB_DIR/$kind-$n.ndpi" 2>&1 ||
      [[ ! -s $TB_DIR/$kind-$n.csv ]]; then
      echo "dpi_check: ndpiReader failed on $pcap:" >&2
      tail -n 5 "$TB_DIR/$kind-$n.ndpi" >&2
      return 1
    fi
    ndpi_args=("$TB_DIR/$kind-$n.csv")
  fi
  echo "$kind: $cmd"
  python3 "$TB_LIB_DIR/dpi_streams.py" "$fields" "${ndpi_args[@]}" >"$TB_DIR/$kind-$n.out" || return 1
  sed '$d' "$TB_DIR/$kind-$n.out"
  summary=$(tail -n 1 "$TB_DIR/$kind-$n.out")
  read -r C_STREAMS C_TSHARK_BT C_NDPI_BT < <(python3 -c 'import json, sys
d = json.loads(sys.argv[1])
print(d["streams"], d["tshark_bt"], "-" if d["ndpi_bt"] is None else d["ndpi_bt"])' "$summary")
}

echo "capturing: $capture_filter"
for cmd in "${bt_cmds[@]}"; do
  if ! capture_and_classify bt "$cmd"; then
    tb_fail "bt: could not run, capture or classify: $cmd"
    continue
  fi
  tb_assert_cmp "bt: TCP streams with payload were captured" "$C_STREAMS" ">=" 1
  tb_assert_eq "bt: streams tshark dissects as a BitTorrent handshake (of $C_STREAMS)" \
    "$C_TSHARK_BT" "$C_STREAMS"
  if ((have_ndpi)); then
    tb_assert_eq "bt: streams nDPI labels BitTorrent (of $C_STREAMS)" "$C_NDPI_BT" "$C_STREAMS"
  fi
done
for cmd in "${control_cmds[@]}"; do
  if ! capture_and_classify control "$cmd"; then
    tb_fail "control: could not run, capture or classify: $cmd"
    continue
  fi
  tb_assert_cmp "control: TCP streams with payload were captured" "$C_STREAMS" ">=" 1
  tb_assert_eq "control: streams tshark dissects as a BitTorrent handshake (of $C_STREAMS)" \
    "$C_TSHARK_BT" 0
  if ((have_ndpi)); then
    tb_assert_eq "control: streams nDPI labels BitTorrent (of $C_STREAMS)" "$C_NDPI_BT" 0
  fi
done
((have_ndpi)) || echo "note: DPI_WITHOUT_NDPI=1: nDPI not consulted"
tb_finish

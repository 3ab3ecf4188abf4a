# shellcheck shell=bash
# glasnode emulation testbed: host A <-> router R (the ISP middlebox) <-> host B, each a network
# namespace of its own. Source this file from a bash test script.
#
# Contract:
# - Every name this run creates carries a per-run tag (namespaces gnemu-<tag>-{A,R,B}), so a
#   leftover of a crashed run is never touched; an existing namespace of the same name is an error.
# - Addresses 10.77.1.0/24 (A-R) and 10.77.2.0/24 (R-B) exist only inside those namespaces.
# - tb_up installs an EXIT/INT/TERM trap; teardown stops only the processes this run spawned
#   (their process groups) and deletes only the namespaces this run created. Scripts that need
#   their own exit work add a command to TB_EXIT_HOOKS instead of replacing the trap.
# - Every wait is bounded: readiness lines by tb_spawn --ready, exits by tb_wait/tb_stop.
# - Functions return non-zero on failure and print the reason on stderr; none calls exit,
#   except tb_require (exit 77: the machine cannot run the testbed) and the signal traps.
# - Not reentrant: one testbed per shell. Do not call tb_spawn inside $(...): the process
#   would belong to the subshell.

TB_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

TB_TAG=${TB_TAG:-$$-$RANDOM}
TB_NS_A=gnemu-$TB_TAG-A
TB_NS_R=gnemu-$TB_TAG-R
TB_NS_B=gnemu-$TB_TAG-B
TB_IP_A=10.77.1.2
TB_IP_RA=10.77.1.1
TB_IP_RB=10.77.2.1
TB_IP_B=10.77.2.2
TB_DEV_A=vA
TB_DEV_RA=vRA
TB_DEV_RB=vRB
TB_DEV_B=vB
TB_BT_PORT=${TB_BT_PORT:-6881}
TB_NEUTRAL_PORT=${TB_NEUTRAL_PORT:-9775}
TB_CROSS_PORT=${TB_CROSS_PORT:-5201}
TB_BT_STRING="BitTorrent protocol"
TB_DIR=""
# Rates in kbit/s. TB_RATE_KBIT and TB_THROTTLE_KBIT are the download direction's (B->A, shaped on
# vRA); TB_UP_RATE_KBIT and TB_UP_THROTTLE_KBIT the upload direction's (A->B, shaped on vRB).
TB_RATE_KBIT=0
TB_THROTTLE_KBIT=0
TB_UP_RATE_KBIT=0
TB_UP_THROTTLE_KBIT=0
TB_IPSET=gnemu-$TB_TAG
TB_IPSET_MADE=0
TB_FAILURES=0
TB_CHECKS=0
declare -a TB_CREATED_NS=()
declare -a TB_PIDS=()
declare -a TB_EXIT_HOOKS=()
declare -A TB_PID=()
TB_DOWN_DONE=0

tb_log() { printf '[testbed %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# tb_skip REASON: the machine cannot run this test. Exit 77 (CTest skip), except in CI
# (CI=true), where a test that cannot run is a failure: exit 1.
tb_skip() {
  if [[ ${CI:-} == true ]]; then
    echo "FAIL: $* (CI=true: a test that cannot run fails instead of skipping)" >&2
    exit 1
  fi
  echo "SKIP: $*" >&2
  exit 77
}

# tb_require TOOL...: tb_skip unless root, network namespaces and every tool exist (ip, tc,
# iptables, ipset, ethtool, mkfifo, setsid, timeout are always required).
tb_require() {
  if [[ $(id -u) != 0 ]]; then
    tb_skip "the emulation testbed needs root"
  fi
  local tool
  for tool in ip tc iptables ipset ethtool mkfifo setsid timeout "$@"; do
    if ! command -v "$tool" >/dev/null 2>&1; then
      tb_skip "$tool is not installed (Debian: apt-get install $tool)"
    fi
  done
  if ! unshare --net true 2>/dev/null; then
    tb_skip "network namespaces are unavailable"
  fi
}

_tb_usec() { local t=${EPOCHREALTIME//[.,]/}; echo "$t"; }

# _tb_kbit RATE: a tc-style rate (e.g. 50mbit, 500kbit, 1gbit) in kbit/s.
_tb_kbit() {
  local r=${1,,}
  if [[ $r =~ ^([0-9]+)(\.[0-9]+)?(kbit|mbit|gbit)$ ]]; then
    awk -v n="${BASH_REMATCH[1]}${BASH_REMATCH[2]}" -v u="${BASH_REMATCH[3]}" \
      'BEGIN { m = (u == "kbit") ? 1 : (u == "mbit") ? 1000 : 1000000; printf "%d\n", n * m }'
  else
    echo "testbed: bad rate '$1' (want e.g. 2mbit, 500kbit)" >&2
    return 1
  fi
}

# _tb_bytes SIZE: a byte count, plain or with a decimal suffix (KB = 1000, MB = 10^6, GB = 10^9)
# or a binary one (KiB = 1024, MiB = 2^20), e.g. 200KB, 3MB, 10MB.
_tb_bytes() {
  local b=$1
  if [[ $b =~ ^([0-9]+)(\.[0-9]+)?(|B|KB|MB|GB|KiB|MiB|GiB)$ ]]; then
    awk -v n="${BASH_REMATCH[1]}${BASH_REMATCH[2]}" -v u="${BASH_REMATCH[3]}" 'BEGIN {
      m["KB"] = 1e3; m["MB"] = 1e6; m["GB"] = 1e9
      m["KiB"] = 1024; m["MiB"] = 1048576; m["GiB"] = 1073741824
      printf "%d\n", n * ((u in m) ? m[u] : 1) }'
  else
    echo "testbed: bad size '$1' (want e.g. 200KB, 3MB, 1048576)" >&2
    return 1
  fi
}

tb_ns() { ip netns exec "$@"; }

tb_up() {
  TB_DIR=$(mktemp -d "${TMPDIR:-/tmp}/gnemu.XXXXXX") || return 1
  TB_OWNER=$BASHPID
  trap tb_down EXIT
  trap 'tb_down; exit 130' INT
  trap 'tb_down; exit 143' TERM
  local ns
  for ns in "$TB_NS_A" "$TB_NS_R" "$TB_NS_B"; do
    if [[ -e /run/netns/$ns ]]; then
      echo "testbed: namespace $ns already exists; not touching it" >&2
      return 1
    fi
    ip netns add "$ns" || return 1
    TB_CREATED_NS+=("$ns")
  done
  ip link add "$TB_DEV_A" netns "$TB_NS_A" type veth peer name "$TB_DEV_RA" netns "$TB_NS_R" &&
    ip link add "$TB_DEV_B" netns "$TB_NS_B" type veth peer name "$TB_DEV_RB" netns "$TB_NS_R" &&
    ip -n "$TB_NS_A" addr add "$TB_IP_A/24" dev "$TB_DEV_A" &&
    ip -n "$TB_NS_R" addr add "$TB_IP_RA/24" dev "$TB_DEV_RA" &&
    ip -n "$TB_NS_R" addr add "$TB_IP_RB/24" dev "$TB_DEV_RB" &&
    ip -n "$TB_NS_B" addr add "$TB_IP_B/24" dev "$TB_DEV_B" || return 1
  for ns in "$TB_NS_A" "$TB_NS_R" "$TB_NS_B"; do
    ip -n "$ns" link set lo up || return 1
  done
  ip -n "$TB_NS_A" link set "$TB_DEV_A" up &&
    ip -n "$TB_NS_B" link set "$TB_DEV_B" up &&
    ip -n "$TB_NS_R" link set "$TB_DEV_RA" up &&
    ip -n "$TB_NS_R" link set "$TB_DEV_RB" up &&
    ip -n "$TB_NS_A" route add default via "$TB_IP_RA" &&
    ip -n "$TB_NS_B" route add default via "$TB_IP_RB" &&
    tb_ns "$TB_NS_R" sysctl -qw net.ipv4.ip_forward=1 || return 1
  # Offloads off so that shaping and string matching see real MTU-sized packets.
  local pair
  for pair in "$TB_NS_A $TB_DEV_A" "$TB_NS_R $TB_DEV_RA" "$TB_NS_R $TB_DEV_RB" "$TB_NS_B $TB_DEV_B"; do
    # shellcheck disable=SC2086
    set -- $pair
    tb_ns "$1" ethtool -K "$2" tso off gso off gro off >/dev/null 2>&1 || {
      echo "testbed: ethtool -K $2 failed" >&2
      return 1
    }
  done
  tb_log "up: $TB_NS_A ($TB_IP_A) <-> $TB_NS_R <-> $TB_NS_B ($TB_IP_B), logs in $TB_DIR"
}

# tb_down: idempotent teardown of what this run created (called by the traps).
tb_down() {
  # A freshly forked child runs the parent's traps until it execs: never tear down from there.
  [[ $BASHPID == "${TB_OWNER:-}" ]] || return 0
  ((TB_DOWN_DONE)) && return 0
  TB_DOWN_DONE=1
  local hook
  for hook in "${TB_EXIT_HOOKS[@]}"; do
    eval "$hook" || true
  done
  _tb_kill_all
  if ((TB_IPSET_MADE)); then
    # The rules that use the set go first, or the set is busy.
    _tb_ipt -t mangle -F FORWARD 2>/dev/null
    _tb_ipset_destroy || true
  fi
  local i
  for ((i = ${#TB_CREATED_NS[@]} - 1; i >= 0; i--)); do
    ip netns del "${TB_CREATED_NS[i]}" 2>/dev/null || true
  done
  TB_CREATED_NS=()
  if [[ -n $TB_DIR && -d $TB_DIR ]]; then
    if [[ ${TB_KEEP:-0} == 1 ]]; then
      tb_log "kept logs in $TB_DIR"
    else
      rm -rf -- "$TB_DIR"
    fi
  fi
  return 0
}

# _tb_ours PID SHELL_PID: true while PID is alive and a child of SHELL_PID (so a recycled PID of some
# other process is never signalled). Prints "group" when PID leads its own process group.
_tb_ours() {
  local stat rest
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  rest=${stat##*) }
  local parent=$2
  # shellcheck disable=SC2086
  set -- $rest
  [[ $2 == "$parent" ]] || return 1
  [[ $3 == "${stat%% *}" ]] && echo group
  return 0
}

# _tb_signal SIG PID: signals PID's process group when PID leads one, else PID alone.
_tb_signal() {
  local kind me=$BASHPID
  kind=$(_tb_ours "$2" "$me") || return 1
  if [[ $kind == group ]]; then
    kill -"$1" -- "-$2" 2>/dev/null
  else
    kill -"$1" "$2" 2>/dev/null
  fi
}

# The watchdog that bounds a wait: after SECS it touches FLAG and kills what is still ours.
_tb_watchdog() {
  local secs=$1 flag=$2
  shift 2
  # shellcheck disable=SC2016 # expanded by the watchdog's own shell
  setsid bash -c '
    secs=$1 flag=$2 parent=$3; shift 3; sleep "$secs"; touch "$flag"
    for pid in "$@"; do
      stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
      set -- ${stat##*) }
      [[ $2 == "$parent" ]] || continue
      if [[ $3 == "$pid" ]]; then kill -KILL -- "-$pid"; else kill -KILL "$pid"; fi
    done 2>/dev/null' _ "$secs" "$flag" "$BASHPID" "$@" &
  TB_WATCHDOG=$!
}

# KILL, not TERM: a child that has not exec'd yet would run this shell's TERM trap.
_tb_watchdog_cancel() {
  kill -KILL -- "-$TB_WATCHDOG" 2>/dev/null || kill -KILL "$TB_WATCHDOG" 2>/dev/null
  wait "$TB_WATCHDOG" 2>/dev/null
}

_tb_forget() {
  local pid=$1 i
  for i in "${!TB_PIDS[@]}"; do
    [[ ${TB_PIDS[i]} == "$pid" ]] && unset 'TB_PIDS[i]'
  done
  TB_PIDS=("${TB_PIDS[@]}")
}

# Signals every spawned process that is still ours (process groups of session leaders), waits at
# most 3 s for them, then kills what is left.
_tb_kill_all() {
  local -a live=()
  local pid
  for pid in "${TB_PIDS[@]}"; do
    _tb_signal TERM "$pid" && live+=("$pid")
  done
  TB_PIDS=()
  ((${#live[@]})) || return 0
  _tb_watchdog 3 "$TB_DIR/.teardown.killed" "${live[@]}"
  wait "${live[@]}" 2>/dev/null
  _tb_watchdog_cancel
  return 0
}

# tb_spawn [--ready REGEX] [--timeout S] [--stderr] NAME NS CMD...
# Starts CMD in namespace NS ("-" for the caller's) in the background as its own session,
# stdout in $TB_DIR/NAME.out, stderr in $TB_DIR/NAME.err; the PID is TB_PID[NAME].
# With --ready, returns only after a line of stdout (stderr with --stderr) matched REGEX,
# failing after S seconds (default 10) or when the stream ends first.
tb_spawn() {
  local ready="" timeout=10 stream=out
  while [[ $# -gt 0 && $1 == --* ]]; do
    case $1 in
      --ready) ready=$2; shift 2 ;;
      --timeout) timeout=$2; shift 2 ;;
      --stderr) stream=err; shift ;;
      --) shift; break ;;
      *) echo "tb_spawn: unknown option $1" >&2; return 2 ;;
    esac
  done
  local name=$1 ns=$2
  shift 2
  local out=$TB_DIR/$name.out err=$TB_DIR/$name.err
  local -a pre=()
  [[ $ns != - ]] && pre=(ip netns exec "$ns")
  local pid
  if [[ -z $ready ]]; then
    setsid "${pre[@]}" "$@" >"$out" 2>"$err" </dev/null &
    pid=$!
    TB_PIDS+=("$pid")
    TB_PID[$name]=$pid
    return 0
  fi
  local fifo=$TB_DIR/$name.fifo log fd
  mkfifo "$fifo" || return 1
  if [[ $stream == out ]]; then
    log=$out
    setsid "${pre[@]}" "$@" >"$fifo" 2>"$err" </dev/null &
  else
    log=$err
    setsid "${pre[@]}" "$@" >"$out" 2>"$fifo" </dev/null &
  fi
  pid=$!
  TB_PIDS+=("$pid")
  TB_PID[$name]=$pid
  exec {fd}<"$fifo"
  rm -f -- "$fifo"
  : >"$log"
  local rc=0
  _tb_wait_line "$fd" "$ready" "$timeout" "$log" || rc=$?
  # Keep draining so the process never blocks on a full pipe; the drain ends with the process.
  cat <&"$fd" >>"$log" &
  TB_PIDS+=("$!")
  TB_PID[$name.drain]=$!
  exec {fd}<&-
  if ((rc == 1)); then
    echo "tb_spawn: $name ended before printing /$ready/; its output:" >&2
    tail -n 20 "$out" "$err" >&2
  elif ((rc)); then
    echo "tb_spawn: $name printed no line matching /$ready/ within ${timeout}s; its output:" >&2
    tail -n 20 "$out" "$err" >&2
  fi
  return "$rc"
}

# _tb_wait_line FD REGEX TIMEOUT_S LOG: reads lines (copying them to LOG) until one matches.
# Returns 0 on a match, 1 at end of stream, 2 on timeout.
_tb_wait_line() {
  local fd=$1 re=$2 log=$4 line left secs
  local deadline=$(($(_tb_usec) + $3 * 1000000))
  while :; do
    left=$((deadline - $(_tb_usec)))
    ((left > 0)) || return 2
    printf -v secs '%d.%06d' $((left / 1000000)) $((left % 1000000))
    if IFS= read -r -t "$secs" -u "$fd" line; then
      printf '%s\n' "$line" >>"$log"
      [[ $line =~ $re ]] && return 0
    elif (($? > 128)); then
      return 2
    else
      [[ -n $line ]] && printf '%s\n' "$line" >>"$log"
      return 1
    fi
  done
}

# tb_wait NAME TIMEOUT_S: waits for a spawned process to exit; returns its exit status, or 124
# after killing it (and its process group) when it outlived the timeout.
tb_wait() {
  local pid=${TB_PID[$1]:?tb_wait: unknown process $1} rc flag=$TB_DIR/.$1.$RANDOM.killed
  _tb_watchdog "$2" "$flag" "$pid"
  wait "$pid"
  rc=$?
  _tb_watchdog_cancel
  _tb_forget "$pid"
  if [[ -e $flag ]]; then
    rm -f -- "$flag"
    rc=124
  fi
  return "$rc"
}

# tb_stop NAME: TERM to the process (group), then at most 3 s before KILL. Returns the status.
tb_stop() {
  local pid=${TB_PID[$1]:?tb_stop: unknown process $1}
  _tb_signal TERM "$pid"
  tb_wait "$1" 3
}

# tb_run SECS NS CMD...: runs CMD in namespace NS in the foreground, killed after SECS.
tb_run() {
  local secs=$1 ns=$2
  shift 2
  # --foreground keeps the command in this shell's process group, so ^C reaches it too.
  timeout --foreground -k 2 "$secs" ip netns exec "$ns" "$@"
}

# ---------------------------------------------------------------------------------------------
# Neutral bottleneck: HTB on both router interfaces (vRA shapes B->A, vRB shapes A->B).
# 1:1 is the link (rate = ceil = bottleneck); 1:10 the default class; 1:20 the throttled class
# that policies fill through CLASSIFY. While a throttle is set, 1:10's guaranteed rate is the
# bottleneck minus the throttled rate, so the two classes together never exceed the link;
# otherwise 1:10 owns the whole link (borrowing above its own rate would leave it in token debt
# after each burst and delay the next packets by milliseconds). Each direction has its own rates
# (an asymmetric access link), B->A ("down", towards the agent) on vRA, A->B ("up") on vRB.

# _tb_classes full|share: (re)configures 1:10 and 1:20 on both interfaces; "share" while a
# throttle is set (1:10 guaranteed the link minus the throttled rate), "full" otherwise.
_tb_classes() {
  local mode=$1 dev link throttle
  for dev in "$TB_DEV_RA" "$TB_DEV_RB"; do
    if [[ $dev == "$TB_DEV_RA" ]]; then
      link=$TB_RATE_KBIT throttle=$TB_THROTTLE_KBIT
    else
      link=$TB_UP_RATE_KBIT throttle=$TB_UP_THROTTLE_KBIT
    fi
    local normal=$link
    [[ $mode == share ]] && normal=$((link - throttle))
    tc -n "$TB_NS_R" class replace dev "$dev" parent 1:1 classid 1:10 htb \
      rate "${normal}kbit" ceil "${link}kbit" quantum 15140 &&
      tc -n "$TB_NS_R" class replace dev "$dev" parent 1:1 classid 1:20 htb \
        rate "${throttle}kbit" ceil "${throttle}kbit" quantum 15140 || return 1
  done
}

# tb_bottleneck [RATE | DOWN/UP]: the neutral link, one rate for both directions (default
# 50mbit) or DOWN (B->A, provider to agent) and UP (A->B) separately, e.g. 50mbit/5mbit.
tb_bottleneck() {
  local spec=${1:-50mbit} down up dev kbit
  if [[ $spec == */* ]]; then
    down=${spec%%/*} up=${spec#*/}
  else
    down=$spec up=$spec
  fi
  TB_RATE_KBIT=$(_tb_kbit "$down") && TB_UP_RATE_KBIT=$(_tb_kbit "$up") || return 1
  TB_THROTTLE_KBIT=$((TB_RATE_KBIT / 25)) TB_UP_THROTTLE_KBIT=$((TB_UP_RATE_KBIT / 25))
  for dev in "$TB_DEV_RA" "$TB_DEV_RB"; do
    kbit=$TB_RATE_KBIT
    [[ $dev == "$TB_DEV_RB" ]] && kbit=$TB_UP_RATE_KBIT
    # A second call starts afresh: htb cannot change an existing root in place.
    tc -n "$TB_NS_R" qdisc del dev "$dev" root 2>/dev/null
    tc -n "$TB_NS_R" qdisc add dev "$dev" root handle 1: htb default 10 &&
      tc -n "$TB_NS_R" class add dev "$dev" parent 1: classid 1:1 htb \
        rate "${kbit}kbit" ceil "${kbit}kbit" quantum 15140 || return 1
  done
  _tb_classes full || return 1
  if ((TB_RATE_KBIT == TB_UP_RATE_KBIT)); then
    tb_log "bottleneck ${TB_RATE_KBIT} kbit/s both directions"
  else
    tb_log "bottleneck ${TB_RATE_KBIT} kbit/s down (B->A), ${TB_UP_RATE_KBIT} kbit/s up (A->B)"
  fi
}

# tb_bottleneck_mbps [down|up|both]: the bottleneck in Mbit/s of one direction; without an
# argument or with "both" the one rate of a symmetric link, or DOWN/UP of an asymmetric one (the
# form lib/verdicts.py takes).
tb_bottleneck_mbps() {
  awk -v d="$TB_RATE_KBIT" -v u="$TB_UP_RATE_KBIT" -v w="${1:-both}" 'BEGIN {
    if (w == "down" || (w == "both" && d == u)) printf "%.3f\n", d / 1000
    else if (w == "up") printf "%.3f\n", u / 1000
    else printf "%.3f/%.3f\n", d / 1000, u / 1000 }'
}

# _tb_throttle_kbit SPEC LINK_KBIT: the throttled rate for one direction, RATE or PCT% of LINK.
_tb_throttle_kbit() {
  local spec=$1 link=$2 kbit
  if [[ $spec =~ ^([0-9]+(\.[0-9]+)?)%$ ]]; then
    kbit=$(awk -v p="${BASH_REMATCH[1]}" -v b="$link" 'BEGIN { printf "%d\n", b * p / 100 }')
  else
    kbit=$(_tb_kbit "$spec") || return 1
  fi
  if ((kbit < 8 || kbit >= link)); then
    echo "tb_set_throttle: $spec is not below the bottleneck (${link} kbit/s)" >&2
    return 1
  fi
  echo "$kbit"
}

# tb_set_throttle RATE|PCT%: the throttled class's rate, absolute (the same in both directions;
# it must be below both) or as a share of each direction's bottleneck.
tb_set_throttle() {
  local spec=${1:-2mbit} down up
  ((TB_RATE_KBIT > 0)) || { echo "tb_set_throttle: call tb_bottleneck first" >&2; return 1; }
  down=$(_tb_throttle_kbit "$spec" "$TB_RATE_KBIT") &&
    up=$(_tb_throttle_kbit "$spec" "$TB_UP_RATE_KBIT") || return 1
  TB_THROTTLE_KBIT=$down TB_UP_THROTTLE_KBIT=$up
  _tb_classes share
}

# ---------------------------------------------------------------------------------------------
# Policies (the ISP's behaviour). Each replaces the previous one. Marks live on the conntrack
# entry, so every rule matches both directions of a connection.

_tb_ipt() { ip netns exec "$TB_NS_R" iptables -w 5 "$@"; }

_tb_ipset() { ip netns exec "$TB_NS_R" ipset "$@"; }

# _tb_ipset_destroy: removes this run's set, if it made one (its rules must be gone first).
_tb_ipset_destroy() {
  ((TB_IPSET_MADE)) || return 0
  _tb_ipset destroy "$TB_IPSET" 2>/dev/null || {
    echo "testbed: could not destroy ipset $TB_IPSET" >&2
    return 1
  }
  TB_IPSET_MADE=0
}

# tb_policy_clear: back to neutral (no rules, no set, the throttled class idle). While tb_policy
# stacks policies (_TB_STACKING=1) it does nothing, so each policy adds to the ones before it.
_TB_STACKING=0
tb_policy_clear() {
  ((_TB_STACKING)) && return 0
  _tb_ipt -t mangle -F FORWARD && _tb_ipt -t filter -F FORWARD || return 1
  _tb_ipset_destroy || return 1
  if ((TB_RATE_KBIT > 0)); then
    TB_THROTTLE_KBIT=$((TB_RATE_KBIT / 25)) TB_UP_THROTTLE_KBIT=$((TB_UP_RATE_KBIT / 25))
    _tb_classes full || return 1
  fi
}

tb_policy_clean() {
  tb_policy_clear && tb_log "policy: neutral"
}

_tb_mark_bt() {
  _tb_ipt "$@" -A FORWARD -p tcp -m string --algo bm --string "$TB_BT_STRING" -j CONNMARK --set-mark 0x1
}

# tb_policy_content_throttle [RATE|PCT%]: connections that carried "BitTorrent protocol" in
# either direction go through the throttled class (DPI-style, any port).
tb_policy_content_throttle() {
  local spec=${1:-2mbit}
  tb_policy_clear && tb_set_throttle "$spec" &&
    _tb_mark_bt -t mangle &&
    _tb_ipt -t mangle -A FORWARD -m connmark --mark 0x1 -j CLASSIFY --set-class 1:20 || return 1
  tb_log "policy: content throttling to $spec ($TB_THROTTLE_KBIT kbit/s)"
}

# tb_policy_port_throttle [PORT] [RATE|PCT%]: any TCP payload to or from PORT is throttled.
tb_policy_port_throttle() {
  local port=${1:-$TB_BT_PORT} spec=${2:-2mbit}
  tb_policy_clear && tb_set_throttle "$spec" &&
    _tb_ipt -t mangle -A FORWARD -p tcp -m multiport --ports "$port" -j CLASSIFY --set-class 1:20 ||
    return 1
  tb_log "policy: port $port throttled to $spec ($TB_THROTTLE_KBIT kbit/s)"
}

# tb_policy_reset_both: after the packet carrying the handshake passes, every further packet of
# the connection, in either direction, is answered by a forged RST to its sender: both ends are
# reset as soon as each sends (the receiver's ACK of the handshake resets it at once).
tb_policy_reset_both() {
  tb_policy_clear &&
    _tb_ipt -A FORWARD -p tcp ! --tcp-flags RST RST -m connmark --mark 0x1 \
      -j REJECT --reject-with tcp-reset &&
    _tb_mark_bt || return 1
  tb_log "policy: forged resets toward both ends of BitTorrent connections"
}

# tb_policy_reset_client: only the connection's initiator gets a forged RST (on its next packet
# after the handshake); everything else of the connection is dropped silently, so the responder
# never learns and stays half-open.
tb_policy_reset_client() {
  tb_policy_clear &&
    _tb_ipt -A FORWARD -p tcp ! --tcp-flags RST RST -m connmark --mark 0x1 \
      -m conntrack --ctdir ORIGINAL -j REJECT --reject-with tcp-reset &&
    _tb_ipt -A FORWARD -p tcp -m connmark --mark 0x1 -j DROP &&
    _tb_mark_bt || return 1
  tb_log "policy: forged reset toward the initiator only, responder left half-open"
}

# tb_policy_block [PORT]: every TCP packet to or from PORT is dropped (connects time out).
tb_policy_block() {
  local port=${1:-$TB_BT_PORT}
  tb_policy_clear && _tb_ipt -A FORWARD -p tcp -m multiport --ports "$port" -j DROP || return 1
  tb_log "policy: port $port blocked"
}

# tb_policy_loss PCT [both|up|down]: each forwarded packet is dropped with probability PCT/100
# (up = from A, down = from B).
tb_policy_loss() {
  local pct=${1:-1} dir=${2:-both} p
  p=$(awk -v x="$pct" 'BEGIN { if (x <= 0 || x >= 100) exit 1; printf "%.6f\n", x / 100 }') || {
    echo "tb_policy_loss: bad percentage $pct" >&2
    return 1
  }
  tb_policy_clear || return 1
  if [[ $dir == both || $dir == up ]]; then
    _tb_ipt -A FORWARD -i "$TB_DEV_RA" -m statistic --mode random --probability "$p" -j DROP || return 1
  fi
  if [[ $dir == both || $dir == down ]]; then
    _tb_ipt -A FORWARD -i "$TB_DEV_RB" -m statistic --mode random --probability "$p" -j DROP || return 1
  fi
  tb_log "policy: random loss $pct% ($dir)"
}

# tb_policy_delayed_throttle BYTES [RATE|PCT%]: connections that carried "BitTorrent protocol"
# run at the path's rate for their first BYTES bytes (both directions counted, SIZE as for
# _tb_bytes: 3MB, 200KB), then go through the throttled class (Wehe, SIGCOMM 2019, saw such
# policies in US mobile networks). Packets are counted by conntrack (connbytes).
tb_policy_delayed_throttle() {
  local size=${1:?tb_policy_delayed_throttle: BYTES} spec=${2:-2mbit} bytes
  bytes=$(_tb_bytes "$size") || return 1
  tb_policy_clear && tb_set_throttle "$spec" &&
    _tb_mark_bt -t mangle &&
    _tb_ipt -t mangle -A FORWARD -m connmark --mark 0x1 \
      -m connbytes --connbytes "$bytes:" --connbytes-dir both --connbytes-mode bytes \
      -j CLASSIFY --set-class 1:20 || return 1
  tb_log "policy: content throttling to $spec ($TB_THROTTLE_KBIT kbit/s) after $bytes bytes"
}

# tb_policy_delayed_port_throttle PORT BYTES [RATE|PCT%]: the port-based variant: every TCP
# connection to or from PORT is throttled once it carried BYTES bytes, whatever its payload.
tb_policy_delayed_port_throttle() {
  local port=${1:?tb_policy_delayed_port_throttle: PORT} size=${2:?BYTES} spec=${3:-2mbit} bytes
  bytes=$(_tb_bytes "$size") || return 1
  tb_policy_clear && tb_set_throttle "$spec" &&
    _tb_ipt -t mangle -A FORWARD -p tcp -m multiport --ports "$port" \
      -m connbytes --connbytes "$bytes:" --connbytes-dir both --connbytes-mode bytes \
      -j CLASSIFY --set-class 1:20 || return 1
  tb_log "policy: port $port throttled to $spec ($TB_THROTTLE_KBIT kbit/s) after $bytes bytes"
}

# tb_policy_police RATE [BURST]: a token-bucket policer without a queue on connections that
# carried "BitTorrent protocol" (Flach et al., SIGCOMM 2016): packets above RATE are dropped,
# not delayed. The bucket holds BURST bytes (SIZE as for _tb_bytes; default and minimum one
# second of RATE, which hashlimit enforces) and is per direction of each connection
# (--hashlimit-mode srcip,dstip,srcport,dstport: a new connection starts with a full bucket;
# the ACK direction has its own, nearly unused, bucket).
tb_policy_police() {
  local spec=${1:-2mbit} kbit rate_b burst_b
  kbit=$(_tb_kbit "$spec") || return 1
  rate_b=$((kbit * 1000 / 8))
  if [[ -n ${2:-} ]]; then
    burst_b=$(_tb_bytes "$2") || return 1
  else
    burst_b=$rate_b
  fi
  if ((burst_b < rate_b)); then
    echo "tb_policy_police: burst $burst_b bytes is below one second of $spec ($rate_b bytes)" \
      "(hashlimit refuses it)" >&2
    return 1
  fi
  # Both in whole bytes: hashlimit's "kb" is 1024 bytes (`iptables -S` shows them rounded).
  tb_policy_clear &&
    _tb_mark_bt &&
    _tb_ipt -A FORWARD -p tcp -m connmark --mark 0x1 -m hashlimit \
      --hashlimit-above "${rate_b}b/s" --hashlimit-burst "${burst_b}b" \
      --hashlimit-mode srcip,dstip,srcport,dstport --hashlimit-name gnpolice -j DROP || return 1
  tb_log "policy: BitTorrent connections policed to $spec ($rate_b B/s, burst $burst_b B," \
    "per connection and direction)"
}

# tb_policy_reset_early [client|both]: the DPI answers the first packet carrying the BitTorrent
# handshake with a forged RST to its sender and drops it, so the other end never receives any
# payload of that connection.
#   client (default): only the handshake's sender is reset; every later packet of the connection
#     is dropped silently, so the other end stays half-open.
#   both: every later packet of the connection, from either end, is answered with a forged RST
#     to its sender too: the other end is reset as soon as it sends anything (its own handshake,
#     an ACK, a keep-alive or a FIN). A middlebox that saw no packet of an end cannot forge a RST
#     in that end's sequence space, so an end that never sends is never reset.
tb_policy_reset_early() {
  local mode=${1:-client}
  case $mode in
    client)
      tb_policy_clear &&
        _tb_ipt -A FORWARD -p tcp -m connmark --mark 0x1 -j DROP &&
        _tb_mark_bt &&
        _tb_ipt -A FORWARD -p tcp -m string --algo bm --string "$TB_BT_STRING" \
          -j REJECT --reject-with tcp-reset || return 1
      ;;
    both)
      tb_policy_clear &&
        _tb_ipt -A FORWARD -p tcp ! --tcp-flags RST RST -m connmark --mark 0x1 \
          -j REJECT --reject-with tcp-reset &&
        _tb_mark_bt &&
        _tb_ipt -A FORWARD -p tcp -m string --algo bm --string "$TB_BT_STRING" \
          -j REJECT --reject-with tcp-reset || return 1
      ;;
    *)
      echo "tb_policy_reset_early: mode '$mode' is not client or both" >&2
      return 1
      ;;
  esac
  tb_log "policy: the BitTorrent handshake is answered by a forged RST ($mode) and never delivered"
}

# tb_policy_reset_after BYTES: connections that carried "BitTorrent protocol" are reset mid-flow
# once they carried BYTES bytes (both directions counted): from then on every packet, from either
# end, is dropped and answered by a forged RST to its sender.
tb_policy_reset_after() {
  local size=${1:?tb_policy_reset_after: BYTES} bytes
  bytes=$(_tb_bytes "$size") || return 1
  tb_policy_clear &&
    _tb_ipt -A FORWARD -p tcp ! --tcp-flags RST RST -m connmark --mark 0x1 \
      -m connbytes --connbytes "$bytes:" --connbytes-dir both --connbytes-mode bytes \
      -j REJECT --reject-with tcp-reset &&
    _tb_mark_bt || return 1
  tb_log "policy: forged resets toward both ends of BitTorrent connections after $bytes bytes"
}

# tb_policy_stateful [TIMEOUT_S] [RATE|PCT%]: a classifier with an endpoint cache (as nDPI's
# ip:port cache): once a connection carried "BitTorrent protocol", its remote endpoint (the side
# in host B's network, i.e. B's address and port: the listening port when A initiated, B's own
# port when B did) is remembered for TIMEOUT_S seconds (default 600; refreshed by each such
# connection). Every packet to or from a remembered endpoint, whatever the connection carries,
# goes through the throttled class (default 2mbit). The set is an ipset hash:ip,port in the
# router, removed by tb_policy_clear and at teardown.
tb_policy_stateful() {
  local timeout=${1:-600} spec=${2:-2mbit}
  if ! [[ $timeout =~ ^[1-9][0-9]*$ ]]; then
    echo "tb_policy_stateful: bad timeout '$timeout' (seconds)" >&2
    return 1
  fi
  tb_policy_clear && tb_set_throttle "$spec" || return 1
  _tb_ipset create "$TB_IPSET" hash:ip,port timeout "$timeout" || return 1
  TB_IPSET_MADE=1
  _tb_mark_bt -t mangle &&
    _tb_ipt -t mangle -A FORWARD -p tcp -m connmark --mark 0x1 -i "$TB_DEV_RA" \
      -j SET --add-set "$TB_IPSET" dst,dst --exist &&
    _tb_ipt -t mangle -A FORWARD -p tcp -m connmark --mark 0x1 -i "$TB_DEV_RB" \
      -j SET --add-set "$TB_IPSET" src,src --exist &&
    _tb_ipt -t mangle -A FORWARD -p tcp -i "$TB_DEV_RA" -m set --match-set "$TB_IPSET" dst,dst \
      -j CLASSIFY --set-class 1:20 &&
    _tb_ipt -t mangle -A FORWARD -p tcp -i "$TB_DEV_RB" -m set --match-set "$TB_IPSET" src,src \
      -j CLASSIFY --set-class 1:20 || return 1
  tb_log "policy: endpoints that carried BitTorrent throttled to $spec for ${timeout}s"
}

# tb_policy_stateful_entries: the endpoints the stateful policy remembers now, one per line.
tb_policy_stateful_entries() {
  ((TB_IPSET_MADE)) || return 0
  _tb_ipset list "$TB_IPSET" | awk 'p && NF { print $1 } /^Members:/ { p = 1 }'
}

# tb_policy_loss_throttle PCT [RATE|PCT%]: random loss (as tb_policy_loss PCT) and content
# throttling (as tb_policy_content_throttle) together; the same as "loss PCT +
# content_throttle RATE" in tb_policy.
tb_policy_loss_throttle() {
  tb_policy "loss ${1:-1} + content_throttle ${2:-2mbit}"
}

# tb_policy SPEC: SPEC is "NAME ARGS..." (tb_policy_<NAME>, e.g. content_throttle 2mbit, as the
# scenario table writes it), or several joined by " + " to stack policies, e.g.
# "loss 3 + content_throttle 2mbit": the first clears the previous policy, each later one adds its
# rules after the earlier ones'. At most one of the stacked policies may set the throttled class.
# Several words without " + " are one policy and its arguments (tb_policy NAME ARGS... works).
tb_policy() {
  local -a words=() one=()
  read -r -a words <<<"$*"
  local w rc=0
  tb_policy_clear || return 1
  _TB_STACKING=1
  for w in "${words[@]}" +; do
    if [[ $w != + ]]; then
      one+=("$w")
      continue
    fi
    if ((${#one[@]} == 0)); then
      echo "tb_policy: empty policy in '$*'" >&2
      rc=2
      break
    fi
    if ! declare -F "tb_policy_${one[0]}" >/dev/null; then
      echo "tb_policy: unknown policy '${one[0]}'" >&2
      rc=2
      break
    fi
    "tb_policy_${one[0]}" "${one[@]:1}" || { rc=1; break; }
    one=()
  done
  _TB_STACKING=0
  return "$rc"
}

# tb_policy_drops: packets dropped so far by the policy's DROP rules (filter FORWARD).
tb_policy_drops() {
  _tb_ipt -t filter -L FORWARD -v -x -n | awk '$3 == "DROP" { s += $1 } END { print s + 0 }'
}

# ---------------------------------------------------------------------------------------------
# Delay (these kernels have no netem): every packet the router receives from A or B waits MS
# milliseconds in nfq_delay (tests/emu/nfq_delay.cpp, path in BINARY or $TB_NFQ_DELAY) before
# routing, so the RTT grows by 2 x MS. Lives in mangle PREROUTING, untouched by the policies.

tb_delay() {
  local ms=$1 bin=${2:-${TB_NFQ_DELAY:-}}
  if [[ -z $bin || ! -x $bin ]]; then
    echo "tb_delay: no nfq_delay binary (build glasnode_nfq_delay, set TB_NFQ_DELAY)" >&2
    return 1
  fi
  tb_spawn --ready '^nfq_delay ready' nfq_delay "$TB_NS_R" "$bin" --queue 0 --delay-ms "$ms" \
    --max-seconds 3600 || return 1
  _tb_ipt -t mangle -A PREROUTING -i "$TB_DEV_RA" -j NFQUEUE --queue-num 0 --queue-bypass &&
    _tb_ipt -t mangle -A PREROUTING -i "$TB_DEV_RB" -j NFQUEUE --queue-num 0 --queue-bypass || return 1
  tb_log "delay: ${ms} ms each way"
}

tb_delay_off() {
  _tb_ipt -t mangle -F PREROUTING
  [[ -n ${TB_PID[nfq_delay]:-} ]] && tb_stop nfq_delay
  return 0
}

# ---------------------------------------------------------------------------------------------
# Cross traffic: iperf3 TCP bursts through the router, on for 1-2 s then off for 1-2 s (seeded),
# bounded by phase count and total time, stopped by teardown. Phases are logged to
# $TB_DIR/cross.out as "on <epoch_s> <seconds>" / "off <epoch_s> <seconds>".

# tb_cross_start [--seed N] [--dir up|down|both] [--parallel P] [--phases N] [--max-s S]
tb_cross_start() {
  local seed=1 dir=both parallel=2 phases=200 max_s=300
  while [[ $# -gt 0 ]]; do
    case $1 in
      --seed) seed=$2 ;;
      --dir) dir=$2 ;;
      --parallel) parallel=$2 ;;
      --phases) phases=$2 ;;
      --max-s) max_s=$2 ;;
      *) echo "tb_cross_start: unknown option $1" >&2; return 2 ;;
    esac
    shift 2
  done
  # Counting rules (no target): the cross connections' IP bytes as A and B receive them.
  tb_ns "$TB_NS_A" iptables -w 5 -A INPUT -p tcp --sport "$TB_CROSS_PORT" &&
    tb_ns "$TB_NS_B" iptables -w 5 -A INPUT -p tcp --dport "$TB_CROSS_PORT" || return 1
  tb_spawn --ready "Server listening" cross_server "$TB_NS_B" \
    iperf3 -s -B "$TB_IP_B" -p "$TB_CROSS_PORT" --forceflush || return 1
  tb_spawn --ready "^cross start" cross "$TB_NS_A" \
    bash "$TB_LIB_DIR/cross_loop.sh" "$TB_IP_B" "$TB_CROSS_PORT" "$seed" "$dir" "$parallel" \
    "$phases" "$max_s" || return 1
  tb_log "cross traffic: seed $seed, $dir, $parallel flows per burst, <= $phases phases, <= ${max_s}s"
}

# tb_cross_bytes: IP bytes of the cross traffic received so far by A and B together.
tb_cross_bytes() {
  local ns n sum=0
  for ns in "$TB_NS_A" "$TB_NS_B"; do
    n=$(tb_ns "$ns" iptables -w 5 -L INPUT -v -x -n |
      awk -v p="$TB_CROSS_PORT" '$0 ~ "[sd]pt:" p "( |$)" { s += $2 } END { print s + 0 }') || n=0
    sum=$((sum + n))
  done
  echo "$sum"
}

tb_cross_stop() {
  [[ -n ${TB_PID[cross]:-} ]] && tb_stop cross
  [[ -n ${TB_PID[cross_server]:-} ]] && tb_stop cross_server
  return 0
}

# ---------------------------------------------------------------------------------------------
# tb_pyflow DIR PORT PAYLOAD [SECS] [ACCEPT_TIMEOUT]: one lib/bt_flow.py flow; A connects to B's
# PORT, "up" = A sends, "down" = B sends; PAYLOAD bt|control|random; SECS of sending (default 3).
# Sets TB_FLOW_CLIENT and TB_FLOW_SERVER to the two ends' JSON lines (empty when an end did not
# report). Returns non-zero only when the server could not start.
tb_pyflow() {
  local dir=$1 port=$2 payload=$3 secs=${4:-3} accept=${5:-15} srole crole
  if [[ $dir == up ]]; then srole=recv crole=send; else srole=send crole=recv; fi
  # shellcheck disable=SC2034 # results for the caller
  TB_FLOW_CLIENT="" TB_FLOW_SERVER=""
  tb_spawn --ready '^ready' pyflow_server "$TB_NS_B" python3 "$TB_LIB_DIR/bt_flow.py" serve \
    --bind "$TB_IP_B" --port "$port" --role "$srole" --payload "$payload" --duration "$secs" \
    --accept-timeout "$accept" || return 1
  TB_FLOW_CLIENT=$(tb_run "$(awk -v s="$secs" 'BEGIN { printf "%d\n", 2 * s + 20 }')" "$TB_NS_A" \
    python3 "$TB_LIB_DIR/bt_flow.py" connect --host "$TB_IP_B" --port "$port" --role "$crole" \
    --payload "$payload" --duration "$secs")
  if [[ $TB_FLOW_CLIENT == *'"connect": "ok"'* ]]; then
    tb_wait pyflow_server "$(awk -v s="$secs" 'BEGIN { printf "%d\n", 2 * s + 20 }')"
  else
    tb_stop pyflow_server
  fi
  # shellcheck disable=SC2034 # results for the caller
  TB_FLOW_SERVER=$(grep '^{' "$TB_DIR/pyflow_server.out" | tail -n 1)
  return 0
}

# ---------------------------------------------------------------------------------------------
# Assertions: each prints PASS/FAIL with a clear message and counts failures; tb_finish exits.

tb_pass() { TB_CHECKS=$((TB_CHECKS + 1)); printf 'PASS  %s\n' "$*"; }
tb_fail() { TB_CHECKS=$((TB_CHECKS + 1)); TB_FAILURES=$((TB_FAILURES + 1)); printf 'FAIL  %s\n' "$*"; }

# tb_assert MESSAGE CMD...: passes when CMD succeeds.
tb_assert() {
  local msg=$1
  shift
  if "$@"; then tb_pass "$msg"; else tb_fail "$msg"; fi
}

# tb_assert_cmp MESSAGE A OP B: numeric comparison (OP one of < <= > >= == !=) of decimals.
tb_assert_cmp() {
  local msg=$1 a=$2 op=$3 b=$4
  if awk -v a="$a" -v b="$b" -v op="$op" 'BEGIN {
        num = "^-?[0-9]+([.][0-9]*)?([eE][-+]?[0-9]+)?$"
        if (a !~ num || b !~ num) exit 2
        a += 0; b += 0
        if (op == "<") exit !(a < b)
        if (op == "<=") exit !(a <= b)
        if (op == ">") exit !(a > b)
        if (op == ">=") exit !(a >= b)
        if (op == "==") exit !(a == b)
        if (op == "!=") exit !(a != b)
        exit 2 }'; then
    tb_pass "$msg ($a $op $b)"
  else
    tb_fail "$msg (wanted $a $op $b)"
  fi
}

# tb_assert_eq MESSAGE ACTUAL EXPECTED: string equality.
tb_assert_eq() {
  if [[ $2 == "$3" ]]; then tb_pass "$1 ($2)"; else tb_fail "$1 (got '$2', wanted '$3')"; fi
}

tb_finish() {
  if ((TB_FAILURES)); then
    printf '%d of %d checks FAILED\n' "$TB_FAILURES" "$TB_CHECKS"
    exit 1
  fi
  printf 'all %d checks passed\n' "$TB_CHECKS"
  exit 0
}

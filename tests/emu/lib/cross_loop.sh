#!/usr/bin/env bash
# On/off cross traffic for the emulation testbed (started by tb_cross_start inside host A).
# usage: cross_loop.sh SERVER_IP PORT SEED up|down|both PARALLEL MAX_PHASES MAX_SECONDS
# Each phase is "on" (an iperf3 burst of PARALLEL TCP flows) or "off", lasting 1.000-2.000 s
# drawn from a generator seeded with SEED, so a run's pattern is reproducible. Stops after
# MAX_PHASES phases or MAX_SECONDS, whichever comes first. Phase lines go to stdout.
set -u
server=$1 port=$2 seed=$3 dir=$4 parallel=$5 max_phases=$6 max_s=$7
case $dir in
  up) dir_args=() ;;
  down) dir_args=(-R) ;;
  both) dir_args=(--bidir) ;;
  *) echo "cross_loop: bad direction $dir" >&2; exit 2 ;;
esac
RANDOM=$seed
end=$((SECONDS + max_s))
echo "cross start seed=$seed dir=$dir parallel=$parallel"
phase=0
while ((phase < max_phases && SECONDS < end)); do
  ms=$((1000 + RANDOM % 1001))
  secs=$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))
  if ((phase % 2 == 0)); then
    echo "on ${EPOCHREALTIME} $secs"
    # SIGINT makes iperf3 end the test cleanly, so the server is free for the next burst;
    # --foreground keeps iperf3 in this loop's process group, which teardown signals.
    timeout --foreground -s INT -k 2 "$secs" iperf3 -c "$server" -p "$port" -P "$parallel" -t 30 \
      "${dir_args[@]}" >/dev/null 2>&1
  else
    echo "off ${EPOCHREALTIME} $secs"
    sleep "$secs"
  fi
  phase=$((phase + 1))
done
echo "cross end phases=$phase"

#!/usr/bin/env bash
# Accuracy benchmark of the differential test on the emulated ISP (tests/emu): runs every
# scenario of tests/emu/scenarios.txt N times, keeps each JSON report, and tallies the verdicts
# per scenario (tally.py prints the Markdown tables recorded in bench/RESULTS.md). Run i of a
# scenario with cross traffic uses cross traffic seed i, so every run meets another on/off pattern.
# Needs root (network namespaces). Not part of CI: 20 runs of 9 scenarios take hours.
#   usage: bench/accuracy/run.sh GLASNODE_BINARY OUT_DIR [RUNS] [SCENARIO...]
set -euo pipefail
glasnode=$1 out=$2 runs=${3:-20}
shift $(( $# >= 3 ? 3 : $# ))
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
emu=$here/../../tests/emu
scenarios=("$@")
if [ ${#scenarios[@]} -eq 0 ]; then
  mapfile -t scenarios < <(grep -v '^#' "$emu/scenarios.txt" | grep -v '^[[:space:]]*$' | cut -d'|' -f1 | tr -d ' ')
fi
mkdir -p "$out"
for s in "${scenarios[@]}"; do
  for ((i = 1; i <= runs; i++)); do
    f=$out/$s.$i.json
    [ -s "$f" ] && continue # resume an interrupted benchmark
    start=$SECONDS
    if GLASNODE_CROSS_SEED=$i GLASNODE_RESULT_OUT=$f "$emu/scenario.sh" "$glasnode" "$s" >"$out/$s.$i.log" 2>&1; then r=pass; else r=FAIL; fi
    echo "$s run $i: $r ($((SECONDS - start)) s)"
  done
done
python3 "$here/tally.py" "$out" "${scenarios[@]}"

#!/usr/bin/env bash
# Grows one fuzz target's checked-in corpus from a long run, then minimises it.
#   tests/fuzz/grow_corpus.sh BUILD_DIR TARGET RUNS [extra libFuzzer flags...]
# e.g. tests/fuzz/grow_corpus.sh build-clang fuzz_bt_wire 10000000
# The run starts from tests/fuzz/corpus/TARGET in a scratch directory, with the same limits
# as the CTest entry (run_fuzzer.cmake); its statistics go to $work/run.log. Then
# `-merge=1 -use_counters=0` keeps a small set of inputs that covers every edge the run
# covered, and that set replaces the checked-in corpus. Without -use_counters=0 the merge also
# keeps an input per hit-count bucket of every edge: five times the bytes for one target,
# while a short run finds those buckets again from the edges within seconds. Crash reproducers
# stay in $work/artifacts (never checked in unless one becomes a regression seed). Run one
# target at a time, under nice: the machines are shared.
set -euo pipefail
build=$1; target=$2; runs=$3; shift 3
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
fuzzer=$build/tests/fuzz/$target
corpus=$root/tests/fuzz/corpus/$target
dict=$root/tests/fuzz/$target.dict
work=${GLASNODE_FUZZ_WORK:-$build/tests/fuzz/grow/$target}
dict_arg=()
[ -f "$dict" ] && dict_arg=(-dict="$dict")

rm -rf "$work"
mkdir -p "$work/found" "$work/artifacts" "$work/merged" "$corpus"
cp -r "$corpus/." "$work/found/"
nice -n 19 "$fuzzer" -runs="$runs" -rss_limit_mb=2048 -timeout=10 -max_len=4096 \
  -print_final_stats=1 "${dict_arg[@]}" -artifact_prefix="$work/artifacts/" "$@" \
  "$work/found" >"$work/run.log" 2>&1 || { echo "$target: the run failed, see $work/run.log" >&2; exit 1; }
nice -n 19 "$fuzzer" -merge=1 -use_counters=0 -rss_limit_mb=2048 -timeout=10 -max_len=4096 "${dict_arg[@]}" \
  "$work/merged" "$work/found" >"$work/merge.log" 2>&1
rm -rf "$corpus"
mkdir -p "$corpus"
cp "$work/merged/." "$corpus/" -r
grep -E '^(stat::|#[0-9]+.*DONE)' "$work/run.log" || true
grep -E 'MERGE-OUTER: .* new files' "$work/merge.log" || true
echo "$target: $(ls "$corpus" | wc -l) inputs, $(du -sb "$corpus" | cut -f1) bytes in $corpus"

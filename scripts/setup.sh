#!/usr/bin/env bash
# One entry point for a fresh Debian 12 machine:
#   scripts/setup.sh demo   install dependencies, build, run the local demo
#   scripts/setup.sh test   install dependencies, build, run every test through CTest
#   scripts/setup.sh build  install dependencies and build only
# Environment: GLASNODE_BUILD_DIR (default ./build), CCACHE_DIR (default ~/.cache/glasnode/ccache),
# JOBS (default: number of cores), CI=true (warnings are errors; short fuzz runs).
set -euo pipefail

mode=${1:-}
case "$mode" in demo|test|build) ;; *) echo "usage: $0 demo|test|build" >&2; exit 2 ;; esac

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
jobs=${JOBS:-$(nproc)}
build=${GLASNODE_BUILD_DIR:-$root/build}
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/glasnode/ccache}
# Paths under the checkout are hashed relative to it, so another clone hits the same cache.
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$root}
export CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-true}
mkdir -p "$CCACHE_DIR"

"$root/scripts/install-deps.sh"

werror=OFF
[ "${CI:-}" = "true" ] && werror=ON

configure_and_build() { # <dir> [cmake args...]
  local dir=$1; shift
  cmake -S "$root" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGLASNODE_WERROR=$werror "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
}

case "$mode" in
build)
  configure_and_build "$build"
  ;;
demo)
  configure_and_build "$build"
  exec "$build/node/glasnode" demo
  ;;
test)
  status=0
  # Every C++ file follows the checked-in .clang-format.
  "$root/scripts/check-format.sh" || status=1
  configure_and_build "$build"
  # Left out here: `slow` (the testbed self-check, for people changing the testbed):
  # ctest -L slow.
  ctest --test-dir "$build" --output-on-failure -j "$jobs" -LE slow || status=1
  # Sanitizers and fuzzers: a clang build with ASan+UBSan runs the unit tests and short
  # fuzzing sessions of every decoder, starting from their checked-in corpora.
  CC=clang CXX=clang++ configure_and_build "$build-clang" -DGLASNODE_SANITIZE=ON -DGLASNODE_FUZZ=ON -DGLASNODE_BUILD_BENCH=OFF
  ctest --test-dir "$build-clang" --output-on-failure -j "$jobs" -L 'unit|fuzz' || status=1
  # Data races: a ThreadSanitizer build runs the unit and integration tests (real sockets and
  # processes on loopback); a reported race fails the test that saw it.
  CC=clang CXX=clang++ configure_and_build "$build-tsan" -DGLASNODE_TSAN=ON -DGLASNODE_BUILD_BENCH=OFF
  TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
    ctest --test-dir "$build-tsan" --output-on-failure -j "$jobs" -L 'unit|integration' -LE slow \
    || status=1
  exit $status
  ;;
esac

#!/usr/bin/env bash
# Installs what is missing, builds Cairn, and runs every test. Exits non-zero on any failure.
#
#   tests/run.sh            everything: the normal build's full ctest, then unit+sim under ASan+UBSan,
#                           then a short fuzz run of the frame decoder
#   CAIRN_SKIP_ASAN=1       skip the sanitizer pass (local iteration only)
#   CAIRN_SKIP_FUZZ=1       skip the fuzz run
#   CAIRN_TEST_REGEX=RE     pass -R RE to ctest (both passes)
#   CAIRN_JOBS=N            build/test parallelism (default: number of cores)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

bash deploy/install-deps.sh

JOBS=${CAIRN_JOBS:-$(nproc)}
# One ccache shared by every clone on this machine: CI's fresh clone reuses a developer's objects.
export CCACHE_BASEDIR="$ROOT"
export CCACHE_DIR=${CCACHE_DIR:-/var/cache/cairn-ccache}
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-5G}
export CCACHE_NOHASHDIR=1
mkdir -p "$CCACHE_DIR"

ctest_args=(--output-on-failure -j "$JOBS" --no-tests=error)
if [[ -n "${CAIRN_TEST_REGEX:-}" ]]; then ctest_args+=(-R "$CAIRN_TEST_REGEX"); fi

status=0
section() { printf '\n===== %s =====\n' "$*"; }

section "build (RelWithDebInfo, warnings as errors)"
cmake -S . -B build -G Ninja -DCAIRN_WERROR=ON >/dev/null
cmake --build build -j "$JOBS"

section "tests: all labels"
(cd build && ctest "${ctest_args[@]}") || status=1

if [[ -z "${CAIRN_SKIP_ASAN:-}" ]]; then
  section "build (ASan+UBSan)"
  cmake -S . -B build-asan -G Ninja -DCAIRN_WERROR=ON -DCAIRN_SANITIZE=address,undefined \
    -DCAIRN_BENCH=OFF -DCMAKE_BUILD_TYPE=Debug >/dev/null
  cmake --build build-asan -j "$JOBS"
  section "tests under ASan+UBSan: unit and sim"
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  (cd build-asan && ctest "${ctest_args[@]}" -L 'unit|sim') || status=1
fi

if [[ -z "${CAIRN_SKIP_FUZZ:-}" && -x tests/fuzz/run.sh ]]; then
  section "fuzz: frame decoder"
  bash tests/fuzz/run.sh || status=1
fi

if ((status == 0)); then
  section "all tests passed"
else
  section "FAILED: see the output above"
fi
exit $status

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
failed=()
section() { printf '\n===== %s =====\n' "$*"; }
# The assertion lines and the last lines of test number $2's output in ctest's log $1.
failure_lines() {
  awk -v num="$2" '
    $0 ~ "^" num "/[0-9]+ Testing: " { on = 1; n = 0; next }
    on && /<end of output>/ { for (i = (n > 6 ? n - 6 : 0); i < n; i++) if (!(i in shown)) print "      " tail[i]; exit }
    on { tail[n] = $0; if (($0 ~ /Failure|Expected|Which is|Value of|Actual|rror|imeout|Sanitizer/ || extra > 0) && kept < 16) { print "      " $0; shown[n] = 1; kept++ }
         # The lines after an assertion carry its streamed message (a process output, say).
         if ($0 ~ /Expected|Which is/) extra = 3; else if (extra > 0) extra--; n++ }
  ' "$1" 2>/dev/null
}
# CI shows only the tail of this script's output, so each pass's failed tests are collected and
# named again at the very end.
run_ctest() {
  local dir=$1; shift
  rm -f "$dir/Testing/Temporary/LastTestsFailed.log"
  (cd "$dir" && ctest "${ctest_args[@]}" "$@") 2>&1 | tee "$dir/ctest-output.log" && return 0
  # ctest's own summary names each failed test with its reason (Failed, Timeout, SEGFAULT, ...).
  failed+=("$dir:" "$(sed -n '/^The following tests FAILED:/,/^Errors while running CTest/p' "$dir/ctest-output.log" | sed '1d;$d')")
  if [[ -f "$dir/Testing/Temporary/LastTestsFailed.log" ]]; then
    while IFS= read -r line; do
      failed+=("  ${line#*:}:" "$(failure_lines "$dir/Testing/Temporary/LastTest.log" "${line%%:*}")")
    done <"$dir/Testing/Temporary/LastTestsFailed.log"
  fi
  return 1
}

section "build (RelWithDebInfo, warnings as errors)"
cmake -S . -B build -G Ninja -DCAIRN_WERROR=ON >/dev/null
cmake --build build -j "$JOBS"

section "tests: all labels"
run_ctest build || status=1

if [[ -z "${CAIRN_SKIP_ASAN:-}" ]]; then
  section "build (ASan+UBSan)"
  cmake -S . -B build-asan -G Ninja -DCAIRN_WERROR=ON -DCAIRN_SANITIZE=address,undefined \
    -DCAIRN_BENCH=OFF -DCMAKE_BUILD_TYPE=Debug >/dev/null
  cmake --build build-asan -j "$JOBS"
  section "tests under ASan+UBSan: unit and sim"
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  run_ctest build-asan -L 'unit|sim' || status=1
fi

if [[ -z "${CAIRN_SKIP_FUZZ:-}" && -x tests/fuzz/run.sh ]]; then
  section "fuzz: frame decoder"
  bash tests/fuzz/run.sh || { status=1; failed+=("fuzz: frame_decoder_fuzz (see its output above)"); }
fi

if ((status == 0)); then
  section "all tests passed"
else
  section "FAILED: see the output above"
  printf '  %s\n' "${failed[@]}"
fi
exit $status

#!/usr/bin/env bash
# Builds frame_decoder_fuzz with clang + libFuzzer + ASan/UBSan in build-fuzz/ and runs it for
# CAIRN_FUZZ_SECONDS (default 60) on a small seed corpus made here. Exits non-zero on a crash.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
BUILD=${CAIRN_FUZZ_BUILD_DIR:-$ROOT/build-fuzz}
SECONDS_TO_RUN=${CAIRN_FUZZ_SECONDS:-60}

export CCACHE_BASEDIR="$ROOT"
export CCACHE_DIR=${CCACHE_DIR:-/var/cache/cairn-ccache}

# Every library the fuzzer links (decoder, protobuf messages, common) gets coverage
# instrumentation and the sanitizers, not just the fuzz target's own file.
CC=clang CXX=clang++ cmake -S . -B "$BUILD" -G Ninja \
  -DCAIRN_FUZZ=ON -DCAIRN_BENCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCAIRN_SANITIZE=address,undefined \
  -DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link -DCMAKE_CXX_FLAGS=-fsanitize=fuzzer-no-link >/dev/null
cmake --build "$BUILD" -j "${CAIRN_JOBS:-$(nproc)}" --target frame_decoder_fuzz

CORPUS="$BUILD/fuzz-corpus/frame_decoder"
mkdir -p "$CORPUS"
# Seeds: a split byte, then frames as the transport writes them (header + Frame body).
# Bodies: REQUEST call_id=1 method="m" payload="hi"; RESPONSE call_id=1 status{code=5 message="x"};
# an empty body; a header claiming 4 GiB.
printf '\x03\x00\x00\x00\x0b\x08\x01\x10\x01\x1a\x01m\x22\x02hi' >"$CORPUS/request"
printf '\x00\x00\x00\x00\x0b\x08\x01\x10\x02\x2a\x05\x08\x05\x12\x01x' >"$CORPUS/response"
printf '\x07\x00\x00\x00\x00' >"$CORPUS/empty"
printf '\x01\xff\xff\xff\xff' >"$CORPUS/huge"
printf '\x00\x00\x00\x00\x0b\x08\x01\x10\x03\x1a\x01m\x22\x02hi\x00\x00\x00\x07\x08\x02\x10\x04\x22\x01z' >"$CORPUS/two"

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# libFuzzer prints a line per new input; that goes to a log, shown only when it found something.
LOG="$BUILD/fuzz.log"
if ! "$BUILD/bin/frame_decoder_fuzz" -max_total_time="$SECONDS_TO_RUN" -max_len=4096 -timeout=10 \
  -print_final_stats=1 -artifact_prefix="$BUILD/fuzz-crash-" "$CORPUS" >"$LOG" 2>&1; then
  tail -n 80 "$LOG"
  echo "fuzz: frame_decoder_fuzz failed; full output in $LOG, crash input in $BUILD/fuzz-crash-*" >&2
  exit 1
fi
grep -E '^stat::(number_of_executed_units|peak_rss_mb)' "$LOG" || true
echo "fuzz: frame_decoder_fuzz ran ${SECONDS_TO_RUN}s without a crash"

#!/usr/bin/env bash
# Builds the libFuzzer targets (clang-14, ASan+UBSan) and runs one of them on a scratch copy
# of its committed corpus (libdeflate's scripts/libFuzzer/fuzz.sh, smaller):
#
#   fuzz/run.sh [--time=SECONDS] [--max-len=N] [--build=DIR] TARGET [libFuzzer args...]
#
# TARGET is a file name of fuzz/ without .c (quantize_roundtrip, dequantize_any_bytes,
# qmv_differential, api_validation). Crashes land in DIR/artifacts/; minimize one
# with: DIR/fuzz/TARGET_fuzzer -minimize_crash=1 -runs=100000 FILE, then commit the result to
# fuzz/corpus/TARGET/ (the regression build replays it in ctest).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
time_s=600 max_len=4096 build=build/fuzz
while [ $# -gt 0 ]; do
  case "$1" in
    --time=*) time_s=${1#--time=} ;;
    --max-len=*) max_len=${1#--max-len=} ;;
    --build=*) build=${1#--build=} ;;
    --asan|--ubsan) ;; # always on
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
  shift
done
t=${1:?usage: fuzz/run.sh [--time=S] [--max-len=N] TARGET}
shift
# -O1, as .ci/sanitizers.sh: at -O2 the instrumented SIMD tier files take minutes to compile.
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -g -DNDEBUG" -DQMV_SIMD_EXTRA_FLAGS=-O0 \
  -DQMV_CUDA=OFF -DQMV_BUILD_TESTS=OFF \
  -DQMV_BUILD_TOOLS=OFF -DQMV_INSTALL=OFF -DQMV_BUILD_FUZZERS=ON -DQMV_FUZZ_LIBFUZZER=ON \
  -DCMAKE_C_COMPILER="${CLANG:-clang-14}" \
  "-DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION" >/dev/null
cmake --build "$build" --parallel "${JOBS:-2}" --target "${t}_fuzzer"
mkdir -p "$build/corpus/$t" "$build/artifacts"
exec "$build/fuzz/${t}_fuzzer" -max_total_time="$time_s" -max_len="$max_len" -rss_limit_mb=2048 \
  -timeout=20 -print_final_stats=1 -artifact_prefix="$build/artifacts/$t-" \
  "$build/corpus/$t" "fuzz/corpus/$t" "$@"

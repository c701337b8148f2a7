#!/usr/bin/env bash
# Sanitizer builds (issue 6), from the repository root: bash .ci/sanitizers.sh
#
#  1. The whole project and its tests under AddressSanitizer + UndefinedBehaviorSanitizer
#     (the `asan` preset's flags: -fsanitize=address,undefined -fno-sanitize-recover=all,
#     CPU only) and the full CPU ctest suite under it; that suite includes the fuzz corpus
#     replay (label fuzz), so every committed reproducer runs with the sanitizers on.
#  2. ThreadSanitizer over the OpenMP paths: check_qmv, check_simd (every CPU tier),
#     check_quantize and check_dequantize built with clang-14 -fsanitize=thread and LLVM's
#     libomp, run with OMP_NUM_THREADS=2. libomp loads Archer (libarcher.so, LLVM's OMPT
#     tool) when the program is built with TSan, which tells TSan about OpenMP's barriers and
#     reductions; GCC's libgomp has no such tool and gives false reports (docs/FUZZING.md,
#     ThreadSanitizer). About 1 minute, build included.
#  3. The libFuzzer targets of fuzz/ built with clang-14 (-fsanitize=fuzzer,address,undefined,
#     library instrumented with fuzzer-no-link) and each run for FUZZ_SECONDS on a scratch
#     copy of its corpus. New crashes are written to $BUILD_ROOT/fuzz-artifacts/.
#
# Environment: BUILD_ROOT (default build/sanitizers), FUZZ_SECONDS (default 45 per target),
# FUZZ_MAX_LEN (default 4096), JOBS (default 2), CC_ASAN (default gcc: cc), CLANG (clang-14),
# TSAN (default 1; 0 skips step 2).
# Takes about 7-8 minutes on 2 cores with the defaults.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
start=$(date +%s)
root=${BUILD_ROOT:-build/sanitizers}
fuzz_seconds=${FUZZ_SECONDS:-45}
max_len=${FUZZ_MAX_LEN:-4096}
jobs=${JOBS:-2}
clang=${CLANG:-clang-14}
# float-cast-overflow: clang's "undefined" has it, GCC's does not (a NaN cast to unsigned).
san_flags="-fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all -fno-omit-frame-pointer"
failed=()

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

step() { echo "sanitizers: $* ($(($(date +%s) - start)) s)"; }

# ---- 1. ASan + UBSan: build everything, run the CPU suite ----
step "ASan+UBSan build"
# Every sanitizer build is -O1 (the sanitizers' recommended level): GCC 12 at -O2 -g with ASan
# spent 4-12 minutes on each of the unrolled SIMD tier files (cpu/x86/qmv_avx2.c,
# cpu/x86/qmv_avx512.c, each compiled twice), at -O1 under a minute.
cmake --fresh -S . -B "$root/asan" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DQMV_CUDA=OFF \
  "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -g -DNDEBUG" \
  -DQMV_WERROR=ON -DQMV_BUILD_FUZZERS=ON "-DCMAKE_C_FLAGS=$san_flags" \
  ${CC_ASAN:+-DCMAKE_C_COMPILER=$CC_ASAN} </dev/null >/dev/null
cmake --build "$root/asan" --parallel "$jobs" </dev/null
step "ASan+UBSan ctest (CPU suites, install, MLX and Python tests excluded: they build or load their own unsanitized libraries)"
ctest --test-dir "$root/asan" --output-on-failure -LE 'gpu|install|mlx|python' --parallel "$jobs" </dev/null ||
  failed+=("ctest under ASan+UBSan")

if ! command -v "$clang" >/dev/null 2>&1; then
  echo "sanitizers: $clang not found, skipping TSan and the libFuzzer runs" >&2
  ((${#failed[@]} == 0)) || { echo "sanitizers: FAILED: ${failed[*]}" >&2; exit 1; }
  step "done (without TSan and fuzzing)"
  exit 0
fi

# ---- 2. ThreadSanitizer + OpenMP (clang, libomp, Archer) ----
if [ "${TSAN:-1}" != 0 ]; then
  step "TSan build ($clang, OpenMP through libomp)"
  mkdir -p "$root"
  cmake --fresh -S . -B "$root/tsan" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DQMV_CUDA=OFF \
    "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -g -DNDEBUG" \
    -DQMV_BUILD_TOOLS=OFF -DQMV_INSTALL=OFF "-DCMAKE_C_COMPILER=$clang" \
    "-DCMAKE_C_FLAGS=-fsanitize=thread -fno-omit-frame-pointer" </dev/null >"$root/tsan.log" 2>&1
  if ! grep -q 'OpenMP ON' "$root/tsan.log"; then
    failed+=("TSan: $clang found no OpenMP (libomp-dev missing?)")
  else
    cmake --build "$root/tsan" --parallel "$jobs" \
      --target check_qmv check_simd check_quantize check_dequantize </dev/null >>"$root/tsan.log"
    for t in check_qmv check_simd check_quantize check_dequantize; do
      step "TSan: $t with 2 OpenMP threads"
      # CK_FORK=no: one process for the whole suite. libomp loads Archer by itself (it sits
      # next to libomp); verbose=1 makes it say so, and a run without that line fails.
      if ! OMP_NUM_THREADS=2 CK_FORK=no ARCHER_OPTIONS=verbose=1 \
          TSAN_OPTIONS="halt_on_error=1 ignore_noninstrumented_modules=1" \
          "$root/tsan/tests/$t" </dev/null >"$root/tsan-$t.log" 2>&1 ||
          ! grep -q '^Archer detected' "$root/tsan-$t.log"; then
        failed+=("TSan $t")
        tail -n 40 "$root/tsan-$t.log"
      fi
    done
  fi
fi

# ---- 3. libFuzzer targets, each for a bounded time ----
step "libFuzzer build ($clang)"
cmake --fresh -S . -B "$root/fuzz" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DQMV_CUDA=OFF \
  "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -g -DNDEBUG" -DQMV_SIMD_EXTRA_FLAGS=-O0 \
  -DQMV_BUILD_TESTS=OFF -DQMV_BUILD_TOOLS=OFF -DQMV_INSTALL=OFF -DQMV_BUILD_FUZZERS=ON \
  -DQMV_FUZZ_LIBFUZZER=ON "-DCMAKE_C_COMPILER=$clang" \
  "-DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION" \
  </dev/null >/dev/null
cmake --build "$root/fuzz" --parallel "$jobs" </dev/null

artifacts="$root/fuzz-artifacts"
rm -rf "$artifacts" && mkdir -p "$artifacts"
for src in fuzz/corpus/*/; do
  t=$(basename "$src")
  bin="$root/fuzz/fuzz/${t}_fuzzer"
  [ -x "$bin" ] || continue
  work="$root/fuzz-work/$t"
  rm -rf "$work" && mkdir -p "$work"
  step "fuzzing $t for ${fuzz_seconds} s"
  if ! "$bin" -max_total_time="$fuzz_seconds" -max_len="$max_len" \
      -rss_limit_mb=2048 -timeout=20 -print_final_stats=1 \
      -artifact_prefix="$artifacts/$t-" "$work" "$src" </dev/null >"$root/fuzz-$t.log" 2>&1; then
    failed+=("fuzzing $t")
    tail -n 60 "$root/fuzz-$t.log"
  fi
  grep -E '^(stat::number_of_executed_units|stat::new_units_added)|^#[0-9]+ +DONE' \
    "$root/fuzz-$t.log" | tr '\n' ' ' || true
  echo
done

if ((${#failed[@]})); then
  echo "sanitizers: FAILED: ${failed[*]} (fuzz inputs in $artifacts; minimize with" \
       "<target>_fuzzer -minimize_crash=1 -runs=100000 FILE, commit to fuzz/corpus/<target>/)" >&2
  exit 1
fi
step "passed"

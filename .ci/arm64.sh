#!/usr/bin/env bash
# ARM64 and portable builds, from the repository root: bash .ci/arm64.sh (called by .ci/run).
#
#  1. A cross build for 64-bit Arm Linux (Debian's gcc-aarch64-linux-gnu, libraries from its
#     arm64 packages; cmake/toolchains/aarch64-linux-gnu.cmake) whose C suites and fuzz corpus
#     replays run under qemu-user: every CPU tier this build has against the scalar reference,
#     quantize and dequantize against their oracles and MLX's golden vectors. Built without
#     OpenMP: libgomp's worker threads hang under qemu-user (seen with qemu 7.2), and the
#     thread-count invariance is tested natively. Check's fork mode hangs under qemu-user too,
#     so the suites run with CK_FORK=no.
#  2. A native build with clang-14 and without OpenMP (Apple's clang has none), whole suite
#     but the Python, MLX, install and GPU labels.
#
# Environment: BUILD_ROOT (default build), JOBS (default 2).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
start=$(date +%s)
root=${BUILD_ROOT:-build}
jobs=${JOBS:-2}
step() { echo "arm64: $* ($(($(date +%s) - start)) s)"; }

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
packages=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user check:arm64 libsubunit-dev:arm64 libjansson-dev:arm64)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  step "installing ${missing[*]}"
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    "${sudo[@]}" dpkg --add-architecture arm64
  fi
  "${sudo[@]}" apt-get update </dev/null
  "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}" </dev/null
fi

# ---- 1. aarch64 cross build, suites under qemu-user ----
step "aarch64 cross build"
cmake --fresh -S . -B "$root/arm64" -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake \
  -DCMAKE_BUILD_TYPE=Release -DQMV_WERROR=ON -DQMV_CUDA=OFF -DQMV_OPENMP=OFF </dev/null
cmake --build "$root/arm64" --parallel "$jobs" </dev/null
step "aarch64 suites under qemu-user"
CK_FORK=no ctest --test-dir "$root/arm64" --output-on-failure --parallel "$jobs" \
  -R '^(check_(codec|format|errors|dequantize|quantize|qmv|quant_tiers|simd_quick)|example_readme|fuzz_.*)$' </dev/null
# check_simd_quick compares the neon tier's qmv_qmv() with the reference over a reduced grid
# (every mode, bit width, group size and dtype, M = 1..9, ragged K and N, the layouts). Not
# here: check_simd itself (its whole tier grids repeat check_qmv's path grid per tier, over 20
# minutes under qemu for the scalar tier alone, and its selection probes fork, which hangs
# under qemu-user) and the tests that drive the tool from Python.

# ---- 2. clang without OpenMP ----
step "clang-14 build without OpenMP"
cmake --fresh -S . -B "$root/clang-serial" -DCMAKE_C_COMPILER=clang-14 -DCMAKE_BUILD_TYPE=Release \
  -DQMV_WERROR=ON -DQMV_CUDA=OFF -DQMV_OPENMP=OFF </dev/null
cmake --build "$root/clang-serial" --parallel "$jobs" </dev/null
ctest --test-dir "$root/clang-serial" --output-on-failure -LE 'gpu|mlx|python|install' </dev/null

step "passed"

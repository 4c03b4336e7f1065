#!/bin/sh
# NEON job: cross-compile the CPU op tests for aarch64 and run them under
# qemu-aarch64 (needs gcc-aarch64-linux-gnu and qemu-user).
#   .ci/neon.sh            configure + build into build-neon, run ctest
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${SDVK_NEON_BUILD:-$root/build-neon}
cmake -S "$root/.ci/neon" -B "$build" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_TOOLCHAIN_FILE="$root/cmake/toolchain-aarch64.cmake"
cmake --build "$build" -j2 --target test_simd test_conformance
cd "$build"
ctest --output-on-failure -L simd

#!/usr/bin/env bash
# Builds sdvk and runs the whole test suite: the release build, then the
# sanitizer build (AddressSanitizer + UndefinedBehaviorSanitizer) on the
# fast labels, then the NEON kernels under qemu. This is what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install_deps.sh --tests
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
jobs=$(nproc)

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs"

cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSDVK_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure -j"$jobs" -LE "slow|vulkan"

if [ -f .ci/neon.sh ]; then
  bash .ci/neon.sh
fi

#!/usr/bin/env bash
# Installs what is needed, builds wsgate (warnings as errors) in a plain and an
# ASan+UBSan variant plus the libFuzzer targets (clang), and runs every unit,
# integration and fuzz test under ctest. WSGATE_TSAN=1 also builds and runs the
# ThreadSanitizer variant (label tsan); it is off by default and in CI because it adds
# about as much build time as the rest of the suite (docs/testing.md).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh test
tsan=OFF
[ "${WSGATE_TSAN:-0}" = 1 ] && tsan=ON
# Configured every time (quick when nothing changed) so WSGATE_TSAN takes effect.
# Line tables only (-g1): stack traces and perf keep file:line, the build is a fifth
# quicker than with full debug information (docs/testing.md).
cmake -S . -B build-test -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG" \
      -DWSGATE_WERROR=ON -DWSGATE_SANITIZER_VARIANT=ON -DWSGATE_TSAN_VARIANT="$tsan"
cmake --build build-test -j "$(nproc)"
cd build-test
# Two tests per core: the integration tests spend half their time waiting (timeouts,
# clients, sleeps), so with one per core the machine idles half the run.
ctest --output-on-failure -j "$((2 * $(nproc)))" --timeout 600

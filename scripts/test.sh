#!/usr/bin/env bash
# Installs what is needed, builds wsgate (warnings as errors) in a plain and an
# ASan+UBSan variant, and runs every unit and integration test under ctest.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh test
if [ ! -f build-test/build.ninja ]; then
  cmake -S . -B build-test -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DWSGATE_WERROR=ON -DWSGATE_SANITIZER_VARIANT=ON
fi
cmake --build build-test -j "$(nproc)"
cd build-test
ctest --output-on-failure -j "$(nproc)" --timeout 600

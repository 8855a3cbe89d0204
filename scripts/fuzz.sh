#!/usr/bin/env bash
# Longer local fuzzing than the 15 s per target that ctest gives each in CI.
#   scripts/fuzz.sh [--strict] TARGET|all [SECONDS] [libFuzzer flags...]
# TARGET is a tests/fuzz/<TARGET>_fuzz.cc name (http1_request, frame, config, ...) or
# "all" (one after the other); SECONDS per target, default 120. Builds the targets with
# clang in build-fuzz/ (only the codecs, not the gateway) and fuzzes from the committed
# seeds plus a corpus that grows across runs in build-fuzz/corpus/TARGET. Crashes are
# written to build-fuzz/artifacts/. --strict also checks the properties of known, not yet
# fixed defects (tests/fuzz/known/README.md). Extra flags go to libFuzzer, e.g. -jobs=2
# -workers=2, -dict=FILE, -max_len=N.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = --strict ]; then
  export WSGATE_FUZZ_STRICT=1
  shift
fi
target=${1:?usage: scripts/fuzz.sh [--strict] TARGET|all [SECONDS] [libFuzzer flags...]}
seconds=${2:-120}
shift $(( $# < 2 ? $# : 2 ))

if [ ! -f build-fuzz/build.ninja ]; then
  launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  cmake -S tests/fuzz -B build-fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++ "${launcher[@]}"
fi
cmake --build build-fuzz

if [ "$target" = all ]; then
  targets=()
  for f in tests/fuzz/*_fuzz.cc; do
    t=$(basename "$f" _fuzz.cc)
    targets+=("$t")
  done
else
  targets=("$target")
fi

summary=()
status=0
for t in "${targets[@]}"; do
  [ -x "build-fuzz/${t}_fuzz" ] || { echo "no fuzz target $t" >&2; exit 2; }
  mkdir -p "build-fuzz/corpus/$t" build-fuzz/artifacts
  log="build-fuzz/$t.log"
  echo "== $t: ${seconds}s"
  rc=0
  "build-fuzz/${t}_fuzz" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=30 \
      -print_final_stats=1 -artifact_prefix="build-fuzz/artifacts/$t-" "$@" \
      "build-fuzz/corpus/$t" "tests/fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
  grep -v -e '^#[0-9]' -e '^INFO' -e 'NEW_FUNC' "$log" | tail -n 30
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | awk '{s += $1} END {print s}')
  summary+=("$t: ${execs:-?} executions, corpus $(find "build-fuzz/corpus/$t" -type f | wc -l) files, exit $rc")
  [ $rc -eq 0 ] || status=$rc
done
printf '%s\n' "${summary[@]}"
exit $status

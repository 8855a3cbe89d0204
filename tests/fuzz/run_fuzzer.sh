#!/usr/bin/env bash
# Runs one libFuzzer target on a temporary copy of its seed corpus (the committed seeds
# are never written to), or replays the seeds once.
#   run_fuzzer.sh BINARY CORPUS_DIR SECONDS [ARTIFACT_DIR] [extra libFuzzer flags...]
# SECONDS = 0: replay every seed once (the regression test). Otherwise fuzz for that
# long; a crash leaves the input in ARTIFACT_DIR (default: a "fuzz-artifacts" folder
# beside the binary) and its path in the output. Prints the number of executions.
set -euo pipefail
bin=$1 corpus=$2 seconds=$3
artifacts=${4:-$(dirname "$bin")/fuzz-artifacts}
shift $(( $# < 4 ? $# : 4 ))
name=$(basename "$bin")

if [ "$seconds" = 0 ]; then
  mapfile -t seeds < <(find "$corpus" -type f | sort)
  [ ${#seeds[@]} -gt 0 ] || { echo "$name: no seeds in $corpus" >&2; exit 1; }
  exec "$bin" "$@" "${seeds[@]}"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/$name.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp -r "$corpus"/. "$work"/
mkdir -p "$artifacts"
status=0
"$bin" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=30 -print_final_stats=1 \
       -artifact_prefix="$artifacts/$name-" "$@" "$work" >"$work.log" 2>&1 || status=$?
grep -v -e '^#[0-9]' -e '^INFO' -e 'NEW_FUNC' "$work.log" | tail -n 40 || true
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work.log")
echo "$name: ${execs:-?} executions in ${seconds}s, corpus $(find "$corpus" -type f | wc -l) -> $(find "$work" -type f | wc -l) inputs, exit $status"
rm -f "$work.log"
exit "$status"

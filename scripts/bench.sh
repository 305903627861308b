#!/usr/bin/env bash
# Benchmarks: prepare like the quick start, then run every bench/*.mjs (BENCH_ONLY=relay,rest to
# pick some) and print one summary table of the targets they measured. A missed target is reported,
# not an error; a bench that crashes makes the run exit 1 (after the summary).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/prepare.sh
since=$(date -u +%Y-%m-%dT%H:%M:%S.000Z)
start=$SECONDS
failed=()
for bench in bench/*.mjs; do
  name=$(basename "$bench" .mjs)
  if [[ -n "${BENCH_ONLY:-}" && ",${BENCH_ONLY}," != *",${name},"* ]]; then continue; fi
  echo "== $bench"
  t=$SECONDS
  if node "$bench"; then
    echo "   ($name: $((SECONDS - t)) s)"
  else
    echo "   ($name: FAILED after $((SECONDS - t)) s)"
    failed+=("$name")
  fi
done
node bench/lib/summary.mjs "$since" "$((SECONDS - start))"
if ((${#failed[@]} > 0)); then
  echo "benches that failed: ${failed[*]}"
  exit 1
fi

#!/usr/bin/env bash
# Benchmarks: prepare like the quick start, then run every bench/*.mjs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/prepare.sh
for bench in bench/*.mjs; do
  echo "== $bench"
  node "$bench"
done

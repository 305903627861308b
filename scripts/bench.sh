#!/usr/bin/env bash
# Benchmarks: set up like the tests (deps, engine, build, image), then run every bench/*.mjs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/ensure-deps.sh
bash scripts/ensure-engine.sh
npx tsc -p tsconfig.build.json
node dist/cli.js image build
for bench in bench/*.mjs; do
  echo "== $bench"
  node "$bench"
done

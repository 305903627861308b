#!/usr/bin/env bash
# Everything `serve` and the benchmarks need: dependencies, a Docker engine, the build, the image.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/ensure-deps.sh
bash scripts/ensure-engine.sh
npx tsc -p tsconfig.build.json
node dist/cli.js image build

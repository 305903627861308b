#!/usr/bin/env bash
# Quick start: everything `serve` needs (dependencies, a Docker engine, the build, the sandbox
# image), then `mcp-box serve` with the given config (default: examples/mcp-box.json).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/ensure-deps.sh
bash scripts/ensure-engine.sh
npx tsc -p tsconfig.build.json
node dist/cli.js image build
exec node dist/cli.js serve --config "${1:-examples/mcp-box.json}"

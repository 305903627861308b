#!/usr/bin/env bash
# Quick start: prepare (deps, engine, build, image), then `mcp-box serve` with the given config
# (default: examples/mcp-box.json).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/prepare.sh
exec node dist/cli.js serve --config "${1:-examples/mcp-box.json}"

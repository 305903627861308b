#!/usr/bin/env bash
# Quick start: prepare (deps, engine, build, image), then `mcp-box serve` with the given config
# (default: examples/mcp-box.json).
# Signals: npm forwards SIGTERM/SIGINT to its own child only, the `sh -c` it runs scripts with. So
# package.json's start execs this script (else that sh dies alone and serve keeps running), and
# this script execs serve. While prepare runs, it is a job in its own process group (set -m), and
# a signal stops all of it rather than only this shell; its stdin is /dev/null, as a job off the
# terminal's foreground group must not read from it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
set -m
bash scripts/prepare.sh </dev/null &
prepare=$!
stop_prepare() {
  kill -TERM -- "-$prepare" 2>/dev/null || true
  wait "$prepare" 2>/dev/null || true
  exit "$1"
}
trap 'stop_prepare 143' TERM
trap 'stop_prepare 130' INT
trap 'stop_prepare 129' HUP
wait "$prepare"
trap - TERM INT HUP
set +m
exec node dist/cli.js serve --config "${1:-examples/mcp-box.json}"

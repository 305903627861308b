#!/usr/bin/env bash
# The whole test suite, from a clean clone: dependencies, a Docker engine (installed and started
# when missing and we are root on Debian), typecheck, lint, the unit tests and the Docker
# integration tests against a real engine with the sandbox image built offline.
# Ends with one summary line: "N passed, M failed, K skipped".
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n== %s\n' "$*"; }
fail() { printf '\n%s\n0 passed, 1 failed\n' "test.sh: $*" >&2; exit 1; }

# One suite at a time per machine: the Docker tests share one engine, and the fault tests restart it. A second
# run started meanwhile (another clone, a forgotten background run) would fail tests of the first at random.
# flock -o: only the flock process holds the lock, never a child (a dockerd started or restarted by the suite
# would otherwise keep it after the run).
lock="${TMPDIR:-/tmp}/mcp-box-suite.lock"
if [ -z "${MCP_BOX_SUITE_LOCKED:-}" ]; then
  flock -n "$lock" true || echo "test.sh: another run of the suite holds $lock; waiting for it to finish"
  MCP_BOX_SUITE_LOCKED=1 exec flock -o "$lock" bash scripts/test.sh "$@"
fi

step "dependencies";  bash scripts/ensure-deps.sh || fail "npm ci failed"
step "docker engine"; bash scripts/ensure-engine.sh || fail "no Docker engine: the integration suite cannot run"
step "test tools";    bash scripts/ensure-test-tools.sh || fail "a tool the tests need is missing (see above)"
step "typecheck";     npx tsc -p tsconfig.json --noEmit || fail "typecheck failed"
step "lint";          npm run lint --silent || fail "lint failed (eslint, prettier --check: npm run format fixes the formatting)"
step "build";         npx tsc -p tsconfig.build.json || fail "build failed"
step "sandbox image"; node dist/cli.js image build || fail "sandbox image build failed"

step "tests"
mkdir -p .test-results
rm -f .test-results/vitest.json
npx vitest run --reporter=default --reporter=json --outputFile.json=.test-results/vitest.json "$@"
vitest_status=$?
node scripts/summarize-tests.mjs .test-results/vitest.json
summary_status=$?
[ "$vitest_status" -eq 0 ] && [ "$summary_status" -eq 0 ]

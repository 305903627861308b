#!/usr/bin/env bash
# Make a Docker engine answer on the local socket.
#   1. An engine that already answers is used as it is.
#   2. Otherwise, as root on Debian: install Debian's docker.io when dockerd is missing,
#      start dockerd in the background and wait until /_ping answers.
#   3. Otherwise fail with a message that says what to do.
# Used by the test runner, CI and the quick start; `mcp-box serve` never installs anything.
set -euo pipefail

SOCKET="${MCP_BOX_DOCKER_SOCKET:-/var/run/docker.sock}"
LOG="${MCP_BOX_DOCKERD_LOG:-/var/log/mcp-box-dockerd.log}"
WAIT_SECONDS="${MCP_BOX_DOCKERD_WAIT:-90}"

say() { printf 'ensure-engine: %s\n' "$*" >&2; }

engine_answers() {
  [ -S "$SOCKET" ] || return 1
  if command -v curl >/dev/null 2>&1; then
    [ "$(curl -fsS --max-time 3 --unix-socket "$SOCKET" http://localhost/_ping 2>/dev/null)" = "OK" ]
  else
    node -e '
      const http = require("node:http");
      const req = http.get({ socketPath: process.argv[1], path: "/_ping", timeout: 3000 }, (res) => {
        let body = ""; res.on("data", (c) => (body += c)); res.on("end", () => process.exit(body === "OK" ? 0 : 1));
      });
      req.on("error", () => process.exit(1)); req.on("timeout", () => { req.destroy(); process.exit(1); });
    ' "$SOCKET"
  fi
}

if engine_answers; then
  say "engine answers on $SOCKET"
  exit 0
fi

if [ "$(id -u)" != "0" ] || [ ! -f /etc/debian_version ]; then
  say "no Docker engine answers on $SOCKET, and this is not root on Debian, so it cannot be installed here."
  say "Start a Docker engine (or point MCP_BOX_DOCKER_SOCKET at one) and run this again."
  exit 1
fi

if ! command -v dockerd >/dev/null 2>&1; then
  say "dockerd is missing: installing Debian's docker.io"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends docker.io iptables ca-certificates >/dev/null
fi

if pgrep -x dockerd >/dev/null 2>&1; then
  say "dockerd is running but does not answer yet; waiting"
else
  say "starting dockerd in the background (log: $LOG)"
  mkdir -p "$(dirname "$LOG")"
  # setsid + nohup: the engine outlives this script and the shell that ran it.
  setsid nohup dockerd --host "unix://$SOCKET" >>"$LOG" 2>&1 < /dev/null &
fi

for _ in $(seq 1 "$WAIT_SECONDS"); do
  if engine_answers; then
    say "engine answers on $SOCKET"
    exit 0
  fi
  sleep 1
done

say "dockerd did not answer /_ping within ${WAIT_SECONDS}s; last lines of $LOG:"
tail -n 20 "$LOG" >&2 || true
exit 1

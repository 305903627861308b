#!/usr/bin/env bash
# What the test suite needs beyond npm and Docker: a Python client with no MCP SDK (Debian's
# python3-websockets, for the relay client that sends no headers). Installed from Debian's
# packages when missing and we are root on Debian; otherwise it says what to install.
set -euo pipefail
say() { printf 'ensure-test-tools: %s\n' "$*"; }

PYTHON=/usr/bin/python3
if [ -x "$PYTHON" ] && "$PYTHON" -c 'import websockets' 2>/dev/null; then
  say "python3-websockets present"
  exit 0
fi
if [ "$(id -u)" != "0" ] || [ ! -f /etc/debian_version ]; then
  say "Debian's python3-websockets is missing (for $PYTHON), and this is not root on Debian: install it and run again."
  exit 1
fi
say "installing Debian's python3-websockets"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends python3 python3-websockets >/dev/null
"$PYTHON" -c 'import websockets' && say "python3-websockets installed"

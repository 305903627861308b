#!/usr/bin/env bash
# Builds the mcp-box image (docker/Dockerfile) without a registry:
#   - the package is built and its production dependencies installed into a staging folder;
#   - this machine's Node.js binary (>= 20) goes in beside it;
#   - the base is $MCP_BOX_BASE_IMAGE, else debian:bookworm-slim when present, else the local
#     debootstrap base (images/base/build-base.sh), as for the sandbox image.
# Usage: docker/build.sh [TAG]   (default mcp-box:latest)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
tag="${1:-mcp-box:latest}"
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT

bash scripts/ensure-deps.sh >&2
npx tsc -p tsconfig.build.json >&2
mkdir -p "$ctx/app"
cp -r dist package.json package-lock.json "$ctx/app/"
(cd "$ctx/app" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error) >&2
cp -r images "$ctx/app/"
cp "$(command -v node)" "$ctx/node"
cp docker/Dockerfile "$ctx/Dockerfile"

base="${MCP_BOX_BASE_IMAGE:-}"
if [ -z "$base" ]; then
  if docker image inspect debian:bookworm-slim >/dev/null 2>&1; then base=debian:bookworm-slim
  else base=$(bash images/base/build-base.sh); fi
fi
echo "building $tag from base $base" >&2
docker build -q --build-arg "BASE=$base" -t "$tag" "$ctx" >/dev/null
echo "$tag"

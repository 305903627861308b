#!/usr/bin/env bash
# Build a minimal Debian base image without any container registry:
#   debootstrap (minbase) into a folder, using this machine's configured Debian mirror
#   -> a cached tarball -> `docker import` as mcp-box-base:<suite>-<inputs hash>.
# Prints the image reference on stdout (everything else goes to stderr).
# Skips work that is already done: an imported image with the same inputs hash is reused,
# and a cached tarball with the same hash is imported without running debootstrap again.
set -euo pipefail

SUITE="${MCP_BOX_BASE_SUITE:-bookworm}"
CACHE_DIR="${MCP_BOX_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mcp-box}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

say() { printf 'build-base: %s\n' "$*" >&2; }

mirror_from_host() {
  # The first http(s) URI of the host's Debian sources (deb822 or one-line format).
  local uri
  uri=$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
    | grep -v security | sed -E 's/^URIs:[[:space:]]*//; s/^deb (\[[^]]*\] )?//' | awk '{print $1}' | head -n 1)
  printf '%s' "${uri:-http://deb.debian.org/debian}"
}
MIRROR="${MCP_BOX_DEBIAN_MIRROR:-$(mirror_from_host)}"

# The hash covers what determines the content: this script, the suite and the mirror.
inputs_hash=$( { cat "$here/build-base.sh"; printf '%s\n%s\n' "$SUITE" "$MIRROR"; } | sha256sum | cut -c1-16)
ref="mcp-box-base:${SUITE}-${inputs_hash}"

if docker image inspect "$ref" >/dev/null 2>&1; then
  say "reusing $ref"
  printf '%s\n' "$ref"
  exit 0
fi

tarball="$CACHE_DIR/base-${SUITE}-${inputs_hash}.tar"
if [ ! -s "$tarball" ]; then
  if [ "$(id -u)" != "0" ]; then
    say "debootstrap needs root; run as root or import a base yourself and pass it as the BASE build arg"
    exit 1
  fi
  if ! command -v debootstrap >/dev/null 2>&1; then
    say "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  fi
  mkdir -p "$CACHE_DIR"
  rootfs=$(mktemp -d "$CACHE_DIR/rootfs.XXXXXX")
  trap 'rm -rf "$rootfs"' EXIT
  say "debootstrap $SUITE from $MIRROR (minbase)"
  debootstrap --variant=minbase "$SUITE" "$rootfs" "$MIRROR" >&2
  # Containers use the same mirror as this machine.
  rm -f "$rootfs/etc/apt/sources.list"
  printf 'deb %s %s main\ndeb %s %s-updates main\n' "$MIRROR" "$SUITE" "$MIRROR" "$SUITE" \
    > "$rootfs/etc/apt/sources.list"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar --numeric-owner -C "$rootfs" -cf "$tarball.partial" .
  mv "$tarball.partial" "$tarball"
  say "cached $tarball ($(du -h "$tarball" | cut -f1))"
fi

say "importing $tarball as $ref"
docker import --change 'CMD ["/bin/sh"]' "$tarball" "$ref" >/dev/null
printf '%s\n' "$ref"

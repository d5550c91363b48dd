#!/usr/bin/env bash
# The Vagrant lab's network driver: builds on this machine, from the catalog, what
# Docker's overlay driver would for the tasks, so vipmesh has something to program.
#
#   lab-net.sh up     everything below, from nothing (an earlier build is removed first)
#   lab-net.sh down   removes all that `up` made (recorded in $STATE_DIR/made)
#
# - a bridge br-NET per catalog network, joined to the other machines' by a VXLAN
#   device vx-NET (VNI from topology.mjs, UDP 4789 between the nodes' addresses):
#   one L2 segment per network across the machines, as an overlay network is;
# - a named namespace per local task, with one veth per network it is on (eth0,
#   eth1, … in network-name order), its addresses, and lo up (the resolver binds
#   127.0.0.11 there);
# - the ingress sandbox: on the ingress bridge, and tied to this machine by a veth
#   (sb0 172.18.0.1 ↔ gw0 172.18.0.2) with a route to its ingress address, as
#   docker_gwbridge ties it: the published ports' DNAT goes there;
# - a load-balancer namespace per network the catalog gives it one on;
# - ARP for the VIPs kept on this machine (nftables, bridge family): every node's
#   load balancer holds the same VIPs, and a task must reach its own node's, as
#   the overlay driver's ARP proxy arranges in Swarm.
# The task servers are systemd units of their own (vipmesh-lab-task@.service).
#
# Settings come from /etc/vipmesh-lab/env (scripts/vagrant/lab.sh writes it), or
# from the environment: NODE_NAME, CATALOG, VIPMESH_DIR, STATE_DIR.
set -euo pipefail
LAB_ENV=${LAB_ENV:-/etc/vipmesh-lab/env}
if [ -r "$LAB_ENV" ]; then
  # shellcheck source=/dev/null
  . "$LAB_ENV"
fi
NODE_NAME=${NODE_NAME:-$(hostname)}
CATALOG=${CATALOG:-/etc/vipmesh-lab/catalog.yaml}
VIPMESH_DIR=${VIPMESH_DIR:-/usr/local/lib/node_modules/vipmesh}
STATE_DIR=${STATE_DIR:-/run/vipmesh-lab}
HERE=$(cd "$(dirname "$0")" && pwd)
MTU=1450 # 1500 on the private network, less VXLAN's 50 bytes
VXLAN_PORT=4789
NFT_TABLE=vagrant_lab
say() { echo "lab-net: $*" >&2; }
die() { say "$*"; exit 1; }

made() { echo "$1 $2" >>"$STATE_DIR/made"; }

down() {
  nft delete table bridge "$NFT_TABLE" 2>/dev/null || true
  [ -f "$STATE_DIR/made" ] || return 0
  local kind name
  # Namespaces first: their veths go with them.
  while read -r kind name; do
    [ "$kind" = netns ] || continue
    ip netns delete "$name" 2>/dev/null || true
  done <"$STATE_DIR/made"
  while read -r kind name; do
    [ "$kind" = link ] || continue
    ip link delete "$name" 2>/dev/null || true
  done <"$STATE_DIR/made"
  rm -f "$STATE_DIR/made"
}

# The interface holding this machine's address: Vagrant configures the private
# network during boot, perhaps after this unit started.
underlay_device() {
  local address=$1 device='' i
  for i in $(seq 60); do
    device=$(ip -o -4 addr show to "$address/32" | awk '{ print $2; exit }')
    [ -z "$device" ] || break
    [ "$i" -lt 60 ] || die "no interface holds $address (the node's address in $CATALOG) after 60 s"
    sleep 1
  done
  echo "$device"
}

# Each maker first removes a namesake left by a run whose record is gone.
new_netns() {
  ip netns delete "$1" 2>/dev/null || true
  ip netns add "$1"
  made netns "$1"
  ip -n "$1" link set lo up
}

veth_count=0
# plug NETNS BRIDGE IFNAME ADDR/LEN: a veth from the bridge into the namespace.
plug() {
  local netns=$1 bridge=$2 ifname=$3 address=$4
  veth_count=$((veth_count + 1))
  local outside="vl$veth_count"
  ip link add "$outside" mtu "$MTU" type veth peer name "$ifname" mtu "$MTU" netns "$netns"
  ip link set "$outside" master "$bridge" up
  ip -n "$netns" addr add "$address" dev "$ifname"
  ip -n "$netns" link set "$ifname" up
}

up() {
  down
  mkdir -p "$STATE_DIR"
  : >"$STATE_DIR/made"
  local topology
  topology=$(node "$HERE/topology.mjs" plumbing "$VIPMESH_DIR" "$CATALOG" "$NODE_NAME") ||
    die "cannot read the plumbing for node $NODE_NAME from $CATALOG"
  local local_address='' device='' peers=() w i peer
  vips=()
  vxlans=()
  while read -r -a w; do
    case ${w[0]} in
      node) # ADDRESS
        local_address=${w[1]}
        device=$(underlay_device "$local_address")
        ;;
      peer) peers+=("${w[1]}") ;;
      network) # NAME VNI
        [ -n "$device" ] || die "topology.mjs printed a network before the node"
        ip link delete "br-${w[1]}" 2>/dev/null || true
        ip link delete "vx-${w[1]}" 2>/dev/null || true
        ip link add "br-${w[1]}" type bridge
        made link "br-${w[1]}"
        ip link set "br-${w[1]}" up
        ip link add "vx-${w[1]}" mtu "$MTU" type vxlan id "${w[2]}" local "$local_address" dev "$device" dstport "$VXLAN_PORT"
        made link "vx-${w[1]}"
        # Broadcasts and unknown destinations go to every peer; the rest is learned.
        for peer in "${peers[@]}"; do
          bridge fdb append 00:00:00:00:00:00 dev "vx-${w[1]}" dst "$peer"
        done
        ip link set "vx-${w[1]}" master "br-${w[1]}" up
        vxlans+=("vx-${w[1]}")
        ;;
      sandbox) # NETNS NETWORK ADDR/LEN
        new_netns "${w[1]}"
        ip link add sb0 type veth peer name gw0 netns "${w[1]}"
        ip addr add 172.18.0.1/24 dev sb0
        ip link set sb0 up
        ip -n "${w[1]}" addr add 172.18.0.2/24 dev gw0
        ip -n "${w[1]}" link set gw0 up
        plug "${w[1]}" "br-${w[2]}" eth1 "${w[3]}"
        ip route add "${w[3]%/*}/32" via 172.18.0.2 dev sb0
        ip -n "${w[1]}" route add default via 172.18.0.1
        ;;
      lb) # NETWORK NETNS ADDR/LEN
        new_netns "${w[2]}"
        plug "${w[2]}" "br-${w[1]}" eth0 "${w[3]}"
        ;;
      vip) vips+=("${w[2]}") ;; # NETWORK ADDRESS
      task) # NAME NETNS (NETWORK ADDR/LEN)...
        new_netns "${w[2]}"
        for ((i = 3; i + 1 < ${#w[@]}; i += 2)); do
          plug "${w[2]}" "br-${w[i]}" "eth$(((i - 3) / 2))" "${w[i + 1]}"
        done
        ;;
      *) die "topology.mjs printed an unknown line: ${w[*]}" ;;
    esac
  done <<<"$topology"
  [ -n "$local_address" ] || die "topology.mjs printed no node line"
  keep_vip_arp_local
  say "node $NODE_NAME ($local_address on $device): built $(grep -c '^netns ' "$STATE_DIR/made") namespaces; peers: ${peers[*]:-none}"
}

# Requests for a VIP and answers from a VIP do not cross the VXLAN devices.
keep_vip_arp_local() {
  [ "${#vips[@]}" -gt 0 ] && [ "${#vxlans[@]}" -gt 0 ] || return 0
  local set ports
  set=$(IFS=,; echo "${vips[*]}")
  ports=$(printf '"%s", ' "${vxlans[@]}")
  ports=${ports%, }
  nft -f - <<EOF
table bridge $NFT_TABLE {
  chain forward {
    type filter hook forward priority 0; policy accept;
    oifname { $ports } arp daddr ip { $set } drop
    oifname { $ports } arp saddr ip { $set } drop
    iifname { $ports } arp daddr ip { $set } drop
    iifname { $ports } arp saddr ip { $set } drop
  }
}
EOF
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: lab-net.sh up|down" >&2; exit 2 ;;
esac

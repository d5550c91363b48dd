#!/usr/bin/env bash
# Vagrant provisioning, the worker, last: checks the whole lab as seed article 003
# shows it with Docker, from a task on each machine (client-manager, client-worker;
# the manager's over ssh as root, with the key check-key.sh installed):
#   - dig whoami → the VIP; dig tasks.whoami → the three task addresses; the dnsrr
#     service → its tasks; tasks.api → its tasks once their tcp healthcheck passes;
#   - ten requests to http://whoami land on all three tasks (through the machine's
#     load balancer); http://api answers;
#   - from each machine's host, port 8080 on both machines' addresses (the routing
#     mesh) lands on all three tasks.
# Expected values come from the catalog (topology.mjs service). Each check is retried
# for up to a minute: the agents converge on their own time (the other node's
# liveness, the first probes). Exits 1 naming every check that failed.
#   check.sh MANAGER_ADDRESS WORKER_ADDRESS
# To try it without two machines (namespaces playing them), the environment may set
# LIB, CATALOG, VIPMESH_DIR, TRIES, and MANAGER_EXEC: a command prefix that runs a
# command on the manager instead of ssh (e.g. "nsenter --net=/run/netns/NAME").
set -euo pipefail
manager_address=${1:?usage: check.sh MANAGER_ADDRESS WORKER_ADDRESS}
worker_address=${2:?usage: check.sh MANAGER_ADDRESS WORKER_ADDRESS}
PUBLISHED=8080 # whoami's published port in scripts/vagrant/catalog.yaml
LIB=${LIB:-/usr/local/lib/vipmesh-lab}
CATALOG=${CATALOG:-/etc/vipmesh-lab/catalog.yaml}
VIPMESH_DIR=${VIPMESH_DIR:-/usr/local/lib/node_modules/vipmesh}
TRIES=${TRIES:-60}
MANAGER_EXEC=${MANAGER_EXEC:-}
KEY=/root/.ssh/vipmesh-lab-check
HEALTHZ=http://127.0.0.1:9641/healthz
failed=()

say() { echo "check: $*"; }

# on MACHINE COMMAND...: runs it as root on that machine.
on() {
  local machine=$1
  shift
  if [ "$machine" = worker ]; then
    "$@"
  elif [ -n "$MANAGER_EXEC" ]; then
    # shellcheck disable=SC2086 # a command prefix, split into words
    $MANAGER_EXEC "$@"
  else
    ssh -i "$KEY" -o BatchMode=yes -o ConnectTimeout=5 -o StrictHostKeyChecking=accept-new \
      -o UserKnownHostsFile=/root/.ssh/vipmesh-lab-known-hosts "root@$manager_address" "$(printf '%q ' "$@")"
  fi
}

# expect DESCRIPTION WANT COMMAND...: the command's output, its lines sorted and
# joined by spaces, must be WANT; tried again each second up to $TRIES times.
expect() {
  local description=$1 want=$2 got='' i
  shift 2
  for ((i = 1; i <= TRIES; i++)); do
    got=$("$@" 2>&1 | LC_ALL=C sort | paste -sd ' ' -) || true
    if [ "$got" = "$want" ]; then
      say "ok: $description: $got"
      return 0
    fi
    [ "$i" -eq "$TRIES" ] || sleep 1
  done
  [ "${#got}" -le 400 ] || got="${got:0:400}…"
  say "FAIL: $description: want \"$want\", got \"$got\""
  failed+=("$description")
}

# The distinct Hostname: lines of COUNT requests (each on a new connection) to URL,
# from that machine's host, or from inside NETNS there.
hostnames() {
  local machine=$1 count=$2 url=$3 netns=${4:-}
  local urls=() i
  for ((i = 0; i < count; i++)); do urls+=("$url"); done
  if [ -n "$netns" ]; then
    on "$machine" ip netns exec "$netns" curl -sS --max-time 3 -H 'Connection: close' "${urls[@]}"
  else
    on "$machine" curl -sS --max-time 3 -H 'Connection: close' "${urls[@]}"
  fi | sed -n 's/^Hostname: //p' | LC_ALL=C sort -u
}

dig_in_client() {
  on "$1" ip netns exec "${client_netns[$1]}" dig +short +time=2 +tries=1 "$2"
}

agent_healthy() {
  on "$1" curl -fsS --max-time 2 -o /dev/null "$HEALTHZ" && echo ok
}

api_answers() {
  hostnames "$1" 1 http://api/ "${client_netns[$1]}" | grep -q '^api\.' && echo ok
}

# The namespace of the task client-MACHINE on each machine, from the catalog.
declare -A client_netns
for machine in manager worker; do
  plumbing=$(node "$LIB/topology.mjs" plumbing "$VIPMESH_DIR" "$CATALOG" "$machine")
  client_netns[$machine]=$(awk -v task="client-$machine" '$1 == "task" && $2 == task { print $3 }' <<<"$plumbing")
  [ -n "${client_netns[$machine]}" ] || { say "FAIL: $CATALOG has no task client-$machine on $machine"; exit 1; }
done

# "MODE VIP ADDRESSES NAMES" of a service, from the catalog (lists comma-joined).
catalog_service() {
  node "$LIB/topology.mjs" service "$VIPMESH_DIR" "$CATALOG" "$1"
}
service_line=$(catalog_service whoami)
read -r _ whoami_vip whoami_tasks whoami_names <<<"$service_line"
service_line=$(catalog_service whoami-dnsrr)
read -r _ _ dnsrr_tasks _ <<<"$service_line"
service_line=$(catalog_service api)
read -r _ _ api_tasks _ <<<"$service_line"
# As expect() shows outputs: one line each, space-separated.
whoami_tasks=${whoami_tasks//,/ }
whoami_names=${whoami_names//,/ }
dnsrr_tasks=${dnsrr_tasks//,/ }
api_tasks=${api_tasks//,/ }

if ! on manager true; then
  say "FAIL: cannot run commands on the manager (ssh root@$manager_address with $KEY): is it up and provisioned? (vagrant up manager)"
  exit 1
fi
for machine in manager worker; do
  expect "$machine: the agent's /healthz answers 200" ok agent_healthy "$machine"
done

for machine in manager worker; do
  expect "$machine, task client-$machine: dig whoami → the VIP" "$whoami_vip" dig_in_client "$machine" whoami
  expect "$machine, task client-$machine: dig tasks.whoami → the three tasks" "$whoami_tasks" dig_in_client "$machine" tasks.whoami
  expect "$machine, task client-$machine: dig whoami-dnsrr → its tasks (dnsrr)" "$dnsrr_tasks" dig_in_client "$machine" whoami-dnsrr
  expect "$machine, task client-$machine: dig tasks.api → its tasks (tcp healthcheck passed)" "$api_tasks" dig_in_client "$machine" tasks.api
  expect "$machine, task client-$machine: 10 requests to http://whoami land on every whoami task" "$whoami_names" \
    hostnames "$machine" 10 http://whoami/ "${client_netns[$machine]}"
  expect "$machine, task client-$machine: http://api answers from an api task" ok api_answers "$machine"
  for address in "$manager_address" "$worker_address"; do
    expect "$machine, host: 9 requests to $address:$PUBLISHED (routing mesh) land on every whoami task" "$whoami_names" \
      hostnames "$machine" 9 "http://$address:$PUBLISHED/"
  done
done

if [ "${#failed[@]}" -gt 0 ]; then
  say "${#failed[@]} check(s) failed:"
  printf '  - %s\n' "${failed[@]}"
  say "look at: systemctl status vipmesh; journalctl -u vipmesh; ip netns; ipvsadm -Ln in /run/netns/lb_appnet and ingress_sbox"
  exit 1
fi
say "all checks passed: DNS, the VIPs and the routing mesh work across both machines"

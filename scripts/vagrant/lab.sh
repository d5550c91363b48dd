#!/usr/bin/env bash
# Vagrant provisioning, both machines, after install.sh: the lab's tasks — what a
# container runtime and its network driver would provide. Installs lab-net.sh
# (namespaces, bridges, VXLAN; run at every boot by vipmesh-lab-net.service) and
# one vipmesh-lab-task@NAMESPACE unit per local task (whoami.mjs on port 80),
# then waits for every task to answer.   lab.sh NODE
set -euo pipefail
node_name=${1:?usage: lab.sh NODE}
SRC=/vagrant/scripts/vagrant
LIB=/usr/local/lib/vipmesh-lab
CONF=/etc/vipmesh-lab
VIPMESH_DIR=/usr/local/lib/node_modules/vipmesh
say() { echo "lab: $*" >&2; }

install -d "$LIB" "$CONF" "$CONF/tasks"
install -m 0755 "$SRC/lab-net.sh" "$LIB/"
install -m 0644 "$SRC/topology.mjs" "$SRC/whoami.mjs" "$LIB/"
install -m 0644 "$SRC/catalog.yaml" "$CONF/catalog.yaml"
cat >"$CONF/env" <<CONF
NODE_NAME=$node_name
CATALOG=$CONF/catalog.yaml
VIPMESH_DIR=$VIPMESH_DIR
CONF
install -m 0644 "$SRC/vipmesh-lab-net.service" "$SRC/vipmesh-lab-task@.service" /etc/systemd/system/
systemctl daemon-reload
systemctl enable vipmesh-lab-net.service
# A rebuild: the old namespaces go, with the task servers in them (PartOf).
systemctl restart vipmesh-lab-net.service

# TASK-NAME NAMESPACE, one line per local task.
tasks=$(node "$LIB/topology.mjs" plumbing "$VIPMESH_DIR" "$CONF/catalog.yaml" "$node_name" | awk '$1 == "task" { print $2, $3 }')
# Tasks of an earlier catalog that this one no longer has.
for file in "$CONF"/tasks/*; do
  [ -e "$file" ] || continue
  netns=$(basename "$file")
  if ! awk -v ns="$netns" '$2 == ns { found = 1 } END { exit !found }' <<<"$tasks"; then
    systemctl disable --now "vipmesh-lab-task@$netns.service" || true
    rm -f "$file"
  fi
done
while read -r task netns; do
  [ -n "$task" ] || continue
  printf 'TASK=%s\n' "$task" >"$CONF/tasks/$netns"
  systemctl enable "vipmesh-lab-task@$netns.service"
  systemctl restart "vipmesh-lab-task@$netns.service"
done <<<"$tasks"

while read -r task netns; do
  [ -n "$task" ] || continue
  for i in $(seq 30); do
    if ip netns exec "$netns" curl -fsS --max-time 2 http://127.0.0.1/ 2>/dev/null | grep -qx "Hostname: $task"; then
      break
    fi
    if [ "$i" -eq 30 ]; then
      say "task $task does not answer on port 80 in namespace $netns after 30 s:"
      systemctl status "vipmesh-lab-task@$netns.service" --no-pager >&2 || true
      exit 1
    fi
    sleep 1
  done
done <<<"$tasks"
say "node $node_name: $(grep -c . <<<"$tasks") tasks answer in their namespaces"

#!/usr/bin/env bash
# Vagrant provisioning, both machines, after lab.sh: the vipmesh agent under systemd,
# with the unit the package carries (systemd/vipmesh.service) and a drop-in that
# points it at /usr/local/bin/vipmesh (npm install -g --prefix /usr/local) and at the
# cluster catalog in etcd. On the manager the lab catalog is pushed there first.
#   agent.sh NODE SOURCE      (SOURCE: etcd://192.168.56.11:2379/vipmesh)
set -euo pipefail
node_name=${1:?usage: agent.sh NODE SOURCE}
source_url=${2:?usage: agent.sh NODE SOURCE}
VIPMESH=/usr/local/bin/vipmesh
VIPMESH_DIR=/usr/local/lib/node_modules/vipmesh
CATALOG=/etc/vipmesh-lab/catalog.yaml
HEALTHZ=http://127.0.0.1:9641/healthz # the agent's default --listen
say() { echo "agent: $*" >&2; }

if [ "$node_name" = manager ]; then
  "$VIPMESH" catalog push "$CATALOG" --to "$source_url"
fi

install -m 0644 "$VIPMESH_DIR/systemd/vipmesh.service" /etc/systemd/system/vipmesh.service
mkdir -p /etc/systemd/system/vipmesh.service.d
after=vipmesh-lab-net.service
[ "$node_name" != manager ] || after="$after etcd.service"
cat >/etc/systemd/system/vipmesh.service.d/vagrant-lab.conf <<CONF
# Written by scripts/vagrant/agent.sh (the vipmesh Vagrant lab).
[Unit]
Wants=vipmesh-lab-net.service
After=$after
[Service]
ExecStart=
ExecStart=$VIPMESH agent -c $source_url --node $node_name
CONF
systemctl daemon-reload
systemctl enable vipmesh.service
# --no-block: a Type=notify start waits for READY=1, which an agent still waiting
# for etcd does not send; the wait below says what went wrong instead.
systemctl restart --no-block vipmesh.service

for i in $(seq 90); do
  if curl -fsS --max-time 2 "$HEALTHZ" >/dev/null 2>&1; then
    say "node $node_name: the agent is healthy ($HEALTHZ)"
    exit 0
  fi
  [ "$i" -eq 90 ] || sleep 1
done
say "node $node_name: the agent is not healthy after 90 s ($HEALTHZ); it reads the catalog from $source_url: is the manager up (vagrant up manager)?"
curl -sS --max-time 2 "$HEALTHZ" >&2 || true
systemctl status vipmesh.service --no-pager >&2 || true
journalctl -u vipmesh.service -n 40 --no-pager >&2 || true
exit 1

#!/usr/bin/env bash
# Vagrant provisioning, the manager: etcd (Debian's etcd-server 3.4) for the cluster
# catalog (SPEC §6), listening on the private address for both machines' agents and
# on loopback.   etcd.sh ADDRESS
set -euo pipefail
address=${1:?usage: etcd.sh ADDRESS}
say() { echo "etcd: $*" >&2; }

export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends etcd-server etcd-client

# Debian's unit reads /etc/default/etcd; its name (the host name) and data directory stay.
cat >/etc/default/etcd <<CONF
# Written by scripts/vagrant/etcd.sh (the vipmesh Vagrant lab).
ETCD_LISTEN_CLIENT_URLS=http://$address:2379,http://127.0.0.1:2379
ETCD_ADVERTISE_CLIENT_URLS=http://$address:2379
CONF
# At boot etcd must wait for the private address, and try again if it came late.
mkdir -p /etc/systemd/system/etcd.service.d
cat >/etc/systemd/system/etcd.service.d/vagrant-lab.conf <<'CONF'
[Unit]
After=network-online.target
[Service]
Restart=on-failure
RestartSec=2s
CONF
systemctl daemon-reload
systemctl enable etcd
systemctl restart etcd
for i in $(seq 30); do
  if etcdctl --endpoints="http://$address:2379" endpoint health >/dev/null 2>&1; then
    say "etcd answers on http://$address:2379"
    exit 0
  fi
  [ "$i" -eq 30 ] || sleep 1
done
say "etcd does not answer on http://$address:2379 after 30 s:"
systemctl status etcd --no-pager >&2 || true
exit 1

#!/usr/bin/env bash
# Vagrant provisioning, both machines: the key the worker's final check (check.sh)
# uses to run dig and curl in the manager's tasks, as root over ssh. The Vagrantfile
# makes it once on the host (.vagrant/vipmesh-check-key.pem) and passes it base64-
# encoded in VIPMESH_CHECK_KEY.   check-key.sh manager|worker
set -euo pipefail
role=${1:?usage: check-key.sh manager|worker}
: "${VIPMESH_CHECK_KEY:?the Vagrantfile passes the key in VIPMESH_CHECK_KEY}"
KEY=/root/.ssh/vipmesh-lab-check
COMMENT=vipmesh-lab-check

install -d -m 0700 /root/.ssh
umask 077
base64 -d <<<"$VIPMESH_CHECK_KEY" >"$KEY.new"
case $role in
  worker)
    mv "$KEY.new" "$KEY"
    ;;
  manager)
    public=$(ssh-keygen -y -f "$KEY.new")
    rm -f "$KEY.new"
    touch /root/.ssh/authorized_keys
    grep -v " $COMMENT\$" /root/.ssh/authorized_keys >/root/.ssh/authorized_keys.new || true
    echo "$public $COMMENT" >>/root/.ssh/authorized_keys.new
    mv /root/.ssh/authorized_keys.new /root/.ssh/authorized_keys
    # Debian's default, said explicitly: root by key only.
    echo 'PermitRootLogin prohibit-password' >/etc/ssh/sshd_config.d/vipmesh-lab.conf
    systemctl reload ssh
    ;;
  *) echo "usage: check-key.sh manager|worker" >&2; exit 2 ;;
esac

// Programs the kernel tests drive, and the Debian package that has each: a test
// whose tool is missing fails saying what to install, not with a spawn error.
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { delimiter, join } from 'node:path';

export const PACKAGES: Readonly<Record<string, string>> = {
  conntrack: 'conntrack',
  dig: 'bind9-dnsutils',
  dnsmasq: 'dnsmasq-base',
  etcd: 'etcd-server',
  etcdctl: 'etcd-client',
  getent: 'libc-bin',
  ip: 'iproute2',
  iptables: 'iptables',
  ipvsadm: 'ipvsadm',
  'musl-gcc': 'musl-tools',
  nsenter: 'util-linux',
  openssl: 'openssl',
  python3: 'python3-minimal',
  ss: 'iproute2',
  'systemd-analyze': 'systemd',
  'systemd-notify': 'systemd',
};

/** The tool's path; throws naming the package to install when it is missing. */
export async function requireTool(name: string): Promise<string> {
  const dirs = [...(process.env['PATH'] ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/bin', '/bin'];
  for (const dir of new Set(dirs.filter((d) => d.startsWith('/')))) {
    try {
      await access(join(dir, name), constants.X_OK);
      return join(dir, name);
    } catch {
      // not here
    }
  }
  const pkg = PACKAGES[name] ?? name;
  throw new Error(`${name} is missing: install the Debian package ${pkg} (scripts/install-system-deps.sh does)`);
}

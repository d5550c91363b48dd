// The programs the lab runs, checked before anything is made: a missing one is
// named with the Debian package that has it, not found halfway through a build.
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { delimiter, join } from 'node:path';

const PACKAGES: Readonly<Record<string, string>> = {
  ip: 'iproute2',
  ebtables: 'ebtables (or iptables, whose nft backend provides it)',
  etcd: 'etcd-server',
  dig: 'bind9-dnsutils',
  curl: 'curl',
  nsenter: 'util-linux',
  'iptables-restore': 'iptables',
};

async function onPath(name: string): Promise<boolean> {
  const dirs = [...(process.env['PATH'] ?? '').split(delimiter), '/usr/sbin', '/sbin', '/usr/bin', '/bin'];
  for (const dir of new Set(dirs.filter((d) => d.startsWith('/')))) {
    try {
      await access(join(dir, name), constants.X_OK);
      return true;
    } catch {
      // not here
    }
  }
  return false;
}

/** Undefined when all are there; else a sentence naming what to install. */
export async function missingTools(names: readonly string[]): Promise<string | undefined> {
  const missing: string[] = [];
  for (const name of names) if (!(await onPath(name))) missing.push(name);
  if (missing.length === 0) return undefined;
  return `the lab needs ${missing.map((m) => `${m} (package ${PACKAGES[m] ?? m})`).join(', ')}, not found on PATH`;
}

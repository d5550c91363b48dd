// resolver.json: the ports the resolver holds in each namespace, which plan and
// reconcile read to program the DNAT 127.0.0.11:53 → those ports, and which the
// next start takes again so that redirect stays right across a restart.
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ResolverPorts } from '../kernel/netns-sockets.js';
import { RESOLVER_FILE } from '../state/runtime.js';
import { isRecord, processAlive, readJson } from '../state/util.js';
import { writeAtomic } from './resolv-conf.js';

/**
 * resolver.json as a previous run left it: the ports to take again. Throws when
 * another live resolver owns it (two resolvers would fight over the DNAT).
 */
export async function readPreviousPorts(dir: string): Promise<Map<string, ResolverPorts>> {
  const ports = new Map<string, ResolverPorts>();
  const data = await readJson(join(dir, RESOLVER_FILE));
  if (!isRecord(data)) return ports;
  const pid = data['pid'];
  if (typeof pid === 'number' && pid !== process.pid && processAlive(pid) && (await looksLikeUs(pid))) {
    throw new Error(`another vipmesh resolver (pid ${pid}) serves this node (${join(dir, RESOLVER_FILE)}); stop it first`);
  }
  const namespaces = data['namespaces'];
  if (!isRecord(namespaces)) return ports;
  const isPort = (v: unknown): v is number => Number.isInteger(v) && (v as number) > 0 && (v as number) < 65536;
  for (const [netns, entry] of Object.entries(namespaces)) {
    if (isRecord(entry) && isPort(entry['udp']) && isPort(entry['tcp'])) ports.set(netns, { udp: entry['udp'], tcp: entry['tcp'] });
  }
  return ports;
}

// After a reboot or a crash the recorded pid may belong to an unrelated program.
async function looksLikeUs(pid: number): Promise<boolean> {
  try {
    const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
    return cmdline.some((arg) => /(^|\/)(node|vipmesh)[^/]*$/.test(arg));
  } catch {
    return true; // cannot tell: assume it is
  }
}

/** Writes resolver.json (this process's pid, the ports by namespace) when it changed. */
export function createPortsFile(dir: string): (ports: ReadonlyMap<string, ResolverPorts>) => Promise<void> {
  let last: string | undefined;
  return async (ports) => {
    const namespaces: Record<string, ResolverPorts> = {};
    for (const netns of [...ports.keys()].sort()) namespaces[netns] = ports.get(netns)!;
    const text = JSON.stringify({ pid: process.pid, namespaces }, null, 2) + '\n';
    if (text === last) return;
    await mkdir(dir, { recursive: true, mode: 0o755 });
    await writeAtomic(join(dir, RESOLVER_FILE), text);
    last = text;
  };
}

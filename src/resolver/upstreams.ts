// Where unknown names go: the host's resolv.conf, read the way glibc reads it.
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import { MAX_UPSTREAMS } from './forward.js';
import type { Upstream } from './types.js';

export interface ResolvConf {
  /** The first 3 usable nameservers, port 53; never 127.0.0.11 (that would be us, from a task). */
  readonly upstreams: Upstream[];
  /** The search list, as the task namespaces' resolv.conf should repeat it. */
  readonly search: string[];
}

const SELF = '127.0.0.11';

/**
 * Pure. `nameserver` lines in order (an address with a zone, fe80::1%eth0, is
 * kept as written; anything that isn't an address is skipped, as glibc does);
 * the last `search` or `domain` line wins, as in glibc. Comments start with # or ;.
 * No nameserver at all gives no upstreams: unknown names then get SERVFAIL, not a
 * guessed public server.
 */
export function parseResolvConf(text: string): ResolvConf {
  const upstreams: Upstream[] = [];
  let search: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/[#;].*$/, '').trim();
    if (line === '') continue;
    const [keyword, ...args] = line.split(/\s+/);
    if (keyword === 'nameserver') {
      const address = args[0];
      if (address === undefined || address === SELF || upstreams.length >= MAX_UPSTREAMS) continue;
      const bare = address.includes('%') ? address.slice(0, address.indexOf('%')) : address;
      if (net.isIP(bare) === 0) continue;
      if (upstreams.some((u) => u.address === address)) continue;
      upstreams.push({ address, port: 53 });
    } else if (keyword === 'search') {
      search = args;
    } else if (keyword === 'domain') {
      search = args.slice(0, 1);
    }
  }
  return { upstreams, search };
}

export async function readHostResolvConf(path = '/etc/resolv.conf'): Promise<ResolvConf> {
  return parseResolvConf(await readFile(path, 'utf8'));
}

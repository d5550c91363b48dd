// Throwaway namespaces for the benchmarks, removed on the way out (also on
// Ctrl-C). Names carry a random run id, so a run never touches anything else.
//
// The lab's plumbing (src/lab/plumbing.ts) makes one namespace per `ip` process;
// a benchmark makes hundreds, so this makes and deletes them with one
// `ip -batch` each way, and keeps the plumbing's journal of what it made: every
// name is on record before it is made, and removeMade takes what a batch left
// and the /etc/netns entries a resolver under test writes.
import { randomBytes } from 'node:crypto';
import { execa } from 'execa';
import { type Made, removeMade, sh } from '../src/lab/plumbing.js';

export interface Lab {
  readonly id: string;
  /** Creates namespaces named `<id>-<suffix>` (lo down, as `ip netns add` leaves them); returns their /run/netns paths. */
  add(suffixes: readonly string[]): Promise<string[]>;
  /** Deletes every namespace this lab created. */
  close(): Promise<void>;
}

export function requireRoot(what: string): void {
  if (process.getuid?.() !== 0) throw new Error(`${what} needs root: it creates network namespaces`);
}

export function createLab(prefix = 'vb'): Lab {
  const id = `${prefix}${randomBytes(3).toString('hex')}`;
  const made: Made[] = [];
  const onSignal = () => {
    void close().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  async function close(): Promise<void> {
    process.off('SIGINT', onSignal);
    const all = made.splice(0).reverse();
    const names = all.flatMap((m) => (m.kind === 'netns' ? [m.name] : []));
    // `ip -batch` deletes them in one process; removeMade then finds them gone.
    if (names.length > 0) await execa('ip', ['-batch', '-'], { input: names.map((n) => `netns delete ${n}`).join('\n'), reject: false });
    await removeMade(all);
  }
  return {
    id,
    async add(suffixes) {
      const fresh = suffixes.map((s) => `${id}-${s}`);
      for (const name of fresh) made.push({ kind: 'netns', name }, { kind: 'etc-netns', name });
      await sh('ip', ['-batch', '-'], fresh.map((n) => `netns add ${n}`).join('\n'));
      return fresh.map((n) => `/run/netns/${n}`);
    },
    close,
  };
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function machine(): Promise<string> {
  return sh('sh', ['-c', 'echo "$(nproc) cores, $(uname -sr), $(iptables --version)"']).then((s) => s.trim());
}

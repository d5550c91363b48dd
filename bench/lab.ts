// Throwaway namespaces for the benchmarks, removed on the way out (also on
// Ctrl-C). Names carry a random run id, so a run never touches anything else.
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { execa } from 'execa';

export interface Lab {
  readonly id: string;
  /** Creates namespaces named `<id>-<suffix>`; returns their /run/netns paths. */
  add(suffixes: readonly string[]): Promise<string[]>;
  /** Deletes every namespace this lab created. */
  close(): Promise<void>;
}

async function sh(file: string, args: readonly string[], input?: string): Promise<string> {
  const result = await execa(file, args, { reject: false, ...(input === undefined ? {} : { input }) });
  if (result.exitCode !== 0) throw new Error(`${result.command} exited ${result.exitCode}: ${result.stderr}`);
  return result.stdout;
}

export function requireRoot(what: string): void {
  if (process.getuid?.() !== 0) throw new Error(`${what} needs root: it creates network namespaces`);
}

export function createLab(prefix = 'vb'): Lab {
  const id = `${prefix}${randomBytes(3).toString('hex')}`;
  const names: string[] = [];
  const onSignal = () => {
    void close().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  async function close(): Promise<void> {
    process.off('SIGINT', onSignal);
    const all = names.splice(0);
    // `ip -batch` deletes them in one process.
    if (all.length > 0) await execa('ip', ['-batch', '-'], { input: all.map((n) => `netns delete ${n}`).join('\n'), reject: false });
    // A resolver under test writes /etc/netns/<name>/resolv.conf for ip netns exec.
    await Promise.all(all.map((n) => rm(`/etc/netns/${n}`, { recursive: true, force: true })));
  }
  return {
    id,
    async add(suffixes) {
      const fresh = suffixes.map((s) => `${id}-${s}`);
      names.push(...fresh);
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

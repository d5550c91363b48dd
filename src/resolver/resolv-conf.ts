// Pointing named namespaces at the embedded DNS: `ip netns exec NAME …` mounts
// /etc/netns/NAME/resolv.conf over /etc/resolv.conf, so for a task in
// /run/netns/NAME the resolver writes one there. A first-line marker says the
// file is ours: one we did not write is never replaced or removed.
import { mkdir, readFile, readdir, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { namespaceExists } from '../kernel/env.js';

const MARKER = '# vipmesh: the embedded DNS of this task; vipmesh removes this file when the task leaves';

/** NAME for /run/netns/NAME (what `ip netns` manages), otherwise null. */
export function namedNamespace(netns: string): string | null {
  const match = /^(?:\/var)?\/run\/netns\/([^/]+)$/.exec(netns);
  return match === null || match[1] === '.' || match[1] === '..' ? null : match[1]!;
}

/** What a task's resolv.conf says: Docker's choice (ndots:0, the host's search list). */
export function resolvConfText(search: readonly string[]): string {
  const lines = [MARKER];
  if (search.length > 0) lines.push(`search ${search.join(' ')}`);
  lines.push('nameserver 127.0.0.11', 'options ndots:0');
  return lines.join('\n') + '\n';
}

export async function writeAtomic(file: string, text: string): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, text, { mode: 0o644 });
  await rename(tmp, file);
}

async function readText(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch {
    return undefined;
  }
}

export interface ResolvConfs {
  /** Writes the namespace's resolv.conf unless someone else's is there (then says so once per call). */
  write(netns: string, search: readonly string[]): Promise<void>;
  /** Removes it if it is ours. */
  remove(netns: string): Promise<void>;
  /**
   * Removes our resolv.conf of named namespaces that no longer exist and are not
   * in `keep`: tasks that left while no resolver ran (`ip netns delete` leaves
   * /etc/netns/NAME behind). Only a vanished namespace's file goes, so resolvers
   * with other catalogs sharing /etc/netns never take each other's.
   */
  sweep(keep: Iterable<string>): Promise<void>;
  /** Removes every file this one wrote (for cleanup). */
  removeAll(): Promise<void>;
}

export function createResolvConfs(etcNetns: string, warn: (message: string) => void): ResolvConfs {
  /** Names whose resolv.conf is ours. */
  const written = new Set<string>();

  async function remove(netns: string): Promise<void> {
    const name = namedNamespace(netns);
    if (name === null) return;
    const file = join(etcNetns, name, 'resolv.conf');
    const existing = await readText(file);
    written.delete(name);
    if (existing === undefined || !existing.startsWith(MARKER)) return; // not ours (any more)
    await rm(file, { force: true });
    // The directory goes too once empty; anything else someone keeps there stays.
    await rmdir(dirname(file)).catch(() => {});
  }

  return {
    async write(netns, search) {
      const name = namedNamespace(netns);
      if (name === null) return;
      const file = join(etcNetns, name, 'resolv.conf');
      const text = resolvConfText(search);
      const existing = await readText(file);
      if (existing === text) {
        written.add(name);
        return;
      }
      if (existing !== undefined && !existing.startsWith(MARKER)) {
        warn(`resolver: ${file} exists and is not vipmesh's; leaving it (that namespace may not use 127.0.0.11)`);
        return;
      }
      await mkdir(dirname(file), { recursive: true, mode: 0o755 });
      await writeAtomic(file, text);
      written.add(name);
    },
    remove,
    async sweep(keep) {
      let names: string[];
      try {
        names = await readdir(etcNetns);
      } catch {
        return; // no /etc/netns: nothing to sweep
      }
      const kept = new Set([...keep].map(namedNamespace));
      for (const name of names) {
        if (kept.has(name) || (await namespaceExists(`/run/netns/${name}`).catch(() => true))) continue;
        await remove(`/run/netns/${name}`).catch(() => {});
      }
    },
    async removeAll() {
      await Promise.all([...written].map((name) => remove(join('/run/netns', name))));
    },
  };
}

/**
 * Removes our resolv.conf of these namespaces (`vipmesh cleanup`: the agent leaves
 * them in place when it stops, so its tasks keep 127.0.0.11 across a restart).
 * A file without our marker stays. Returns the files removed.
 */
export async function removeResolvConfsOf(etcNetns: string, netnsPaths: Iterable<string>): Promise<string[]> {
  const removed: string[] = [];
  const confs = createResolvConfs(etcNetns, () => {});
  for (const netns of netnsPaths) {
    const name = namedNamespace(netns);
    if (name === null) continue;
    const file = join(etcNetns, name, 'resolv.conf');
    const before = await readText(file);
    await confs.remove(netns);
    if (before?.startsWith(MARKER) === true && (await readText(file)) === undefined) removed.push(file);
  }
  return removed;
}

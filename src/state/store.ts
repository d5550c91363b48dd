// What a reconcile leaves for the next one under /run/vipmesh/state.json: the
// namespaces it manages (so a task that leaves the catalog is still cleaned up),
// when each draining real server started draining, and the VIP fwmarks it
// programmed (so `plan`, which needs no root, prints the marks reconcile keeps).
import { mkdir, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isRecord, processAlive, readJson } from './util.js';
import type { NamespaceRole } from '../plan/types.js';

export const STATE_FILE = 'state.json';
export const LOCK_FILE = 'lock';

export interface ManagedNamespace {
  readonly netns: string | null;
  readonly role: NamespaceRole;
}

export interface StoredState {
  readonly namespaces: Readonly<Record<string, ManagedNamespace>>;
  readonly draining: Readonly<Record<string, Readonly<Record<string, number>>>>;
  readonly marks: Readonly<Record<string, Readonly<Record<string, number>>>>;
  /** Per namespace, a fingerprint of the plan last applied there without an error. */
  readonly applied: Readonly<Record<string, string>>;
}

export const EMPTY_STATE: StoredState = { namespaces: {}, draining: {}, marks: {}, applied: {} };


function numbers(value: unknown): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  if (!isRecord(value)) return out;
  for (const [key, inner] of Object.entries(value)) {
    if (!isRecord(inner)) continue;
    out[key] = Object.fromEntries(Object.entries(inner).filter(([, v]) => typeof v === 'number')) as Record<string, number>;
  }
  return out;
}

export async function readState(dir: string): Promise<StoredState> {
  const data = await readJson(join(dir, STATE_FILE));
  if (!isRecord(data)) return EMPTY_STATE;
  const namespaces: Record<string, ManagedNamespace> = {};
  if (isRecord(data['namespaces'])) {
    for (const [key, entry] of Object.entries(data['namespaces'])) {
      if (!isRecord(entry)) continue;
      const netns = typeof entry['netns'] === 'string' ? entry['netns'] : null;
      const role = entry['role'] === 'host' || entry['role'] === 'ingress-sandbox' ? entry['role'] : 'task';
      namespaces[key] = { netns, role };
    }
  }
  const applied = isRecord(data['applied'])
    ? Object.fromEntries(Object.entries(data['applied']).filter((e): e is [string, string] => typeof e[1] === 'string'))
    : {};
  return { namespaces, draining: numbers(data['draining']), marks: numbers(data['marks']), applied };
}

/** Written whole and renamed into place, so a crash never leaves half a file. */
export async function writeState(dir: string, state: StoredState): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const tmp = join(dir, `${STATE_FILE}.${process.pid}.tmp`);
  await writeFile(tmp, JSON.stringify(state, null, 2) + '\n');
  await rename(tmp, join(dir, STATE_FILE));
}


/**
 * One writer per node: a one-shot reconcile and the agent's sync never overlap.
 * The lock file holds the owner's pid; a dead owner's lock is taken over.
 */
export async function acquireLock(dir: string, timeoutMs: number): Promise<() => Promise<void>> {
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const file = join(dir, LOCK_FILE);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const handle = await open(file, 'wx');
      await handle.writeFile(`${process.pid}\n`);
      await handle.close();
      return async () => {
        await rm(file, { force: true });
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const owner = Number.parseInt(await readFile(file, 'utf8').catch(() => ''), 10);
    if (!Number.isInteger(owner) || !processAlive(owner)) {
      await rm(file, { force: true });
      continue;
    }
    if (Date.now() >= deadline) {
      throw new Error(`another vipmesh (pid ${owner}) holds ${file}; it is reconciling this node`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

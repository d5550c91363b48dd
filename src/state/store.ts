// What a reconcile leaves for the next one under /run/vipmesh/state.json: the
// namespaces it manages (so a task that leaves the catalog is still cleaned up),
// when each draining real server started draining, and the VIP fwmarks it
// programmed (so `plan`, which needs no root, prints the marks reconcile keeps).
// And the node's lock beside it, which keeps two writers of that state apart.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isLocked, lockFile } from '../kernel/flock.js';
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
  /**
   * Per namespace, the VIP addresses vipmesh added there ("10.0.1.2/32"): the
   * only addresses it ever deletes. Absent while it owns none anywhere.
   */
  readonly addresses?: Readonly<Record<string, readonly string[]>>;
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
      const role = entry['role'] === 'host' || entry['role'] === 'ingress-sandbox' || entry['role'] === 'load-balancer'
        ? entry['role'] : 'task';
      namespaces[key] = { netns, role };
    }
  }
  const applied = isRecord(data['applied'])
    ? Object.fromEntries(Object.entries(data['applied']).filter((e): e is [string, string] => typeof e[1] === 'string'))
    : {};
  const state = { namespaces, draining: numbers(data['draining']), marks: numbers(data['marks']), applied };
  const addresses = stringLists(data['addresses']);
  return Object.keys(addresses).length === 0 ? state : { ...state, addresses };
}

function stringLists(value: unknown): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  if (!isRecord(value)) return out;
  for (const [key, list] of Object.entries(value)) {
    if (!Array.isArray(list)) continue;
    const texts = list.filter((item): item is string => typeof item === 'string');
    if (texts.length > 0) out[key] = texts;
  }
  return out;
}

/** Written whole and renamed into place, so a crash never leaves half a file. */
export async function writeState(dir: string, state: StoredState): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const tmp = join(dir, `${STATE_FILE}.${process.pid}.tmp`);
  await writeFile(tmp, JSON.stringify(state, null, 2) + '\n');
  await rename(tmp, join(dir, STATE_FILE));
}


/** The node's lock, held by this process until release() or its death. */
export interface NodeLock {
  /** The lock file (`/run/vipmesh/lock`). */
  readonly path: string;
  release(): Promise<void>;
}

/** Someone else holds the node's lock. */
export class LockBusyError extends Error {
  constructor(readonly path: string, readonly pid: number | undefined) {
    super(`another vipmesh${pid === undefined ? '' : ` (pid ${pid})`} holds ${path}`);
    this.name = 'LockBusyError';
  }
}

/** Held: pid is what the holder wrote into the file, when that names a live process. */
export type LockHolder =
  | { readonly state: 'free' }
  | { readonly state: 'held'; readonly pid: number | undefined };

// A holder writes its pid just after taking the lock, and isLocked() holds a
// shared lock for a few milliseconds: a lock held by nobody we can name is most
// likely one of those moments, so a try-once acquire looks again this long.
const UNNAMED_HOLDER_GRACE_MS = 250;

/** The live pid the lock file names, if any. The file may hold a former holder's. */
async function namedPid(path: string): Promise<number | undefined> {
  const text = await readFile(path, 'utf8').catch(() => '');
  const first = text.split('\n')[0]?.trim() ?? '';
  if (!/^[1-9]\d*$/.test(first)) return undefined;
  const pid = Number(first);
  return processAlive(pid) ? pid : undefined;
}

/**
 * One writer per node: the agent for its whole life, a one-shot reconcile for
 * its pass. The kernel holds the lock (flock(2)) and drops it when the holder
 * dies, so nothing is ever taken over and the file is never deleted; it names
 * the holder's pid only so that others can say who holds it.
 * waitMs 0 tries once; otherwise waits up to waitMs for the holder to let go.
 * Throws LockBusyError when the lock stays taken.
 */
export async function acquireLock(dir: string, options: { readonly waitMs: number }): Promise<NodeLock> {
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const path = join(dir, LOCK_FILE);
  let attempt = await lockFile(path, options.waitMs);
  if (attempt.state === 'busy' && options.waitMs < UNNAMED_HOLDER_GRACE_MS && (await namedPid(path)) === undefined) {
    attempt = await lockFile(path, UNNAMED_HOLDER_GRACE_MS);
  }
  if (attempt.state === 'busy') throw new LockBusyError(path, await namedPid(path));
  const { handle, release } = attempt.lock;
  try {
    // Overwrite, then cut: a reader never sees the file empty, and parses the first line.
    const text = `${process.pid}\n`;
    await handle.write(text, 0, 'utf8');
    await handle.truncate(Buffer.byteLength(text));
  } catch (error) {
    await release();
    throw error;
  }
  return { path, release };
}

/** Who holds the node's lock right now (it is free when nobody does, whatever the file says). */
export async function readLockHolder(dir: string): Promise<LockHolder> {
  const path = join(dir, LOCK_FILE);
  if (!(await isLocked(path))) return { state: 'free' };
  return { state: 'held', pid: await namedPid(path) };
}

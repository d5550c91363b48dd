// flock(2) on a file, held by this process. Node has no flock, so util-linux's
// `flock` program locks the descriptor this process passes it as fd 3: a flock
// belongs to the open file description, not to the process that asked, so the
// lock stays with us after the program exits, and the kernel drops it when our
// descriptor closes — by release(), or by our death, even by SIGKILL.
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { createEnv } from './env.js';
import { createRunner, ExecError } from './exec.js';
import { KernelError } from './types.js';

export interface HeldFlock {
  /** The locked file, open for reading and writing; it closes on release(). */
  readonly handle: FileHandle;
  /** Drops the lock (closes the descriptor). A second call does nothing. */
  release(): Promise<void>;
}

export type FlockAttempt =
  | { readonly state: 'held'; readonly lock: HeldFlock }
  | { readonly state: 'busy' };

// A FileHandle that becomes garbage is closed by Node, which would drop the lock
// while its holder still counts on it: every held handle stays referenced here.
const held = new Set<FileHandle>();

// flock(1) exits 1 when the lock is taken elsewhere (--nonblock) or the wait ran out.
const BUSY_EXIT = 1;
// flock ends its own wait; the runner's timeout comes this much later and only
// keeps a stuck flock from hanging us forever.
const SPAWN_MARGIN_MS = 10_000;

const NOT_INSTALLED =
  "vipmesh's node lock needs the flock program, which is not installed (Debian and Ubuntu: apt-get install util-linux)";

/** Runs `flock --exclusive|--shared …` on the descriptor; true when it got the lock. */
async function flockDescriptor(path: string, handle: FileHandle, mode: '--exclusive' | '--shared', waitMs: number): Promise<boolean> {
  const runner = createRunner();
  const file = await createEnv(runner).program('flock');
  if (file === undefined) throw new KernelError(NOT_INSTALLED, 'other');
  const wait = waitMs <= 0 ? ['--nonblock'] : ['--wait', (waitMs / 1000).toFixed(3)];
  const result = await runner.run({
    file,
    args: [mode, ...wait, '3'],
    fds: [handle.fd],
    timeoutMs: Math.max(waitMs, 0) + SPAWN_MARGIN_MS,
  });
  if (result.failure === undefined && result.exitCode === 0) return true;
  if (result.failure === undefined && result.exitCode === BUSY_EXIT) return false;
  throw new KernelError(`cannot lock ${path}: ${new ExecError(result).message}`, 'other');
}

/**
 * Takes an exclusive flock on `path` (created if missing, never truncated),
 * trying once when waitMs is 0, else waiting up to waitMs for the holder to let go.
 */
export async function lockFile(path: string, waitMs: number): Promise<FlockAttempt> {
  const handle = await open(path, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o644);
  held.add(handle);
  const release = async (): Promise<void> => {
    if (!held.delete(handle)) return;
    await handle.close();
  };
  try {
    if (await flockDescriptor(path, handle, '--exclusive', waitMs)) return { state: 'held', lock: { handle, release } };
  } catch (error) {
    await release();
    throw error;
  }
  await release();
  return { state: 'busy' };
}

/**
 * Does anyone hold an exclusive flock on `path` right now? Asked by taking a
 * shared lock on a descriptor of our own and dropping it at once, so for those
 * few milliseconds a try-once exclusive lockFile() elsewhere finds it busy.
 */
export async function isLocked(path: string): Promise<boolean> {
  let handle: FileHandle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
  try {
    return !(await flockDescriptor(path, handle, '--shared', 0));
  } finally {
    await handle.close();
  }
}

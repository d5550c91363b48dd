// What the adapters share: the runner and the cheap file-system checks around it
// (does this namespace or program exist?). Kept apart from index.ts so that the
// adapters and the Kernel that composes them import one way only.
import { constants, statfsSync, statSync } from 'node:fs';
import { access } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import type { ExecResult, Runner } from './exec.js';
import { KernelError, type NamespaceId } from './types.js';

/** What the adapters share: the runner and the file-system checks around it. */
export interface KernelEnv {
  readonly runner: Runner;
  /** Absolute path of an installed program, or undefined. */
  program(name: string): Promise<string | undefined>;
  /** Throws KernelError 'no-namespace' unless the namespace exists (null always does). */
  requireNamespace(netns: string | null): Promise<void>;
  /** For messages: the namespace path, or the agent's own. */
  describe(netns: string | null): string;
}

// statfs(2) f_type of nsfs: a bind-mounted namespace file has it; a stale empty
// file left under /run/netns after an unmount does not.
const NSFS_MAGIC = 0x6e736673;

function errorCode(error: unknown): string | undefined {
  return error instanceof Error && 'code' in error && typeof error.code === 'string' ? error.code : undefined;
}

// The checks below call the kernel directly rather than through libuv's thread
// pool: a stat of a namespace file is answered from memory (nsfs, /proc), and a
// pass makes several per namespace; handing each to a pool thread and back cost
// the agent's main thread more than the call itself (0.3-0.6 ms each at K = 200
// in a CPU profile of `vipmesh reconcile`, 10 % of the pass), and that thread is
// the one a pass waits on.
export async function namespaceExists(netns: string | null): Promise<boolean> {
  if (netns === null) return true;
  try {
    return statfsSync(netns).type === NSFS_MAGIC;
  } catch (error) {
    if (['ENOENT', 'ENOTDIR', 'ESRCH'].includes(errorCode(error) ?? '')) return false;
    throw new KernelError(`cannot check namespace ${netns}: ${(error as Error).message}`, 'other');
  }
}

/**
 * Device and inode of the namespace file, which stat resolves through every
 * spelling of its path (`//`, `..`, the /var/run symlink, /proc/PID/ns/net): what
 * `ip netns identify` compares. The agent's own namespace is /proc/self/ns/net.
 */
export async function namespaceId(netns: string | null): Promise<NamespaceId | undefined> {
  try {
    const { dev, ino } = statSync(netns ?? '/proc/self/ns/net', { bigint: true });
    return `${dev}:${ino}`;
  } catch (error) {
    if (['ENOENT', 'ENOTDIR', 'ESRCH'].includes(errorCode(error) ?? '')) return undefined;
    throw new KernelError(`cannot check namespace ${netns}: ${(error as Error).message}`, 'other');
  }
}

/**
 * Did the program run out of time? The exec helper and the pooled shells both
 * say so as their failure, `timed out after N ms`.
 */
export function timedOut(result: ExecResult): boolean {
  return result.failure?.startsWith('timed out') === true;
}

// Services started by hand or by minimal supervisors may lack the sbin directories
// where iptables and ipvsadm live.
const FALLBACK_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/local/bin', '/usr/bin', '/bin'];

async function findProgram(name: string): Promise<string | undefined> {
  const dirs = [...(process.env['PATH'] ?? '').split(delimiter).filter((d) => d.startsWith('/')), ...FALLBACK_DIRS];
  for (const dir of new Set(dirs)) {
    const path = join(dir, name);
    try {
      await access(path, constants.X_OK);
      return path;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

export function createEnv(runner: Runner): KernelEnv {
  // Only hits are cached, so installing a missing tool needs no agent restart.
  const found = new Map<string, string>();
  return {
    runner,
    async program(name) {
      const cached = found.get(name);
      if (cached !== undefined) return cached;
      const path = await findProgram(name);
      if (path !== undefined) found.set(name, path);
      return path;
    },
    async requireNamespace(netns) {
      if (!(await namespaceExists(netns))) throw new KernelError(`namespace ${netns} does not exist`, 'no-namespace');
    },
    describe(netns) {
      return netns === null ? "the agent's own namespace" : `namespace ${netns}`;
    },
  };
}


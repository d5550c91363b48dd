// The real Kernel: iptables, IPVS and sysctl adapters over one Runner. Every
// subprocess goes through the runner; only cheap file-system checks (does this
// namespace or program exist?) happen here directly.
import { constants } from 'node:fs';
import { access, statfs } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import type { Runner } from './exec.js';
import { detectBackend, readIptables, restoreIptables, type Backend } from './iptables.js';
import { applyIpvs, readIpvs } from './ipvs.js';
import { flushDnsConntrack } from './netns-sockets.js';
import { readSysctls, writeSysctls } from './sysctl.js';
import { KernelError, type Kernel } from './types.js';

export { detectBackend, type Backend } from './iptables.js';

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

export async function namespaceExists(netns: string | null): Promise<boolean> {
  if (netns === null) return true;
  try {
    return (await statfs(netns)).type === NSFS_MAGIC;
  } catch (error) {
    if (['ENOENT', 'ENOTDIR', 'ESRCH'].includes(errorCode(error) ?? '')) return false;
    throw new KernelError(`cannot check namespace ${netns}: ${(error as Error).message}`, 'other');
  }
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

function createEnv(runner: Runner): KernelEnv {
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

export function createKernel(runner: Runner, options: { backend?: Backend } = {}): Kernel {
  const env = createEnv(runner);
  let backend: Promise<Backend> | undefined = options.backend === undefined ? undefined : Promise.resolve(options.backend);
  const getBackend = (): Promise<Backend> => {
    // A failed detection is not remembered: the next call tries again.
    backend ??= detectBackend(runner).catch((error: unknown) => {
      backend = undefined;
      throw error;
    });
    return backend;
  };
  return {
    namespaceExists,
    async readIptables(netns, family) {
      return readIptables(env, await getBackend(), netns, family);
    },
    async restoreIptables(netns, family, text) {
      return restoreIptables(env, await getBackend(), netns, family, text);
    },
    readIpvs: (netns, fwmarks) => readIpvs(env, netns, fwmarks),
    applyIpvs: (netns, commands) => applyIpvs(env, netns, commands),
    readSysctls: (netns, names) => readSysctls(env, netns, names),
    writeSysctls: (netns, values) => writeSysctls(env, netns, values),
    forgetDnsFlows: (netns) => flushDnsConntrack(env.runner, netns),
  };
}

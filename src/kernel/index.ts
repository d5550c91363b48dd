// The real Kernel: iptables, IPVS and sysctl adapters over one Runner. Every
// subprocess goes through the runner; only cheap file-system checks (does this
// namespace or program exist, which namespace is it?) happen directly, in env.ts.
import { applyAddresses, readAddresses } from './addresses.js';
import type { Runner } from './exec.js';
import { createEnv, namespaceExists, namespaceId, timedOut, type KernelEnv } from './env.js';
import { detectBackend, readIptables, restoreIptables, type Backend } from './iptables.js';
import { applyIpvs, readIpvs } from './ipvs.js';
import { flushDnsConntrack } from './netns-sockets.js';
import { readSysctls, writeSysctls } from './sysctl.js';
import { KernelError, type Kernel } from './types.js';

export { detectBackend, type Backend } from './iptables.js';
export { namespaceExists, namespaceId, type KernelEnv } from './env.js';

/**
 * Runs one adapter call on an env whose runner notes a command that ran out of
 * time; a failure of that call is then a timeout, whatever the adapter made of
 * it (a program killed mid-write reads as "failed", but the cure differs).
 * A missing namespace still wins: the adapters check for it first.
 */
async function watched<T>(env: KernelEnv, call: (env: KernelEnv) => Promise<T>): Promise<T> {
  let timeout: string | undefined;
  const runner: Runner = {
    stats: env.runner.stats,
    async run(command) {
      const result = await env.runner.run(command);
      if (timedOut(result)) timeout = `\`${result.command}\` ${result.failure}`;
      return result;
    },
  };
  try {
    return await call({ ...env, runner });
  } catch (error) {
    if (timeout === undefined || (error instanceof KernelError && error.kind === 'no-namespace')) throw error;
    const message = error instanceof Error ? error.message : String(error);
    throw new KernelError(message.includes(timeout) ? message : `${message} (${timeout})`, 'timeout');
  }
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
    namespaceId,
    async readIptables(netns, family) {
      const found = await getBackend();
      return watched(env, (e) => readIptables(e, found, netns, family));
    },
    async restoreIptables(netns, family, text) {
      const found = await getBackend();
      return watched(env, (e) => restoreIptables(e, found, netns, family, text));
    },
    readIpvs: (netns, fwmarks) => watched(env, (e) => readIpvs(e, netns, fwmarks)),
    applyIpvs: (netns, ops) => watched(env, (e) => applyIpvs(e, netns, ops)),
    readSysctls: (netns, names) => watched(env, (e) => readSysctls(e, netns, names)),
    writeSysctls: (netns, values) => watched(env, (e) => writeSysctls(e, netns, values)),
    forgetDnsFlows: (netns) => watched(env, (e) => flushDnsConntrack(e.runner, netns)),
    readAddresses: (netns) => watched(env, (e) => readAddresses(e, netns)),
    applyAddresses: (netns, ops) => watched(env, (e) => applyAddresses(e, netns, ops)),
  };
}

// The real Kernel: iptables, IPVS and sysctl adapters over one Runner. Every
// subprocess goes through the runner; only cheap file-system checks (does this
// namespace or program exist?) happen directly, in env.ts.
import type { Runner } from './exec.js';
import { createEnv, namespaceExists } from './env.js';
import { detectBackend, readIptables, restoreIptables, type Backend } from './iptables.js';
import { applyIpvs, readIpvs } from './ipvs.js';
import { flushDnsConntrack } from './netns-sockets.js';
import { readSysctls, writeSysctls } from './sysctl.js';
import type { Kernel } from './types.js';

export { detectBackend, type Backend } from './iptables.js';
export { namespaceExists, type KernelEnv } from './env.js';

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

// src/kernel/index.js with IPVS in memory (see ipvs-in-memory.ts): the same
// exports, but createKernel's IPVS and vs.* sysctls go to one fake kernel per
// process, so what a pass programs is still there for the next pass.
import { createFakeKernel, withFakeIpvs } from '../test/fakes/kernel.js';
import { createKernel as createRealKernel } from '../src/kernel/index.js';
import type { Kernel } from '../src/kernel/types.js';

export * from '../src/kernel/index.js';

const ipvs = createFakeKernel({ namespaces: 'any' });

export function createKernel(...args: Parameters<typeof createRealKernel>): Kernel {
  return withFakeIpvs(createRealKernel(...args), ipvs);
}

// `node --import dist/bench/ipvs-in-memory.js …`: the agent (or any vipmesh
// command) with IPVS and its vs.* sysctls kept in memory, as bench/reconcile.ts
// does in-process. This machine's kernel has no IPVS; without this, every
// namespace that needs IPVS fails its pass with `no_ipvs`, is never recorded as
// applied, and so is read again by every changed-only pass, which a node with
// IPVS would not do. The hook swaps src/kernel/index.js, for every module that
// imports it, for kernel-ipvs-in-memory.js; iptables, other sysctls, namespaces
// and every process the agent runs stay the real ones. Benchmarks only.
import { registerHooks } from 'node:module';

const REAL = new URL('../src/kernel/index.js', import.meta.url).href;
const STAND_IN = new URL('./kernel-ipvs-in-memory.js', import.meta.url).href;

registerHooks({
  resolve(specifier, context, nextResolve) {
    const resolved = nextResolve(specifier, context);
    // The stand-in itself imports the real module.
    return resolved.url === REAL && context.parentURL !== STAND_IN ? { ...resolved, url: STAND_IN } : resolved;
  },
});

// Reading one namespace's vipmesh state through the Kernel interface.
import type { Family } from '../catalog/types.js';
import type { Kernel, ObservedIptables, ObservedIpvs } from '../kernel/types.js';
import type { NamespaceRole } from '../plan/types.js';
import type { ObservedNamespace } from './types.js';

export interface ObserveTarget {
  readonly netns: string | null;
  readonly role: NamespaceRole;
  readonly families: readonly Family[];
  readonly sysctls: readonly string[];
}

export async function observeNamespace(kernel: Kernel, target: ObserveTarget): Promise<ObservedNamespace> {
  const iptables = new Map<Family, ObservedIptables>();
  for (const family of target.families) iptables.set(family, await kernel.readIptables(target.netns, family));
  // vipmesh never puts IPVS services on the node's own namespace.
  const ipvs: ObservedIpvs = target.role === 'host'
    ? { available: true, services: [] }
    : await kernel.readIpvs(target.netns);
  // The vs.* knobs exist only where IPVS does; without it there is nothing to read.
  const names = ipvs.available ? target.sysctls : target.sysctls.filter((name) => !name.startsWith('net.ipv4.vs.'));
  const sysctls = names.length > 0
    ? await kernel.readSysctls(target.netns, names)
    : new Map<string, string | undefined>();
  return { iptables, ipvs, sysctls };
}

const VIP_MARK_RULE = /--comment "([^" ]+\/[^" ]+)" -j MARK --set-xmark (0x[0-9a-f]+)\/0xffffffff$/;

/** VIP label → fwmark of every VIP mark rule already programmed (SPEC: a mark, once programmed, stays). */
export function programmedMarks(observed: ObservedNamespace): Map<string, number> {
  const marks = new Map<string, number>();
  for (const rules of observed.iptables.get(4)?.mangle.chains.values() ?? []) {
    for (const rule of rules) {
      const match = VIP_MARK_RULE.exec(rule);
      if (match) marks.set(match[1]!, Number.parseInt(match[2]!, 16));
    }
  }
  return marks;
}

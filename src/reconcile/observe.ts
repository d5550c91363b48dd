// Reading one namespace's vipmesh state through the Kernel interface.
import type { Family } from '../catalog/types.js';
import type { Kernel, ObservedIptables, ObservedIpvs } from '../kernel/types.js';
import { comment } from '../plan/rules.js';
import { vipKey, type NamespaceRole, type VirtualService } from '../plan/types.js';
import type { ObservedNamespace } from './types.js';

export interface ObserveTarget {
  readonly netns: string | null;
  readonly role: NamespaceRole;
  readonly families: readonly Family[];
  readonly sysctls: readonly string[];
  /** Read the interface addresses too (VIP addresses planned or owned there). */
  readonly addresses: boolean;
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
  if (!target.addresses) return { iptables, ipvs, sysctls };
  return { iptables, ipvs, sysctls, addresses: await kernel.readAddresses(target.netns) };
}

// The tail of a mark rule as iptables-save prints it.
const SET_MARK = / -j MARK --set-xmark (0x[0-9a-f]+)\/0xffffffff$/;

/**
 * vipKey() → fwmark of each planned VIP whose mark rule is already programmed
 * (SPEC §2: a mark, once programmed, stays). A rule is the VIP's when it carries
 * exactly the comment the plan gives that VIP; nothing is read out of the comment.
 */
export function programmedMarks(observed: ObservedNamespace, planned: readonly VirtualService[]): Map<string, number> {
  const byComment = new Map<string, string>();
  for (const vs of planned) {
    const balances = vs.balances;
    if (balances.kind === 'vip') byComment.set(comment(vs.label), vipKey(balances));
  }
  const marks = new Map<string, number>();
  if (byComment.size === 0) return marks;
  for (const rules of observed.iptables.get(4)?.mangle.chains.values() ?? []) {
    for (const rule of rules) {
      const mark = SET_MARK.exec(rule);
      if (mark === null) continue;
      const head = rule.slice(0, mark.index);
      const at = head.indexOf(COMMENT);
      const key = at < 0 ? undefined : byComment.get(head.slice(at));
      if (key !== undefined) marks.set(key, Number.parseInt(mark[1]!, 16));
    }
  }
  return marks;
}

/** Where a comment match starts: comment() without its (empty) quoted text. */
const COMMENT = comment('').slice(0, -'""'.length);

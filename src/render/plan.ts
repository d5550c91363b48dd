// The whole node plan as `vipmesh plan` prints it: per namespace a `# netns` line,
// its iptables-restore text (IPv6 after a `# ip6tables` line), its IPVS state in
// ipvsadm-save syntax and its sysctls as `# sysctl` lines.
import type { NamespacePlan, NodePlan } from '../plan/types.js';
import { renderRestore } from './iptables.js';
import { renderIpvs } from './ipvs.js';

export function renderNamespaceText(ns: NamespacePlan): string {
  let text = `# netns ${ns.key}\n`;
  text += renderRestore(ns.chains, 4);
  const v6 = renderRestore(ns.chains, 6);
  if (v6 !== '') text += `# ip6tables\n${v6}`;
  text += renderIpvs(ns.ipvs);
  for (const s of ns.sysctls) text += `# sysctl ${s.name}=${s.value}\n`;
  return text;
}

export function renderPlanText(plan: NodePlan): string {
  return plan.namespaces.map(renderNamespaceText).join('\n');
}

export function renderPlanJson(plan: NodePlan): string {
  return JSON.stringify(plan, null, 2) + '\n';
}

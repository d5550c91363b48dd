// The node's ingress sandbox: every published ingress port is marked on arrival
// and spread by IPVS over the service's tasks on all nodes (at the target port),
// with the source rewritten to the sandbox so replies come back through it.
import { type PlanContext, ipvsSysctls, markAndSnatChains, realServers, sortSysctls, virtualService } from './context.js';
import { assignVipMarks, compareText, portMark } from './marks.js';
import { comment, host, matchMark, protoPort, setMark } from './rules.js';
import { vipKey, type NamespacePlan, type VirtualService } from './types.js';

export function planSandboxNamespace(ctx: PlanContext): NamespacePlan | undefined {
  const sandbox = ctx.catalog.nodes[ctx.node]?.ingressSandbox;
  const ingress = Object.values(ctx.catalog.networks).find((n) => n.ingress);
  if (!sandbox || !ingress) return undefined;

  const marks: string[] = [];
  const snat: string[] = [];
  const ipvs: VirtualService[] = [];
  const snatTo = `-j SNAT --to-source ${sandbox.address}`;
  const services = ctx.services.filter((s) => s.ports.some((p) => p.mode === 'ingress'));

  for (const service of services) {
    const ports = service.ports
      .filter((p) => p.mode === 'ingress')
      .sort((a, b) => a.published - b.published || compareText(a.protocol, b.protocol));
    for (const port of ports) {
      const mark = portMark(port.protocol, port.published);
      const label = `${service.name} ${port.published}/${port.protocol}`;
      marks.push(`-d ${host(sandbox.address, 4)} ${protoPort(port.protocol, 'dport', port.published)} ${comment(label)} ${setMark(mark)}`);
      snat.push(`${matchMark(mark)} ${comment(label)} ${snatTo}`);
      const balances = { kind: 'port', service: service.name, protocol: port.protocol, port: port.published } as const;
      ipvs.push(virtualService(service, balances, mark, label, realServers(ctx, service.name, ingress.name, port.target)));
    }
  }

  // An ingress VIP, where the catalog gives one, is balanced here too (all ports).
  const withVip = services.filter((s) => s.vips[ingress.name] !== undefined);
  const vipMarks = assignVipMarks(withVip.map((s) => vipKey({ service: s.name, network: ingress.name })), ctx.facts.marks.get(sandbox.netns));
  for (const service of withVip) {
    const balances = { kind: 'vip', service: service.name, network: ingress.name } as const;
    const label = vipKey(balances);
    const mark = vipMarks.get(vipKey(balances))!;
    marks.push(`-d ${host(service.vips[ingress.name]!, 4)} ${comment(label)} ${setMark(mark)}`);
    snat.push(`${matchMark(mark)} ${comment(label)} ${snatTo}`);
    ipvs.push(virtualService(service, balances, mark, label, realServers(ctx, service.name, ingress.name, 0)));
  }

  if (ipvs.length === 0) return undefined;
  return {
    key: sandbox.netns,
    netns: sandbox.netns,
    role: 'ingress-sandbox',
    chains: markAndSnatChains('PREROUTING', marks, snat),
    ipvs,
    sysctls: sortSysctls([{ name: 'net.ipv4.ip_forward', value: '1' }, ...ipvsSysctls(ctx.facts.kernelRelease)]),
  };
}

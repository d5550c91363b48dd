// A network's load-balancer namespace on this node (SPEC §2, load-balancer mode,
// what Swarm ≥ 18.06 programs): each VIP of the network is an address of its
// own there, so the tasks reach it by ARP; arriving traffic to it is marked in
// INPUT, spread by one IPVS service per VIP over the service's tasks on every
// node, and its source rewritten to the load balancer, so replies come back
// through it. IPVS state here grows with services, not with local tasks.
import type { LoadBalancer } from '../catalog/types.js';
import { sortByAddress } from './address.js';
import { type PlanContext, ipvsSysctls, markAndSnatChains, realServers, sortSysctls, virtualService } from './context.js';
import { assignVipMarks, compareText } from './marks.js';
import { comment, host, matchMark, setMark } from './rules.js';
import { vipKey, type NamespacePlan, type VipAddress, type VirtualService } from './types.js';

/** The load balancers of this node with something to balance, by network name. */
export function planLoadBalancerNamespaces(ctx: PlanContext): NamespacePlan[] {
  const balancers = ctx.catalog.nodes[ctx.node]?.loadBalancers;
  const out: NamespacePlan[] = [];
  for (const network of [...ctx.balancedNetworks].sort(compareText)) {
    const plan = planLoadBalancer(ctx, network, balancers![network]!);
    if (plan !== undefined) out.push(plan);
  }
  return out;
}

export function planLoadBalancer(ctx: PlanContext, network: string, balancer: LoadBalancer): NamespacePlan | undefined {
  const services = (ctx.vipServices.get(network) ?? []).map((index) => ctx.services[index]!);
  if (services.length === 0) return undefined;
  const keys = services.map((service) => vipKey({ service: service.name, network }));
  const marks = assignVipMarks(keys, ctx.facts.marks.get(balancer.netns));
  const markRules: string[] = [];
  const snatRules: string[] = [];
  const ipvs: VirtualService[] = [];
  const addresses: VipAddress[] = [];
  for (const service of services) {
    const vip = service.vips[network]!;
    const balances = { kind: 'vip', service: service.name, network } as const;
    const label = vipKey(balances);
    const mark = marks.get(label)!;
    // INPUT, not PREROUTING: the mark must be on the packet when IPVS takes it
    // in LOCAL_IN, and only traffic to the VIP (a local address here) gets there.
    markRules.push(`-d ${host(vip, 4)} ${comment(label)} ${setMark(mark)}`);
    // On the fwmark, not `-m ipvs --ipvs` as Swarm writes it: the same traffic,
    // and the match needs no IPVS module, so the table applies without IPVS.
    snatRules.push(`${matchMark(mark)} ${comment(label)} -j SNAT --to-source ${balancer.address}`);
    ipvs.push(virtualService(service, balances, mark, label, realServers(ctx, service.name, network, 0)));
    addresses.push({ address: vip, prefixLength: 32, anchor: balancer.address, service: service.name, network });
  }
  return {
    key: balancer.netns,
    netns: balancer.netns,
    role: 'load-balancer',
    network,
    chains: markAndSnatChains('INPUT', markRules, snatRules),
    ipvs,
    // ip_forward: a reply, its SNAT undone on arrival, is addressed to the
    // client, not to this namespace, and is forwarded back out (IPVS restores the
    // VIP as its source in FORWARD).
    sysctls: sortSysctls([{ name: 'net.ipv4.ip_forward', value: '1' }, ...ipvsSysctls(ctx.facts.kernelRelease)]),
    addresses: sortByAddress(addresses),
  };
}

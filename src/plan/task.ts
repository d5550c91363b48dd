// A running local task's namespace: the 127.0.0.11 redirect and, for every vip-mode
// service it shares a non-ingress network with, a VIP balanced by IPVS — unless
// that network has a load balancer on this node, which balances its VIPs for
// every task (load-balancer.ts). A task with an ingress address also gets the
// ingress filter (ingress-filter.ts), in either mode.
import type { Service, Task } from '../catalog/types.js';
import { type PlanContext, ipvsSysctls, markAndSnatChains, realServers, sortSysctls, virtualService } from './context.js';
import { ingressFilterChains } from './ingress-filter.js';
import { assignVipMarks } from './marks.js';
import {
  RESOLVER_ADDRESS, TCP_PORT_TOKEN, UDP_PORT_TOKEN, comment, endpoint, host, matchMark, protoPort, setMark,
} from './rules.js';
import { vipKey, type Chain, type NamespacePlan, type VirtualService } from './types.js';

interface Vip {
  /** vipKey(): what its fwmark is kept under, and (the same text) its label. */
  readonly key: string;
  readonly service: Service;
  readonly network: string;
  readonly address: string;
  readonly taskAddress: string;
}

export function planTaskNamespace(ctx: PlanContext, task: Task): NamespacePlan {
  const ports = ctx.facts.resolverPorts.get(task.netns) ?? null;
  const chains: Chain[] = dnsChains(ports?.udp ?? UDP_PORT_TOKEN, ports?.tcp ?? TCP_PORT_TOKEN);

  const vips = visibleVips(ctx, task);
  const marks = assignVipMarks(vips.map((v) => v.key), ctx.facts.marks.get(task.netns));
  const markRules: string[] = [];
  const snatRules: string[] = [];
  const ipvs: VirtualService[] = [];
  for (const vip of vips) {
    const mark = marks.get(vip.key)!;
    const service = vip.service;
    const label = vip.key;
    markRules.push(`-d ${host(vip.address, 4)} ${comment(label)} ${setMark(mark)}`);
    // SNAT on the fwmark rather than `-m ipvs`: the match needs no IPVS module, so
    // this table still applies on a kernel without IPVS.
    snatRules.push(`${matchMark(mark)} ${comment(label)} -j SNAT --to-source ${vip.taskAddress}`);
    const balances = { kind: 'vip', service: service.name, network: vip.network } as const;
    ipvs.push(virtualService(service, balances, mark, label, realServers(ctx, service.name, vip.network, 0)));
  }
  if (vips.length > 0) chains.push(...markAndSnatChains('OUTPUT', markRules, snatRules));
  chains.push(...ingressFilterChains(ctx, task));
  return {
    key: task.netns,
    netns: task.netns,
    role: 'task',
    task: task.name,
    chains,
    ipvs,
    sysctls: vips.length > 0 ? sortSysctls(ipvsSysctls(ctx.facts.kernelRelease)) : [],
    resolverPorts: ports,
  };
}

function dnsChains(udp: number | string, tcp: number | string): Chain[] {
  const to = (port: number | string) => `-j DNAT --to-destination ${endpoint(RESOLVER_ADDRESS, port, 4)}`;
  const src = host(RESOLVER_ADDRESS, 4);
  return [
    {
      family: 4, table: 'nat', name: 'VIPMESH-DNS-OUTPUT', group: 'dns',
      jumps: [{ from: 'OUTPUT', match: `-d ${src}` }],
      rules: [
        `-d ${src} ${protoPort('udp', 'dport', 53)} ${to(udp)}`,
        `-d ${src} ${protoPort('tcp', 'dport', 53)} ${to(tcp)}`,
      ],
    },
    {
      family: 4, table: 'nat', name: 'VIPMESH-DNS-POSTROUTING', group: 'dns',
      jumps: [{ from: 'POSTROUTING', match: `-s ${src}` }],
      rules: [
        `-s ${src} ${protoPort('udp', 'sport', udp)} -j SNAT --to-source :53`,
        `-s ${src} ${protoPort('tcp', 'sport', tcp)} -j SNAT --to-source :53`,
      ],
    },
  ];
}

/** VIPs of vip-mode services on the task's non-ingress networks, by service then network. */
function visibleVips(ctx: PlanContext, task: Task): Vip[] {
  const vips: Vip[] = [];
  for (const index of candidates(ctx, task)) {
    const service = ctx.services[index]!;
    if (service.endpointMode !== 'vip') continue;
    for (const network of service.networks) {
      if (ctx.catalog.networks[network]?.ingress || ctx.balancedNetworks.has(network)) continue;
      const address = service.vips[network];
      const taskAddress = task.addresses[network];
      if (address === undefined || taskAddress === undefined) continue;
      vips.push({ key: vipKey({ service: service.name, network }), service, network, address, taskAddress });
    }
  }
  return vips;
}

/** Indexes of the services that may have a VIP on one of the task's networks, ascending. */
function candidates(ctx: PlanContext, task: Task): readonly number[] {
  const lists: (readonly number[])[] = [];
  for (const network in task.addresses) {
    const list = ctx.vipServices.get(network);
    if (list !== undefined) lists.push(list);
  }
  if (lists.length <= 1) return lists[0] ?? [];
  return [...new Set(lists.flat())].sort((a, b) => a - b);
}

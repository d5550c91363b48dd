// The node's own namespace: published ports. Ingress-mode ports go to the node's
// ingress sandbox; host-mode ports go straight to the local task, keeping the
// client's address.
import type { Family, Port, Protocol, Task } from '../catalog/types.js';
import { type PlanContext, sortSysctls } from './context.js';
import { compareText } from './marks.js';
import { comment, dnatFromPort, endpoint, host, protoPort } from './rules.js';
import type { Chain, NamespacePlan, Sysctl } from './types.js';
import { HOST_KEY } from './types.js';

interface Published {
  readonly service: string;
  readonly protocol: Protocol;
  readonly published: number;
  readonly family: Family;
  readonly to: string;
  /** Host mode: the task's address and port, for the hairpin masquerade. */
  readonly task?: { readonly address: string; readonly port: number };
}

const LOCAL_DESTINATION = '-m addrtype --dst-type LOCAL';

export function planHostNamespace(ctx: PlanContext): NamespacePlan {
  const node = ctx.catalog.nodes[ctx.node]!;
  const published = publishedPorts(ctx);
  const chains: Chain[] = [];
  const sysctls: Sysctl[] = [];
  for (const family of [4, 6] as const) {
    const ports = published.filter((p) => p.family === family);
    if (ports.length === 0) continue;
    chains.push(...familyChains(family, ports));
    if (family === 4) {
      sysctls.push(
        { name: 'net.ipv4.ip_forward', value: '1' },
        // Lets 127.0.0.1:<published> be DNAT-ed off the loopback; VIPMESH-INPUT
        // drops the martians this would otherwise let in.
        { name: 'net.ipv4.conf.all.route_localnet', value: '1' },
      );
    } else {
      sysctls.push({ name: 'net.ipv6.conf.all.forwarding', value: '1' });
    }
  }
  return {
    key: node.netns ?? HOST_KEY,
    netns: node.netns ?? null,
    role: 'host',
    chains,
    ipvs: [],
    sysctls: sortSysctls(sysctls),
  };
}

function familyChains(family: Family, ports: readonly Published[]): Chain[] {
  const dnat: string[] = [];
  const masquerade: string[] = [];
  const forward: string[] = [];
  for (const p of ports) {
    const label = comment(`${p.service} ${p.published}/${p.protocol}`);
    dnat.push(`${protoPort(p.protocol, 'dport', p.published)} ${label} -j DNAT --to-destination ${p.to}`);
    if (family === 4) {
      // A connection from 127.0.0.1 keeps that source after DNAT; nothing off-node can answer it.
      masquerade.push(`-s 127.0.0.0/8 ${dnatFromPort(p.protocol, p.published)} ${label} -j MASQUERADE`);
    }
    if (p.task) {
      // Hairpin: a task calling its own published port would otherwise get a
      // packet from its own address and drop it as a martian.
      const self = host(p.task.address, family);
      masquerade.push(
        `-s ${self} -d ${self} ${protoPort(p.protocol, 'dport', p.task.port)} -m conntrack --ctstate DNAT ${label} -j MASQUERADE`,
      );
    }
    forward.push(`${dnatFromPort(p.protocol, p.published)} ${label} -j ACCEPT`);
  }
  const chains: Chain[] = [
    {
      family, table: 'nat', name: 'VIPMESH-PORTS', group: 'datapath',
      jumps: [{ from: 'PREROUTING', match: LOCAL_DESTINATION }, { from: 'OUTPUT', match: LOCAL_DESTINATION }],
      rules: dnat,
    },
    { family, table: 'nat', name: 'VIPMESH-POSTROUTING', group: 'datapath', jumps: [{ from: 'POSTROUTING', match: '' }], rules: masquerade },
    // Jumped to first from FORWARD, so a FORWARD policy of DROP still serves published ports.
    { family, table: 'filter', name: 'VIPMESH-FORWARD', group: 'datapath', jumps: [{ from: 'FORWARD', match: '' }], rules: forward },
  ];
  if (family === 4) {
    chains.push({
      family, table: 'filter', name: 'VIPMESH-INPUT', group: 'datapath', jumps: [{ from: 'INPUT', match: '' }],
      rules: [`! -s 127.0.0.0/8 -d 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT ${comment('route_localnet guard')} -j DROP`],
    });
  }
  return chains.filter((c) => c.rules.length > 0);
}

function publishedPorts(ctx: PlanContext): Published[] {
  const sandbox = ctx.catalog.nodes[ctx.node]?.ingressSandbox;
  const result: Published[] = [];
  for (const service of ctx.services) {
    for (const port of service.ports) {
      if (port.mode === 'ingress') {
        if (!sandbox) continue; // validation requires a sandbox wherever ingress ports exist
        result.push({
          service: service.name, protocol: port.protocol, published: port.published, family: 4,
          to: endpoint(sandbox.address, port.published, 4),
        });
        continue;
      }
      for (const task of ctx.servingTasks.get(service.name) ?? []) {
        if (task.node !== ctx.node) continue;
        const target = hostModeTarget(ctx, task, port);
        if (!target) continue;
        result.push({
          service: service.name, protocol: port.protocol, published: port.published, family: target.family,
          to: endpoint(target.address, port.target, target.family),
          task: { address: target.address, port: port.target },
        });
      }
    }
  }
  return result.sort((a, b) => a.published - b.published || compareText(a.protocol, b.protocol));
}

/** `ports[].network`, else the task's first non-ingress network in name order. */
function hostModeTarget(ctx: PlanContext, task: Task, port: Port): { address: string; family: Family } | undefined {
  const networks = port.network !== undefined
    ? [port.network]
    : Object.keys(task.addresses).filter((n) => !ctx.catalog.networks[n]?.ingress).sort(compareText);
  const network = networks[0];
  const address = network === undefined ? undefined : task.addresses[network];
  const family = network === undefined ? undefined : ctx.catalog.networks[network]?.family;
  return address === undefined || family === undefined ? undefined : { address, family };
}

// The ingress filter of a task (SPEC §2, as Swarm programs it in each task): on
// the task's ingress address only its service's published target ports, and the
// replies from them, pass; any other tcp, udp or sctp to or from that address is
// dropped, so the routing mesh exposes nothing else the task listens on.
//
// Which ports: only ingress-mode ones. A host-mode port goes straight to the
// task's address on a non-ingress network (validation refuses the ingress network
// there), so it never reaches the ingress address. A task with an ingress address
// and no ingress-mode port (a standalone container, a service publishing nothing
// through the mesh) accepts nothing there.
//
// Loopback is left alone (`! -i lo`, `! -o lo`): traffic from the task to its
// own ingress address is not the mesh exposing it, and the agent's health probe
// of a task attached to the ingress network only connects exactly so, from a
// source port no reply rule would let out.
import type { Protocol, Task } from '../catalog/types.js';
import type { PlanContext } from './context.js';
import { compareText } from './marks.js';
import { comment, host, protoPort } from './rules.js';
import type { Chain } from './types.js';

export const INGRESS_INPUT = 'VIPMESH-INGRESS-INPUT';
export const INGRESS_OUTPUT = 'VIPMESH-INGRESS-OUTPUT';

/** Every protocol a published port can have: what is dropped past the accepted ports. */
const DROPPED: readonly Protocol[] = ['tcp', 'udp', 'sctp'];

interface Accepted {
  readonly protocol: Protocol;
  readonly target: number;
  readonly label: string;
}

/** The two filter chains of a task with an ingress address; none for one without. */
export function ingressFilterChains(ctx: PlanContext, task: Task): Chain[] {
  const address = ctx.ingressNetwork === undefined ? undefined : task.addresses[ctx.ingressNetwork];
  if (address === undefined) return [];
  const self = host(address, 4); // the ingress network is IPv4 (validation)
  const accepted = acceptedPorts(ctx, task);
  const drops = DROPPED.map((protocol) => `-p ${protocol} -j DROP`);
  return [
    {
      family: 4, table: 'filter', name: INGRESS_INPUT, group: 'datapath',
      jumps: [{ from: 'INPUT', match: `-d ${self} ! -i lo` }],
      rules: [
        ...accepted.map((p) => `${protoPort(p.protocol, 'dport', p.target)} -m conntrack --ctstate NEW,ESTABLISHED ${comment(p.label)} -j ACCEPT`),
        ...drops,
      ],
    },
    {
      family: 4, table: 'filter', name: INGRESS_OUTPUT, group: 'datapath',
      jumps: [{ from: 'OUTPUT', match: `-s ${self} ! -o lo` }],
      rules: [
        ...accepted.map((p) => `${protoPort(p.protocol, 'sport', p.target)} -m conntrack --ctstate RELATED,ESTABLISHED ${comment(p.label)} -j ACCEPT`),
        ...drops,
      ],
    },
  ];
}

/** The target ports of the task's service's ingress-mode ports, each (protocol, port) once. */
function acceptedPorts(ctx: PlanContext, task: Task): Accepted[] {
  const service = task.service === undefined ? undefined : ctx.catalog.services[task.service];
  const byKey = new Map<string, Accepted>();
  for (const port of service?.ports ?? []) {
    if (port.mode !== 'ingress') continue;
    const key = `${port.target}/${port.protocol}`;
    // Two published ports may share a target; one rule serves both.
    if (!byKey.has(key)) byKey.set(key, { protocol: port.protocol, target: port.target, label: `${service!.name} ${key}` });
  }
  return [...byKey.values()].sort((a, b) => a.target - b.target || compareText(a.protocol, b.protocol));
}

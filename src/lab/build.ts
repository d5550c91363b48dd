// Carries out a LabTopology with the plumbing: namespaces (each on the journal
// before it is made), bridges, veths, addresses, routes, and the ebtables rules
// that stand in for an overlay's per-node ARP answers.
import { type Plumbing, inNs } from './plumbing.js';
import type { LabTopology } from './topology.js';

export async function buildTopology(plumbing: Plumbing, topology: LabTopology): Promise<void> {
  for (const ns of topology.namespaces) {
    if (ns.role.kind === 'segment') await plumbing.segment(ns.name);
    else await plumbing.ns(ns.name);
  }
  /** segment → namespace → its bridge port there. */
  const ports = new Map<string, Map<string, string>>();
  for (const plug of topology.plugs) {
    const port = await plumbing.plug(plug.ns, plug.segment, plug.ifname, plug.cidr);
    if (!ports.has(plug.segment)) ports.set(plug.segment, new Map());
    ports.get(plug.segment)!.set(plug.ns, port);
  }
  for (const w of topology.wires) await plumbing.wire(w.a, w.aIf, w.aCidr, w.b, w.bIf, w.bCidr);
  for (const r of topology.routes) await plumbing.route(r.ns, ...r.args);
  for (const guard of topology.arpGuards) {
    const from = ports.get(guard.segment)?.get(guard.from);
    const to = ports.get(guard.segment)?.get(guard.to);
    if (from === undefined || to === undefined) throw new Error(`no bridge port for ${guard.from} or ${guard.to} in ${guard.segment}`);
    await inNs(guard.segment, 'ebtables', ['-A', 'FORWARD', '-i', from, '-o', to, '-p', 'ARP', '--arp-opcode', 'Request',
      '--arp-ip-dst', '!', guard.allow, '-j', 'DROP']);
  }
}

import { addressProblem } from './check-addresses.js';
import { meshPorts, presence, type Draft } from './draft.js';
import { problem } from './problems.js';
import type { CatalogProblem, Service, Task } from './types.js';

/** What a task of `service` must and may be attached to. */
function serviceAddresses(draft: Draft, base: string, task: Task, service: Service, meshed: boolean): CatalogProblem[] {
  const out: CatalogProblem[] = [];
  const ingress = draft.ingress?.name;
  for (const network of Object.keys(task.addresses)) {
    if (network === ingress || service.networks.includes(network) || !draft.networks.entries.has(network)) continue;
    const own = service.networks.join(', ');
    out.push(problem(`${base}.addresses.${network}`, `${network} is not one of service ${service.name}'s networks (${own})`));
  }
  for (const network of service.networks) {
    if (network === ingress || task.addresses[network] !== undefined || !draft.networks.entries.has(network)) continue;
    out.push(problem(`${base}.addresses`, `has no address on ${network}, a network of service ${service.name}`));
  }
  if (meshed && ingress !== undefined && task.addresses[ingress] === undefined) {
    out.push(problem(`${base}.addresses`,
      `has no address on the ingress network ${ingress}, which service ${service.name}'s ingress-mode ports need`));
  }
  return out;
}

export function checkTasks(draft: Draft): CatalogProblem[] {
  const out: CatalogProblem[] = [];
  const meshed = new Map<string, boolean>();
  for (const [name, { service }] of draft.services.entries) meshed.set(name, meshPorts(service).length > 0);
  for (const [name, task] of draft.tasks.entries) {
    const base = `tasks.${name}`;
    if (presence(draft.nodes, task.node) === 'missing') out.push(problem(`${base}.node`, `unknown node "${task.node}"`));
    if (task.service !== undefined && presence(draft.services, task.service) === 'missing') {
      out.push(problem(`${base}.service`, `unknown service "${task.service}"`));
    }
    for (const [network, address] of Object.entries(task.addresses)) {
      const bad = addressProblem(draft, network, address, `${base}.addresses.${network}`);
      if (bad !== undefined) out.push(bad);
    }
    const entry = task.service === undefined ? undefined : draft.services.entries.get(task.service);
    if (entry !== undefined) out.push(...serviceAddresses(draft, base, task, entry.service, meshed.get(entry.service.name) === true));
  }
  out.push(...sharedNamespaces(draft));
  return out;
}

/**
 * Two running tasks of one node in one namespace would each be planned into it,
 * and each plan would undo the other's. Stopped tasks keep their old namespace
 * path in Swarm's history, so only running ones count.
 */
function sharedNamespaces(draft: Draft): CatalogProblem[] {
  const out: CatalogProblem[] = [];
  const first = new Map<string, string>();
  // Entries are kept in name order (draft.ts), so the first in name order owns the namespace.
  for (const [name, task] of draft.tasks.entries) {
    if (task.state !== 'running') continue;
    const key = `${task.node}\u0000${task.netns}`;
    const owner = first.get(key);
    if (owner === undefined) first.set(key, name);
    else out.push(problem(`tasks.${name}.netns`, `${task.netns} is already the namespace of running task ${owner} on node ${task.node}`));
  }
  return out;
}

import { addressProblem, plainlyFits } from './check-addresses.js';
import { meshPorts, presence, type Draft } from './draft.js';
import { joinPath, problem, quoted, shown, shownList } from './problems.js';
import type { CatalogProblem, Service, Task } from './types.js';

/** What a task of `service` must and may be attached to (problems go to `out`). */
function serviceAddresses(draft: Draft, base: string, task: Task, service: Service, meshed: boolean, out: CatalogProblem[]): void {
  const ingress = draft.ingress?.name;
  for (const network in task.addresses) {
    if (network === ingress || service.networks.includes(network) || !draft.networks.entries.has(network)) continue;
    out.push(problem(joinPath(joinPath(base, 'addresses'), network),
      `${shown(network)} is not one of service ${shown(service.name)}'s networks (${shownList(service.networks)})`));
  }
  for (const network of service.networks) {
    if (network === ingress || task.addresses[network] !== undefined || !draft.networks.entries.has(network)) continue;
    out.push(problem(`${base}.addresses`, `has no address on ${shown(network)}, a network of service ${shown(service.name)}`));
  }
  if (meshed && ingress !== undefined && task.addresses[ingress] === undefined) {
    out.push(problem(`${base}.addresses`,
      `has no address on the ingress network ${shown(ingress)}, which service ${shown(service.name)}'s ingress-mode ports need`));
  }
}

export function checkTasks(draft: Draft): CatalogProblem[] {
  const out: CatalogProblem[] = [];
  const meshed = new Map<string, boolean>();
  for (const [name, { service }] of draft.services.entries) meshed.set(name, meshPorts(service).length > 0);
  for (const [name, task] of draft.tasks.entries) {
    const base = joinPath('tasks', name);
    if (presence(draft.nodes, task.node) === 'missing') out.push(problem(`${base}.node`, `unknown node ${quoted(task.node)}`));
    if (task.service !== undefined && presence(draft.services, task.service) === 'missing') {
      out.push(problem(`${base}.service`, `unknown service ${quoted(task.service)}`));
    }
    for (const network in task.addresses) {
      const address = task.addresses[network] as string;
      const known = draft.networks.entries.get(network);
      if (known !== undefined && plainlyFits(known, address)) continue;
      const bad = addressProblem(draft, network, address, joinPath(joinPath(base, 'addresses'), network));
      if (bad !== undefined) out.push(bad);
    }
    const entry = task.service === undefined ? undefined : draft.services.entries.get(task.service);
    if (entry !== undefined) serviceAddresses(draft, base, task, entry.service, meshed.get(entry.service.name) === true, out);
  }
  return out;
}


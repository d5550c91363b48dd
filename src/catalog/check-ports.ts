// Published ports: a node can forward one (protocol, port) to one place only.
// Ingress-mode ports are claimed on every node (the routing mesh); host-mode
// ports on each node where the service has a running task.
import { meshPorts, type Draft } from './draft.js';
import { compareText, joinPath, problem, shown, shownList } from './problems.js';
import type { CatalogProblem, Port, PublishMode, Task } from './types.js';

interface Claim {
  /** Path of the port, e.g. services.web.ports[0]. */
  readonly path: string;
  readonly key: string;
  readonly mode: PublishMode;
}

const keyOf = (port: Port): string => `${port.published}/${port.protocol}`;
const byPath = (a: { path: string }, b: { path: string }): number => compareText(a.path, b.path);

function meshClaims(draft: Draft): Claim[] {
  return [...draft.services.entries].flatMap(([name, { service }]) =>
    meshPorts(service).map(({ index, port }) => ({ path: `${joinPath('services', name)}.ports[${index}]`, key: keyOf(port), mode: 'ingress' as const })));
}

/** Mesh ports clash on every node alike, so each clash is reported once, without a node. */
function meshClashes(claims: readonly Claim[]): CatalogProblem[] {
  const first = new Map<string, Claim>();
  const out: CatalogProblem[] = [];
  for (const claim of [...claims].sort(byPath)) {
    const owner = first.get(claim.key);
    if (owner === undefined) first.set(claim.key, claim);
    else out.push(problem(`${claim.path}.published`, `${claim.key} is already published in ingress mode by ${owner.path}`));
  }
  return out;
}

function runningTasksByNode(draft: Draft, service: string): Map<string, Task[]> {
  const byNode = new Map<string, Task[]>();
  for (const task of draft.tasks.entries.values()) {
    if (task.service !== service || task.state !== 'running' || !draft.nodes.entries.has(task.node)) continue;
    byNode.set(task.node, [...(byNode.get(task.node) ?? []), task]);
  }
  return byNode;
}

export function checkPorts(draft: Draft): CatalogProblem[] {
  const mesh = meshClaims(draft);
  const out = meshClashes(mesh);
  const perNode = new Map<string, Claim[]>([...draft.nodes.entries.keys()].map((n) => [n, [...mesh]]));
  for (const [name, { service }] of draft.services.entries) {
    const hostPorts = service.ports.flatMap((port, i) => (port.mode === 'host' ? [{ port, i }] : []));
    if (hostPorts.length === 0) continue;
    const published = hostPorts.map(({ port }) => keyOf(port)).join(', ');
    for (const [node, tasks] of runningTasksByNode(draft, name)) {
      const [first, ...others] = tasks;
      for (const other of others) {
        out.push(problem(`${joinPath('tasks', other.name)}.node`, `tasks ${shown(first?.name ?? '')} and ${shown(other.name)} `
          + `of service ${shown(name)} both run on node ${shown(node)} and publish ${published} in host mode`));
      }
      const base = joinPath('services', name);
      perNode.get(node)?.push(...hostPorts.map(({ port, i }) => ({ path: `${base}.ports[${i}]`, key: keyOf(port), mode: 'host' as const })));
    }
  }
  out.push(...nodeClashes(perNode));
  return out;
}

/** A clash between the same two ports on several nodes is one problem naming every node. */
function nodeClashes(perNode: ReadonlyMap<string, Claim[]>): CatalogProblem[] {
  const clashes = new Map<string, { later: Claim; first: Claim; nodes: string[] }>();
  for (const [node, claims] of perNode) {
    const first = new Map<string, Claim>();
    for (const claim of [...claims].sort(byPath)) {
      const owner = first.get(claim.key);
      if (owner === undefined) first.set(claim.key, claim);
      else if (owner.mode === 'host' || claim.mode === 'host') {
        const id = `${owner.path} ${claim.path}`;
        const clash = clashes.get(id) ?? { later: claim, first: owner, nodes: [] };
        clash.nodes.push(node);
        clashes.set(id, clash);
      }
    }
  }
  return [...clashes.values()].map(({ later, first, nodes }) => problem(`${later.path}.published`,
    `${later.key} on ${nodes.length === 1 ? 'node' : 'nodes'} ${shownList(nodes.sort(compareText))} `
    + `is also published by ${first.path} (${first.mode} mode)`));
}

// Every namespace vipmesh programs on a node belongs to one role there: the
// node's host (when the node names one with `netns`), its ingress sandbox, or a
// running task — and, with SPEC §2's load-balancer mode, one load balancer per
// network. Two roles in one namespace would each be planned into it: reconcile
// would program one and silently undo the other, on every pass. Paths compare
// in the one spelling netns.ts gives them; a problem quotes both as written.
import type { Draft } from './draft.js';
import { isRecord } from './fields.js';
import { compareText, joinPath, problem, shown } from './problems.js';
import type { CatalogProblem, Node } from './types.js';

/** A role of the node itself that takes a namespace of its own. */
interface NodeRole {
  readonly netns: string;
  /** Who it is, for people: "the ingress sandbox". */
  readonly what: string;
  /** Where the catalog gives its namespace: fields under nodes.NAME. */
  readonly fields: readonly string[];
  readonly node: string;
}

/** The first claimant of a namespace: a node's role, or a running task by name (spelled out only for a problem). */
type Owner = NodeRole | string;

/** A node's own roles, in the order they claim their namespaces (before any task). */
function nodeRoles(name: string, node: Node): NodeRole[] {
  const roles: NodeRole[] = [];
  if (node.netns !== undefined) roles.push({ netns: node.netns, what: 'the node itself', fields: ['netns'], node: name });
  if (node.ingressSandbox !== undefined) {
    roles.push({ netns: node.ingressSandbox.netns, what: 'the ingress sandbox', fields: ['ingressSandbox', 'netns'], node: name });
  }
  // Each network's in name order, so the first by name keeps a shared namespace.
  for (const network of Object.keys(node.loadBalancers ?? {}).sort(compareText)) {
    const balancer = node.loadBalancers![network]!;
    roles.push({
      netns: balancer.netns, what: `the load balancer of network ${shown(network)}`, fields: ['loadBalancers', network, 'netns'], node: name,
    });
  }
  return roles;
}

export function checkNamespaces(draft: Draft): CatalogProblem[] {
  const out: CatalogProblem[] = [];
  // Node → namespace → its first claimant.
  const owners = new Map<string, Map<string, Owner>>();
  const claim = (node: string, netns: string, owner: Owner): void => {
    let onNode = owners.get(node);
    if (onNode === undefined) owners.set(node, onNode = new Map());
    const first = onNode.get(netns);
    if (first === undefined) onNode.set(netns, owner);
    else out.push(clash(draft, node, netns, owner, first));
  };
  for (const [name, node] of draft.nodes.entries) {
    for (const role of nodeRoles(name, node)) claim(name, role.netns, role);
  }
  // Entries are kept in name order (draft.ts), so the first running task by name keeps the namespace.
  // Stopped tasks keep their old namespace path in Swarm's history; nothing is planned into it.
  const { standIns } = draft.tasks;
  for (const [name, task] of draft.tasks.entries) {
    if (task.state !== 'running') continue;
    if (standIns.size > 0 && standIns.get(name)?.includes('netns') === true) continue;
    claim(task.node, task.netns, name);
  }
  return out;
}

interface Described {
  readonly what: string;
  readonly path: string;
  readonly written: string;
}

function describe(draft: Draft, owner: Owner, netns: string): Described {
  if (typeof owner === 'string') {
    return {
      what: `running task ${shown(owner)}`,
      path: joinPath(joinPath('tasks', owner), 'netns'),
      written: written(draft.tasks.raw, owner, ['netns']) ?? netns,
    };
  }
  const path = owner.fields.reduce<string>(joinPath, joinPath('nodes', owner.node));
  return { what: owner.what, path, written: written(draft.nodes.raw, owner.node, owner.fields) ?? netns };
}

/** A path as the catalog spells it: a `pid:` task has none, nor has a value this far from plain data. */
function written(raw: Readonly<Record<string, unknown>>, name: string, fields: readonly string[]): string | undefined {
  let value: unknown = Object.hasOwn(raw, name) ? raw[name] : undefined;
  for (const field of fields) value = isRecord(value) && Object.hasOwn(value, field) ? value[field] : undefined;
  return typeof value === 'string' ? value : undefined;
}

function clash(draft: Draft, node: string, netns: string, laterOwner: Owner, firstOwner: Owner): CatalogProblem {
  const later = describe(draft, laterOwner, netns);
  const first = describe(draft, firstOwner, netns);
  const spelled = later.written === first.written ? '' : `, written ${shown(later.written)} and ${shown(first.written)}`;
  return problem(later.path, `${later.what} and ${first.what} (${first.path}) both use the namespace ${shown(netns)} `
    + `on node ${shown(node)}${spelled}; each needs its own`);
}

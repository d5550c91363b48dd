// catalog + node + node facts → the desired kernel state of every namespace on
// that node. Pure: no I/O, same input, same output.
import { lookup } from '../catalog/names.js';
import { taskList } from '../catalog/task-list.js';
import type { Catalog } from '../catalog/types.js';
import { makeContext } from './context.js';
import { planHostNamespace } from './host.js';
import { planLoadBalancerNamespaces } from './load-balancer.js';
import { compareText } from './marks.js';
import { planSandboxNamespace } from './sandbox.js';
import { planTaskNamespace } from './task.js';
import type { NamespacePlan, NodeFacts, NodePlan } from './types.js';

/**
 * The plan of one node. A node the catalog does not have (it left the cluster
 * while an agent still runs there) gets the empty plan: nothing to program.
 */
export function planNode(catalog: Catalog, node: string, facts: NodeFacts): NodePlan {
  if (lookup(catalog.nodes, node) === undefined) return { node, namespaces: [] };
  const ctx = makeContext(catalog, node, facts);
  const namespaces: NamespacePlan[] = [];
  const hostPlan = planHostNamespace(ctx);
  if (hostPlan.chains.length > 0) namespaces.push(hostPlan);
  const sandboxPlan = planSandboxNamespace(ctx);
  if (sandboxPlan) namespaces.push(sandboxPlan);
  namespaces.push(...planLoadBalancerNamespaces(ctx));
  const local = taskList(catalog)
    .filter((t) => t.node === node && t.state === 'running')
    .sort((a, b) => compareText(a.name, b.name));
  for (const task of local) namespaces.push(planTaskNamespace(ctx, task));
  return { node, namespaces };
}

export const EMPTY_FACTS: NodeFacts = {
  kernelRelease: '',
  resolverPorts: new Map(),
  marks: new Map(),
  probes: new Map(),
};

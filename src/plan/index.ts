// catalog + node + node facts → the desired kernel state of every namespace on
// that node. Pure in what it returns: same input, same output. It remembers
// the last plan it made (one node's, as an agent plans), so that a catalog
// derived from that one by a change to services and tasks (catalog/change.ts)
// is planned by difference (incremental.ts), equal byte for byte to a plan
// from scratch.
import { lookup } from '../catalog/names.js';
import type { Catalog } from '../catalog/types.js';
import { type PlanPath, type PlanState, planByDifference, planFull } from './incremental.js';
import type { NodeFacts, NodePlan } from './types.js';

let last: PlanState | undefined;
let lastPath: PlanPath = 'full';

/**
 * The plan of one node. A node the catalog does not have (it left the cluster
 * while an agent still runs there) gets the empty plan: nothing to program.
 * The plan is shared with the planner's memory: don't modify it.
 */
export function planNode(catalog: Catalog, node: string, facts: NodeFacts): NodePlan {
  if (lookup(catalog.nodes, node) === undefined) return { node, namespaces: [] };
  const next = last === undefined ? undefined : planByDifference(last, catalog, node, facts);
  if (next !== undefined) {
    last = next.state;
    lastPath = next.path;
  } else {
    last = planFull(catalog, node, facts);
    lastPath = 'full';
  }
  return last.plan;
}

/** planNode from scratch, remembering nothing: what a plan by difference must equal. */
export function planNodeFromScratch(catalog: Catalog, node: string, facts: NodeFacts): NodePlan {
  if (lookup(catalog.nodes, node) === undefined) return { node, namespaces: [] };
  return planFull(catalog, node, facts).plan;
}

/** How the last planNode call planned: for benchmarks and tests. */
export function lastPlanPath(): PlanPath {
  return lastPath;
}

/** Forgets the last plan (tests, benchmarks: the next planNode plans from scratch). */
export function forgetPlans(): void {
  last = undefined;
}

export const EMPTY_FACTS: NodeFacts = {
  kernelRelease: '',
  resolverPorts: new Map(),
  marks: new Map(),
  probes: new Map(),
};

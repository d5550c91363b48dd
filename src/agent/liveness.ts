// What the other agents say, applied to the catalog (SPEC §6): a task on a node
// whose liveness lease ran out is not serving, and a remote task whose node's
// agent published a verdict other than healthy is unhealthy. Like withoutGone
// (gone.ts), the agent hands DNS and the pass a derived catalog, so the planner
// and the resolver need nothing new: `serves()` already leaves out tasks that
// do not run or are unhealthy. The local node is always live for itself, and
// its own tasks follow its own probes.
import type { Catalog, Task, TaskHealth } from '../catalog/types.js';
import { namesOf } from '../catalog/names.js';
import { rememberTaskList, taskList } from '../catalog/task-list.js';
import type { SharedHealth } from '../cluster/view.js';

/** The state a derived catalog gives a task whose node has no live agent. */
export const NODE_DOWN_STATE = 'node-down';

export interface ClusterFacts {
  /** Nodes holding their liveness lease. */
  readonly live: ReadonlySet<string>;
  /** Task → the verdict its node's agent published. */
  readonly health: ReadonlyMap<string, SharedHealth>;
}

/** The catalog as this node should serve it; the same object when nothing differs. */
export function withCluster(catalog: Catalog, node: string, facts: ClusterFacts): Catalog {
  // The task list (task-list.ts), not Object.entries: a catalog's 100 000 tasks are listed once, not on every change.
  const all = taskList(catalog);
  let changed = false;
  const seen = all.map((task) => {
    const next = taskAsSeen(task, node, facts);
    if (next !== task) changed = true;
    return next;
  });
  if (!changed) return catalog;
  const derived: Catalog = { ...catalog, tasks: namesOf<Task>(seen.map((task) => [task.name, task] as const)) };
  rememberTaskList(derived, seen);
  return derived;
}

function taskAsSeen(task: Task, node: string, facts: ClusterFacts): Task {
  if (task.node === node || task.state !== 'running') return task;
  if (!facts.live.has(task.node)) return { ...task, state: NODE_DOWN_STATE };
  const published = facts.health.get(task.name);
  // A verdict from another node is about an earlier placement of the name.
  if (published === undefined || published.node !== task.node) return task;
  const health: TaskHealth = published.state === 'healthy' ? 'healthy' : 'unhealthy';
  return health === task.health ? task : { ...task, health };
}

/** The tasks a derived catalog keeps from serving, by why: for the log line of a change. */
export function notServing(catalog: Catalog, node: string, facts: ClusterFacts): { readonly nodeDown: string[]; readonly unhealthy: string[] } {
  const nodeDown: string[] = [];
  const unhealthy: string[] = [];
  for (const task of taskList(catalog)) {
    const seen = taskAsSeen(task, node, facts);
    if (seen === task) continue;
    if (seen.state === NODE_DOWN_STATE) nodeDown.push(task.name);
    else if (seen.health === 'unhealthy') unhealthy.push(task.name);
  }
  return { nodeDown: nodeDown.sort(), unhealthy: unhealthy.sort() };
}

// Tasks the catalog lists running on this node whose namespace is gone (the
// process died, someone ran `ip netns delete`): SPEC §5 treats them as not
// serving here — out of DNS, real servers deleted, resolver sockets closed so the
// kernel can free the namespace — without rewriting the catalog. The agent
// hands DNS and the pass an effective catalog in which they are not running.
import type { Catalog, Task } from '../catalog/types.js';
import { namesOf } from '../catalog/names.js';
import { taskList } from '../catalog/task-list.js';
import { namespaceExists } from '../kernel/env.js';

/** The state an effective catalog gives a task whose namespace is gone. */
export const GONE_STATE = 'namespace-gone';

/** Task name → its namespace, for every local running task whose namespace does not exist. */
export async function findGone(catalog: Catalog, node: string): Promise<ReadonlyMap<string, string>> {
  const local = taskList(catalog).filter((task) => task.node === node && task.state === 'running');
  const gone = new Map<string, string>();
  // A stat each (nsfs and procfs never block): cheap enough for every pass.
  await Promise.all(local.map(async (task) => {
    const exists = await namespaceExists(task.netns).catch(() => true);
    if (!exists) gone.set(task.name, task.netns);
  }));
  return gone;
}

/** The catalog with the gone tasks not running; the same object when none is gone. */
export function withoutGone(catalog: Catalog, gone: ReadonlyMap<string, string>): Catalog {
  if (gone.size === 0) return catalog;
  const tasks = namesOf<Task>(Object.entries(catalog.tasks).map(([name, task]) =>
    [name, gone.has(name) ? { ...task, state: GONE_STATE } : task] as const));
  return { ...catalog, tasks };
}

// Every task of a catalog as one list. Listing the values of a record of 100 000
// tasks (Object.values) takes about 0.1 s each time: V8 keeps such a record as a
// hash table and must restore insertion order. validateCatalog already holds
// the tasks in a list and leaves it here; the planner (and an agent re-planning
// the same catalog on every sync) reads it back for free.
import { sortText } from './problems.js';
import type { Catalog, Task } from './types.js';

const lists = new WeakMap<Catalog, readonly Task[]>();

/** Records `tasks` (catalog.tasks' values, by key in code-unit order) as the task list of `catalog`. */
export function rememberTaskList(catalog: Catalog, tasks: readonly Task[]): void {
  lists.set(catalog, tasks);
}

/** catalog.tasks' values, by key in code-unit order; listed once per catalog object. */
export function taskList(catalog: Catalog): readonly Task[] {
  const known = lists.get(catalog);
  if (known !== undefined) return known;
  const names = sortText(Object.keys(catalog.tasks));
  const tasks = names.map((name) => catalog.tasks[name] as Task);
  lists.set(catalog, tasks);
  return tasks;
}

import type { Catalog } from '../../src/catalog/types.js';

/**
 * A catalog as JSON with its tasks in name order: a change handed on by difference
 * keeps the tasks record, changed in place, so a new name comes last in its own
 * key order (nothing relies on that order; the task list is in name order).
 */
export function canonical(catalog: Catalog): string {
  return JSON.stringify({ ...catalog, tasks: Object.fromEntries(Object.entries(catalog.tasks).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) });
}

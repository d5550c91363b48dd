// An object-level change to a catalog (issue 15), and which catalog a validated
// one was derived from by such a change. The planner reads the lineage to
// re-plan only what a change reaches (plan/incremental.ts); a catalog with no
// recorded parent is planned in full, as before.
import type { Catalog, Task } from './types.js';

export const COLLECTIONS = ['networks', 'nodes', 'services', 'tasks'] as const;
export type Collection = (typeof COLLECTIONS)[number];

/** One object put (`value`: its plain data as written) or deleted (`value` undefined). */
export interface ObjectChange {
  readonly collection: Collection;
  readonly name: string;
  readonly value: unknown;
}

/**
 * `catalog` is `parent` with these services and tasks put or deleted; networks
 * and nodes are the same objects. The tasks record is shared, changed in place
 * (incremental.ts): the parent's own versions of the changed tasks are here.
 */
export interface Derivation {
  readonly parent: Catalog;
  readonly services: ReadonlySet<string>;
  readonly tasks: ReadonlySet<string>;
  /** The changed tasks that the parent had, as it had them. */
  readonly previousTasks: ReadonlyMap<string, Task>;
}

const derivations = new WeakMap<Catalog, Derivation>();

export function rememberDerivation(catalog: Catalog, derivation: Derivation): void {
  derivations.set(catalog, derivation);
}

export function derivationOf(catalog: Catalog): Derivation | undefined {
  return derivations.get(catalog);
}

// The resolver's own copy of the catalog, patched in place by the services and
// tasks a change put or deleted (a PatchWire, catalog-wire.ts), and what each
// patch changed, so that the record snapshot can be patched too
// (records.ts patchRecords) instead of built again from 100 000 tasks.
//
// In place, because copying the records of a 10 000-service catalog costs tens
// of ms a change. So a catalog object made by a patch shares its services and
// tasks with the one before it, and the content behind both is the newest:
// every patch bumps a revision of the shared records, and a catalog says which
// revision it stands for. Whoever reads the records (a build in steps) notes
// the revision when it starts; a change is only used on top of a build of the
// same revision, so a build that saw a later patch's content is never patched
// with it again.
import type { Catalog, Names, Service, Task } from '../catalog/types.js';
import type { DecodedPatch } from './catalog-wire.js';
import type { RecordsChange } from './records.js';

interface Step {
  readonly parent: Catalog;
  /** The revision `parent` stood for. */
  readonly parentRevision: number;
  readonly change: RecordsChange;
}

/** The shared tasks record → the revision of its content (absent: 0, as decoded). */
const contents = new WeakMap<object, number>();
/** A catalog → the revision it stands for (absent: 0). */
const revisions = new WeakMap<Catalog, number>();
const steps = new WeakMap<Catalog, Step>();

/** The revision of what `catalog`'s records hold now (a later patch moves it past the catalog's own). */
export function contentRevision(catalog: Catalog): number {
  return contents.get(catalog.tasks) ?? 0;
}

/** The catalog `patch` makes of `catalog`, which must be the newest of its line (the records are shared). */
export function applyPatch(catalog: Catalog, patch: DecodedPatch): Catalog {
  const revision = revisions.get(catalog) ?? 0;
  if (contentRevision(catalog) !== revision) throw new Error('catalog patch: the catalog is not the newest of its line');
  const services = catalog.services as Record<string, Service>;
  const tasks = catalog.tasks as Record<string, Task>;
  const previousServices = new Map<string, Service | undefined>();
  const previousTasks = new Map<string, Task | undefined>();
  for (const [name, value] of patch.services) {
    previousServices.set(name, services[name]);
    if (value === undefined) delete services[name];
    else services[name] = value;
  }
  for (const [name, value] of patch.tasks) {
    previousTasks.set(name, tasks[name]);
    if (value === undefined) delete tasks[name];
    else tasks[name] = value;
  }
  const next: Catalog = {
    version: 1, networks: catalog.networks, nodes: catalog.nodes, services: services as Names<Service>, tasks: tasks as Names<Task>,
  };
  contents.set(catalog.tasks, revision + 1);
  revisions.set(next, revision + 1);
  steps.set(next, { parent: catalog, parentRevision: revision, change: { services: previousServices, tasks: previousTasks } });
  return next;
}

/** How many patches back changeSince looks before it calls for a full build. */
const MAX_STEPS = 64;

/**
 * What changed from `base` (whose records were read at `baseRevision`) to
 * `catalog`, by the patches between them; undefined when that is not known for
 * sure (another line, a build that read later content, `catalog` patched
 * further already).
 */
export function changeSince(catalog: Catalog, base: Catalog, baseRevision: number): RecordsChange | undefined {
  if (contentRevision(catalog) !== (revisions.get(catalog) ?? 0)) return undefined;
  const line: RecordsChange[] = [];
  let at = catalog;
  while (at !== base) {
    const step = steps.get(at);
    if (step === undefined || line.length >= MAX_STEPS) return undefined;
    line.push(step.change);
    if (step.parent === base && step.parentRevision !== baseRevision) return undefined;
    at = step.parent;
  }
  if (line.length === 1) return line[0];
  // Oldest last: its "before" is the one that counts.
  const services = new Map<string, Service | undefined>();
  const tasks = new Map<string, Task | undefined>();
  for (const change of line) {
    for (const [name, value] of change.services) services.set(name, value);
    for (const [name, value] of change.tasks) tasks.set(name, value);
  }
  return { services, tasks };
}

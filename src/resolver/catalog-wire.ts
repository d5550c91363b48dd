// A catalog on its way from the agent's thread to the resolver's (host.ts →
// worker.ts), as chunks of JSON text. At 10 000 services × 10 tasks the sending
// side costs about the same either way (encodeCatalog ~170–215 ms here,
// JSON.stringify of the whole ~170–290 ms, postMessage of the objects — a
// structured clone — ~180–430 ms; the machine is shared, hence the spread); the
// receiving side decides it: a structured clone is rebuilt in one piece when the
// message is delivered (~450–550 ms in which the resolver answers nothing), one
// JSON text in one JSON.parse (~250–450 ms), while chunks of a thousand entries
// are parsed one at a time between queries. Strings cross to the worker as one
// copy each (~3 ms for all of them).
//
// Neither JSON nor a structured clone keeps the catalog's name records (Names:
// objects with a prototype that holds no name), so decoding makes them again: a
// task or service named `constructor` stays an entry, not Object.prototype's.
// Pure.
import { emptyNames, namesOf } from '../catalog/names.js';
import type { Catalog, Names, Network, Node, Service, Task } from '../catalog/types.js';

export interface CatalogWire {
  /** `{ version, networks, nodes }`. */
  readonly head: string;
  /** Arrays of services, CHUNK at a time. */
  readonly services: readonly string[];
  /** Arrays of tasks, CHUNK at a time. */
  readonly tasks: readonly string[];
}

/** Entries per chunk: each parses in a few milliseconds. */
export const CHUNK = 1000;

function chunks<T>(values: readonly T[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < values.length; i += CHUNK) out.push(JSON.stringify(values.slice(i, i + CHUNK)));
  return out;
}

export function encodeCatalog(catalog: Catalog): CatalogWire {
  return {
    head: JSON.stringify({ version: catalog.version, networks: catalog.networks, nodes: catalog.nodes }),
    services: chunks(Object.values(catalog.services)),
    tasks: chunks(Object.values(catalog.tasks)),
  };
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

function record<T>(value: unknown, what: string): Names<T> {
  if (!isObject(value)) throw new Error(`catalog wire: ${what} is not an object`);
  return namesOf(Object.entries(value) as [string, T][]);
}

function parseArray(text: string, what: string): Record<string, unknown>[] {
  const value: unknown = JSON.parse(text);
  if (!Array.isArray(value) || !value.every(isObject)) throw new Error(`catalog wire: ${what} is not a list of objects`);
  return value;
}

const serviceOf = (service: Record<string, unknown>): Service =>
  ({ ...service, vips: record<string>(service['vips'], 'a service\'s vips') }) as unknown as Service;
const taskOf = (task: Record<string, unknown>): Task =>
  ({ ...task, addresses: record<string>(task['addresses'], 'a task\'s addresses') }) as unknown as Task;

/**
 * Some services and tasks put or deleted, on top of the catalog the worker
 * holds (catalog-patch.ts): what goes over when the agent's catalog was derived
 * from the one sent before by such a change (catalog/change.ts), instead of the
 * whole catalog again. Networks and nodes are unchanged.
 */
export interface PatchWire {
  /** `[name, value or null (deleted)][]` as JSON, services then tasks. */
  readonly services: string;
  readonly tasks: string;
}

export interface DecodedPatch {
  readonly services: ReadonlyMap<string, Service | undefined>;
  readonly tasks: ReadonlyMap<string, Task | undefined>;
}

export function encodePatch(catalog: Catalog, services: Iterable<string>, tasks: Iterable<string>): PatchWire {
  return {
    services: JSON.stringify([...services].map((name) => [name, catalog.services[name] ?? null])),
    tasks: JSON.stringify([...tasks].map((name) => [name, catalog.tasks[name] ?? null])),
  };
}

function entries<T>(text: string, what: string, of: (value: Record<string, unknown>) => T & { readonly name: string }): Map<string, T | undefined> {
  const value: unknown = JSON.parse(text);
  if (!Array.isArray(value)) throw new Error(`catalog patch: the ${what} are not a list`);
  const out = new Map<string, T | undefined>();
  for (const entry of value) {
    if (!Array.isArray(entry) || entry.length !== 2 || typeof entry[0] !== 'string' || !(entry[1] === null || isObject(entry[1]))) {
      throw new Error(`catalog patch: a ${what} entry is not [name, object or null]`);
    }
    const decoded = entry[1] === null ? undefined : of(entry[1]);
    if (decoded !== undefined && decoded.name !== entry[0]) throw new Error(`catalog patch: ${what} ${entry[0]} has another name inside`);
    out.set(entry[0], decoded);
  }
  return out;
}

/** Throws on text that encodePatch did not make. */
export function decodePatch(wire: PatchWire): DecodedPatch {
  return { services: entries(wire.services, 'services', serviceOf), tasks: entries(wire.tasks, 'tasks', taskOf) };
}

/** decodeCatalog in steps: one yield per chunk (see runInSteps). Throws on text that encodeCatalog did not make. */
export function* decodeCatalogInSteps(wire: CatalogWire): Generator<void, Catalog, void> {
  const head: unknown = JSON.parse(wire.head);
  if (!isObject(head) || head['version'] !== 1) throw new Error('catalog wire: the head is not a version 1 catalog');
  const networks = record<Network>(head['networks'], 'networks');
  const nodes = record<Node>(head['nodes'], 'nodes');
  const services = emptyNames<Service>();
  for (const text of wire.services) {
    yield;
    for (const service of parseArray(text, 'a service chunk')) {
      const entry = serviceOf(service);
      services[entry.name] = entry;
    }
  }
  const tasks = emptyNames<Task>();
  for (const text of wire.tasks) {
    yield;
    for (const task of parseArray(text, 'a task chunk')) {
      const entry = taskOf(task);
      tasks[entry.name] = entry;
    }
  }
  return { version: 1, networks, nodes, services: services as Names<Service>, tasks: tasks as Names<Task> };
}

export function decodeCatalog(wire: CatalogWire): Catalog {
  const steps = decodeCatalogInSteps(wire);
  for (;;) {
    const step = steps.next();
    if (step.done === true) return step.value;
  }
}

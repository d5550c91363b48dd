// The catalog's layout in etcd (SPEC §6): one object per key, its value the
// object's JSON in the catalog file's own fields, under PREFIX/v1/. Beside the
// catalog the agents keep their liveness (live/NODE) and shared probe results
// (health/TASK). Pure: keys and values in, documents and problems out.
import { problem, sortProblems } from '../catalog/problems.js';
import type { CatalogProblem } from '../catalog/types.js';
import { validateCatalog, type ValidationResult } from '../catalog/validate.js';

export const COLLECTIONS = ['networks', 'nodes', 'services', 'tasks'] as const;
export type Collection = (typeof COLLECTIONS)[number];

/** What a key under PREFIX/v1/ holds. */
export type KeyMeaning =
  | { readonly kind: 'object'; readonly collection: Collection; readonly name: string }
  | { readonly kind: 'live'; readonly node: string }
  | { readonly kind: 'health'; readonly task: string }
  | { readonly kind: 'other' };

/** PREFIX/v1/: everything vipmesh keeps under a prefix. */
export const rootOf = (prefix: string): string => `${prefix}/v1/`;
export const objectKey = (prefix: string, collection: Collection, name: string): string => `${rootOf(prefix)}${collection}/${name}`;
export const liveKey = (prefix: string, node: string): string => `${rootOf(prefix)}live/${node}`;
export const healthKey = (prefix: string, task: string): string => `${rootOf(prefix)}health/${task}`;
/** The keys that make the catalog; live/ and health/ are the agents' own. */
export const collectionPrefix = (prefix: string, collection: Collection): string => `${rootOf(prefix)}${collection}/`;

const isCollection = (word: string): word is Collection => (COLLECTIONS as readonly string[]).includes(word);

export function meaningOf(prefix: string, key: string): KeyMeaning {
  const root = rootOf(prefix);
  if (!key.startsWith(root)) return { kind: 'other' };
  const rest = key.slice(root.length);
  const slash = rest.indexOf('/');
  if (slash <= 0 || slash === rest.length - 1) return { kind: 'other' };
  const head = rest.slice(0, slash);
  const name = rest.slice(slash + 1);
  if (isCollection(head)) return { kind: 'object', collection: head, name };
  if (head === 'live') return { kind: 'live', node: name };
  if (head === 'health') return { kind: 'health', task: name };
  return { kind: 'other' };
}

/** A plain catalog document (what parseText gives for a file) → the key/value pairs etcd holds for it. */
export function entriesOf(prefix: string, document: unknown): Map<string, string> {
  const entries = new Map<string, string>();
  const top = isRecord(document) ? document : {};
  for (const collection of COLLECTIONS) {
    const objects = top[collection];
    if (!isRecord(objects)) continue;
    for (const [name, value] of Object.entries(objects)) entries.set(objectKey(prefix, collection, name), JSON.stringify(value ?? null));
  }
  return entries;
}

export interface Assembled {
  /** The union as a catalog document, ready for validation. */
  readonly document: Record<string, unknown>;
  /** Values that are not JSON: each is a problem of the union. */
  readonly problems: readonly CatalogProblem[];
}

/** The object keys' values → one catalog document (version 1). Keys outside the collections are ignored. */
export function assemble(prefix: string, entries: Iterable<readonly [string, string]>): Assembled {
  const document: Record<string, Record<string, unknown>> = {};
  const problems: CatalogProblem[] = [];
  for (const [key, value] of entries) {
    const meaning = meaningOf(prefix, key);
    if (meaning.kind !== 'object') continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(value);
    } catch (error) {
      problems.push(problem(`${meaning.collection}.${meaning.name}`, `the value of etcd key ${key} is not JSON: ${error instanceof Error ? error.message : String(error)}`));
      continue;
    }
    (document[meaning.collection] ??= {})[meaning.name] = parsed;
  }
  return { document: { version: 1, ...document }, problems };
}

/** The union validated exactly as a file is. */
export function catalogOf(prefix: string, entries: Iterable<readonly [string, string]>): ValidationResult {
  const { document, problems } = assemble(prefix, entries);
  const validated = validateCatalog(document);
  if (problems.length === 0) return validated;
  return { ok: false, problems: sortProblems([...problems, ...(validated.ok ? [] : validated.problems)]) };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

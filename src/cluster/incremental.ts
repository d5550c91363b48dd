// The catalog an etcd watch holds, kept up to date change by change (issue 15):
// each watch response's object keys become object-level changes
// (catalog/change.ts), validated by difference (catalog/incremental.ts), so a
// one-key change costs work in proportion to that key, not to the catalog. A
// value that is not JSON is a problem of the union as catalogOf reports it: the
// union is then validated in full, and again until every value parses.
import { IncrementalCatalog, type ObjectChange, type ValidationPath } from '../catalog/incremental.js';
import type { ValidationResult } from '../catalog/validate.js';
import { assemble, catalogOf, meaningOf } from './layout.js';

export interface CatalogUpdate {
  readonly result: ValidationResult;
  readonly path: ValidationPath;
}

export class ClusterCatalog {
  private inc: IncrementalCatalog | undefined;
  private current: ValidationResult;

  /** `known`: the union's validation, when the caller already has it (the agent's first listing). */
  constructor(private readonly prefix: string, objects: ReadonlyMap<string, string>, known?: ValidationResult) {
    this.current = this.rebuild(objects, known);
  }

  get result(): ValidationResult {
    return this.current;
  }

  private rebuild(objects: ReadonlyMap<string, string>, known?: ValidationResult): ValidationResult {
    const { document, problems } = assemble(this.prefix, objects);
    if (problems.length > 0) {
      this.inc = undefined;
      return known ?? catalogOf(this.prefix, objects);
    }
    const sections = Object.fromEntries(Object.entries(document).filter(([key]) => key !== 'version')
      .map(([key, value]) => [key, Object.entries(value as Record<string, unknown>)]));
    this.inc = new IncrementalCatalog(sections, known);
    return this.inc.result;
  }

  /**
   * The union after the object keys in `keys` changed; `objects` is the view
   * after them (for the full validation a value that is not JSON needs).
   */
  update(keys: Iterable<string>, objects: ReadonlyMap<string, string>): CatalogUpdate {
    const changes: ObjectChange[] = [];
    let unparsed = this.inc === undefined;
    for (const key of keys) {
      const meaning = meaningOf(this.prefix, key);
      if (meaning.kind !== 'object') continue;
      const text = objects.get(key);
      let value: unknown;
      if (text !== undefined) {
        try {
          value = JSON.parse(text);
        } catch {
          unparsed = true;
          break;
        }
      }
      changes.push({ collection: meaning.collection, name: meaning.name, value });
    }
    if (unparsed || this.inc === undefined) {
      this.current = this.rebuild(objects);
      return { result: this.current, path: 'full' };
    }
    const { result, path } = this.inc.apply(changes);
    this.current = result;
    return { result, path };
  }
}

/** The object keys whose values differ between two views' objects (after a relist). */
export function changedKeys(before: ReadonlyMap<string, string>, after: ReadonlyMap<string, string>): string[] {
  const keys: string[] = [];
  for (const [key, value] of after) if (before.get(key) !== value) keys.push(key);
  for (const key of before.keys()) if (!after.has(key)) keys.push(key);
  return keys;
}

// Records keyed by names the catalog's author chose. `constructor`, `toString`
// and `valueOf` are valid DNS labels, and on a plain object a lookup of one of
// them finds Object.prototype's member instead of nothing; `__proto__` reads
// (and writes) the prototype itself. So every record of a normalized Catalog is
// made here, from an object whose prototype is empty and has no prototype of
// its own: a lookup by any name finds an entry or nothing.
//
// Not Object.create(null): V8 keeps such objects as hash tables from the start,
// which for the 100 000 address maps of a big catalog doubles their memory and
// makes every for…in over them several times slower. An object whose prototype
// is an ordinary (frozen, empty) object stays in V8's fast mode, and the
// prototype chain still holds no name: no accessor for `__proto__` either, so
// that key, if it ever got this far, would be an own entry like any other.
import type { Names } from './types.js';

const NO_NAMES: object = Object.freeze(Object.create(null) as object);

/** A fresh record to fill in; hand it out as Names<T> once complete. */
export function emptyNames<T>(): Record<string, T> {
  return Object.create(NO_NAMES) as Record<string, T>;
}

const EMPTY = Object.freeze(emptyNames<never>()) as Names<never>;

/** An empty record, shared (it is frozen). */
export function noNames<T>(): Names<T> {
  return EMPTY;
}

/** The entries as a record, later entries winning. */
export function namesOf<T>(entries: Iterable<readonly [string, T]>): Names<T> {
  const out = emptyNames<T>();
  for (const [name, value] of entries) out[name] = value;
  return out as Names<T>;
}

/** Own entries only, whatever the record was made by: for names that come from outside (a command line, a file). */
export function lookup<T>(names: Readonly<Record<string, T>>, name: string): T | undefined {
  return Object.hasOwn(names, name) ? names[name] : undefined;
}

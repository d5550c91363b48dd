import type { CatalogProblem } from './types.js';

export function problem(path: string, message: string): CatalogProblem {
  return { path, message };
}

/**
 * Longest name or value a problem quotes whole: the longest valid name (a task
 * name of 253 characters), so only text that is wrong anyway is ever cut.
 */
export const SHOWN_MAX = 253;

/**
 * A name or value from the catalog as a problem quotes it: whole, or its first
 * SHOWN_MAX characters and its real size. A 10 MB key must not come back in
 * every problem that names it.
 */
export function shown(text: string): string {
  if (text.length <= SHOWN_MAX) return text;
  // Never half a surrogate pair.
  const end = isHighSurrogate(text.charCodeAt(SHOWN_MAX - 1)) ? SHOWN_MAX - 1 : SHOWN_MAX;
  return `${text.slice(0, end)}…(${utf8Length(text)} bytes)`;
}

const isHighSurrogate = (code: number): boolean => code >= 0xd800 && code <= 0xdbff;

/** Bytes of `text` in UTF-8 (a lone surrogate counts as the 3 bytes of U+FFFD), without encoding it. */
function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (isHighSurrogate(code) && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

/** Names as a problem lists them: each cut (see shown), comma-separated. */
export function shownList(names: readonly string[]): string {
  return names.map(shown).join(', ');
}

/**
 * A value of any type as a problem quotes it: a string in quotes (cut, see
 * shown), a number or boolean as written, anything else by its kind.
 */
export function quoted(value: unknown): string {
  if (typeof value === 'string') return `"${shown(value)}"`;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a map';
  return value === undefined ? 'nothing' : `a ${typeof value}`;
}

/** Appends a map key or list index to a dotted path; keys are kept verbatim (task names contain dots), only cut (see shown). */
export function joinPath(base: string, key: string | number): string {
  if (typeof key === 'number') return `${base}[${key}]`;
  return base === '' ? shown(key) : `${base}.${shown(key)}`;
}

/** Code-unit order, not locale order, so the output is the same on every machine. */
export function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Sorts strings in place in compareText order. Array#sort without a comparator
 * compares UTF-16 code units too, natively: several times faster on the 100 000
 * task names of a big catalog than calling back into compareText.
 */
export function sortText<T extends string>(texts: T[]): T[] {
  return texts.sort();
}

export function compareProblems(a: CatalogProblem, b: CatalogProblem): number {
  return compareText(a.path, b.path) || compareText(a.message, b.message);
}

/** Sorted by path then message, exact repeats dropped (two checks may reach the same conclusion). */
export function sortProblems(problems: readonly CatalogProblem[]): CatalogProblem[] {
  const sorted = [...problems].sort(compareProblems);
  return sorted.filter((p, i) => i === 0 || compareProblems(p, sorted[i - 1] as CatalogProblem) !== 0);
}

export function formatProblem(p: CatalogProblem): string {
  return p.path === '' ? p.message : `${p.path}: ${p.message}`;
}

export function formatProblems(problems: readonly CatalogProblem[]): string {
  return [...problems].sort(compareProblems).map(formatProblem).join('\n');
}

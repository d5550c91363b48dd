import { readFile } from 'node:fs/promises';
import { parseText } from './parse-text.js';
import { problem, sortProblems } from './problems.js';
import type { Catalog, CatalogProblem } from './types.js';
import { validateCatalog } from './validate.js';

export type LoadResult =
  | { ok: true; catalog: Catalog }
  | { ok: false; problems: CatalogProblem[] };

/** Pure: parses YAML or JSON text and validates it, reporting every problem found. */
export function parseCatalog(text: string): LoadResult {
  const parsed = parseText(text);
  if (!('value' in parsed)) return { ok: false, problems: sortProblems(parsed.problems) };
  const validated = validateCatalog(parsed.value);
  if (parsed.problems.length === 0) return validated;
  // YAML warnings (an unknown tag) leave a usable document; report them with whatever else is wrong.
  return { ok: false, problems: sortProblems([...parsed.problems, ...(validated.ok ? [] : validated.problems)]) };
}

/** Reads the file (utf8), then parseCatalog; an unreadable file is a single problem. */
export async function loadCatalog(file: string): Promise<LoadResult> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    return { ok: false, problems: [problem('', `can't read the catalog ${file}: ${reason(e)}`)] };
  }
  return parseCatalog(text);
}

function reason(e: unknown): string {
  if (e instanceof Error && 'code' in e) {
    const known: Readonly<Record<string, string>> = {
      ENOENT: 'no such file', EACCES: 'permission denied', EISDIR: 'it is a directory', ENOTDIR: 'a parent is not a directory',
    };
    const code = String(e.code);
    return known[code] ?? `${code}: ${e.message}`;
  }
  return e instanceof Error ? e.message : String(e);
}

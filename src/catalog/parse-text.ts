// Text → plain value. JSON goes through the YAML parser too (JSON is YAML
// 1.2), so duplicate keys are caught in both; parse-json.ts and, for YAML,
// parse-yaml-fast.ts take faster roads where that can't make a difference. The
// `yaml` package below is the reference: it reads what they decline and places
// every problem with a line and column.
import { isMap, isNode, isScalar, isSeq, LineCounter, parseDocument, type Document } from 'yaml';
import { duplicateKeys, hasDuplicateKeys } from './duplicate-keys.js';
import { readJsonCatalog } from './parse-json.js';
import { readYamlFast } from './parse-yaml-fast.js';
import { joinPath, problem, quoted, shown } from './problems.js';
import type { CatalogProblem } from './types.js';

export interface ParsedText {
  /** Absent when the text can't be used (syntax errors, duplicate keys). */
  readonly value?: unknown;
  readonly problems: CatalogProblem[];
}

/** Merge keys (<<: *defaults) let operators share settings between services. */
const YAML_OPTIONS = { prettyErrors: false, merge: true } as const;

/** A problem the parser found, or a repeated key: what, and the text offset it is reported at. */
interface Located { readonly code: string; readonly pos: readonly [number, ...number[]]; readonly message: string }

interface Parsed { readonly doc: Document; readonly lines: LineCounter }

function parseYaml(text: string, options: { uniqueKeys: boolean; keepSourceTokens?: boolean }): Parsed {
  const lines = new LineCounter();
  return { doc: parseDocument(text, { ...YAML_OPTIONS, ...options, lineCounter: lines }), lines };
}

/**
 * The document and every problem the parser reports, repeated keys included.
 * Its own check for those is quadratic (see duplicate-keys.ts), so it runs only
 * where the parser had to recover from errors: which maps it then checked is
 * its own affair.
 */
function parseWithDuplicates(text: string): Parsed & { readonly errors: readonly Located[] } {
  const first = parseYaml(text, { uniqueKeys: false });
  if (first.doc.errors.length === 0) {
    if (!hasDuplicateKeys(first.doc)) return { ...first, errors: [] };
    // Placing a repeated key needs the tokens, kept only now: they cost memory.
    const again = parseYaml(text, { uniqueKeys: false, keepSourceTokens: true });
    const duplicates = again.doc.errors.length === 0 ? duplicateKeys(again.doc) : undefined;
    if (duplicates !== undefined) return { ...again, errors: duplicates };
  }
  const checked = parseYaml(text, { uniqueKeys: true });
  return { ...checked, errors: checked.doc.errors };
}

export function parseText(text: string): ParsedText {
  const json = readJsonCatalog(text);
  if (json !== undefined) return { value: json.value, problems: [] };
  const fast = readYamlFast(text);
  if (fast !== undefined) return { value: fast.value, problems: [] };
  return parseTextSlowly(text);
}

/** What parseText gives, always by the `yaml` package: the reference the fast roads are tested against. */
export function parseTextSlowly(text: string): ParsedText {
  const { doc, lines, errors } = parseWithDuplicates(text);
  const at = (e: Located): string => {
    const { line, col } = lines.linePos(e.pos[0]);
    return `(line ${line}, column ${col})`;
  };
  const problems: CatalogProblem[] = [];
  // Any error, a duplicate key included, stops here: which of two values the
  // author meant is a guess, and problems found in a guess would mislead.
  for (const e of errors) {
    if (e.code === 'DUPLICATE_KEY') {
      const found = findKey(doc, startsAt(e.pos[0]));
      problems.push(found === undefined
        ? problem('', `duplicate key ${at(e)}`)
        : problem(found.path, `duplicate key ${quoted(found.key)} ${at(e)}`));
    } else if (e.code === 'MULTIPLE_DOCS') {
      problems.push(problem('', `the catalog must be a single YAML document, but a second one starts here ${at(e)}`));
    } else {
      problems.push(problem('', `YAML syntax error: ${shown(e.message.replace(/\.$/, ''))} ${at(e)}`));
    }
  }
  // The parser's messages may quote the text (an alias, a tag): cut like any value.
  for (const w of doc.warnings) problems.push(problem('', `YAML warning: ${shown(w.message.replace(/\.$/, ''))} ${at(w)}`));
  if (errors.length > 0) return { problems };
  // A list or map used as a key can't become a name (and toJS would stringify it noisily).
  const complex = findKey(doc, (node) => node !== null && !isScalar(node));
  if (complex !== undefined) {
    const offset = isNode(complex.node) ? complex.node.range?.[0] ?? 0 : 0;
    const { line, col } = lines.linePos(offset);
    return { problems: [...problems, problem(complex.parent, `a key must be a plain name, not a list or map (line ${line}, column ${col})`)] };
  }
  try {
    return { value: doc.toJS({ maxAliasCount: 10_000 }), problems };
  } catch (e) {
    // toJS throws on alias bombs and similar abuse; report it rather than crash.
    return { problems: [...problems, problem('', `the catalog can't be read: ${shown(e instanceof Error ? e.message : String(e))}`)] };
  }
}

interface FoundKey { readonly path: string; readonly parent: string; readonly key: string; readonly node: unknown }

/** The first map key, in document order, that `match` accepts, with its dotted path. */
function findKey(doc: Document, match: (node: unknown) => boolean): FoundKey | undefined {
  const walk = (node: unknown, path: string): FoundKey | undefined => {
    if (isMap(node)) {
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? String(pair.key.value) : keyText(pair.key);
        const here = joinPath(path, key);
        if (match(pair.key)) return { path: here, parent: path, key, node: pair.key };
        const inner = walk(pair.value, here);
        if (inner !== undefined) return inner;
      }
    } else if (isSeq(node)) {
      for (const [i, item] of node.items.entries()) {
        const inner = walk(item, joinPath(path, i));
        if (inner !== undefined) return inner;
      }
    }
    return undefined;
  };
  return walk(doc.contents, '');
}

/** A collection key as text, for a path; its toString converts it and can throw (a bad merge inside). */
function keyText(key: unknown): string {
  try {
    return String(key);
  } catch {
    return '?';
  }
}

const startsAt = (offset: number) => (node: unknown): boolean => isScalar(node) && node.range?.[0] === offset;

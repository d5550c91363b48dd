// A fast path for catalogs written as YAML. The `yaml` package (parse-text.ts)
// builds a full document model with source ranges, which is what problems need
// for their line and column, but at about 1.5 MB/s and 70 bytes of heap per byte
// of text: 9 s and 1 GB for 10 000 services. js-yaml builds plain values directly,
// several times faster in a fifth of the memory. It is used only where the `yaml`
// path would produce the same value without a word of complaint; anything else
// (an error, a construct where the two could differ) returns undefined and the
// `yaml` path decides, as for JSON in parse-json.ts. yaml-fast.test.ts feeds
// both paths the fixtures and generated documents and compares.
import { FAILSAFE_SCHEMA, load, Type, type State } from 'js-yaml';

/**
 * The `yaml` package's YAML 1.2 core schema (yaml/dist/schema/core/schema.js),
 * test for test and in its order, for plain scalars only: quoted and block
 * scalars stay strings in both. js-yaml's own core schema differs (it reads
 * `0b1`, `1_000`, `+0x1f`), so it is not used. The tag is private: an explicit
 * `!!int` is then unknown to js-yaml, which throws, and the `yaml` path reads it.
 */
const CORE_TAG = 'tag:vipmesh.invalid,2026:core';

const NOT_CORE = Symbol('string');

/** A plain scalar's value under the core schema, or NOT_CORE for a string. */
export function coreScalar(s: string): unknown {
  if (s === '') return null;
  const c = s.charCodeAt(0);
  // Most plain scalars in a catalog are names and addresses: one look at the first
  // character rules out the tests that can't match (every core form starts with one of these).
  if (c === 0x7e /* ~ */ || c === 0x6e /* n */ || c === 0x4e /* N */) return /^(?:~|[Nn]ull|NULL)$/.test(s) ? null : NOT_CORE;
  if (c === 0x74 || c === 0x54 || c === 0x66 || c === 0x46 /* tTfF */) {
    return /^(?:[Tt]rue|TRUE|[Ff]alse|FALSE)$/.test(s) ? c === 0x74 || c === 0x54 : NOT_CORE;
  }
  if (!((c >= 0x30 && c <= 0x39) || c === 0x2b || c === 0x2d || c === 0x2e /* 0-9 + - . */)) return NOT_CORE;
  if (/^0o[0-7]+$/.test(s)) return parseInt(s.substring(2), 8);
  if (/^[-+]?[0-9]+$/.test(s)) return parseInt(s, 10);
  if (/^0x[0-9a-fA-F]+$/.test(s)) return parseInt(s.substring(2), 16);
  if (/^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/.test(s)) {
    return s.slice(-3).toLowerCase() === 'nan' ? Number.NaN : s[0] === '-' ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
  }
  if (/^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$/.test(s) || /^[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)$/.test(s)) return parseFloat(s);
  return NOT_CORE;
}

/** js-yaml asks resolve, then construct, for the same text: the value is kept in between. */
let resolved: unknown = null;
const core = new Type(CORE_TAG, {
  kind: 'scalar',
  resolve: (data: unknown) => {
    if (typeof data !== 'string') return false;
    resolved = coreScalar(data);
    return resolved !== NOT_CORE;
  },
  construct: () => resolved,
});

/** js-yaml's merge handling keys on this tag; its own merge type also takes an empty key. */
const MERGE_TAG = 'tag:yaml.org,2002:merge';
const merge = new Type(MERGE_TAG, { kind: 'scalar', resolve: (data: unknown) => data === '<<' });

const SCHEMA = FAILSAFE_SCHEMA.extend({ implicit: [merge, core] });

/** Node tags a document may carry here: none given (null), resolved from plain text, or a merge key. */
const allowedTag = (tag: string | null): boolean => tag === null || tag === '?' || tag === CORE_TAG || tag === MERGE_TAG;

/** The `yaml` parser rejects implicit keys longer than this (1024), counted in the source. */
const MAX_KEY_SOURCE = 1000;
/** The `yaml` path's maxAliasCount (parse-text.ts): more aliases of one anchor than this is an error there. */
const MAX_ALIASES = 10_000;
/** Deeper than this, the `yaml` path may exhaust the stack and say so; let it. */
const MAX_DEPTH = 64;

const SPACE = 0x20;
const LF = 0x0a;
const CR = 0x0d;
const COLON = 0x3a;
const HASH = 0x23;

/** Text the two parsers could read differently, or where the `yaml` path warns. */
function textNeedsYamlPath(text: string): boolean {
  // Tabs: the parsers' rules on tabs around indentation differ in corners.
  // A line starting with % is a directive: %YAML 1.1 changes the schema.
  if (text.includes('\t') || text.startsWith('%') || text.includes('\n%')) return true;
  // A bare CR (no LF after it) is a line break to js-yaml, not to `yaml`.
  for (let cr = text.indexOf('\r'); cr >= 0; cr = text.indexOf('\r', cr + 1)) {
    if (text.charCodeAt(cr + 1) !== LF) return true;
  }
  // An explicit key (`? key`) may be a list or a map, which js-yaml turns into a
  // string: conservatively, any ? standing alone between spaces sends the text on.
  for (let q = text.indexOf('?'); q >= 0; q = text.indexOf('?', q + 1)) {
    const before = q === 0 ? LF : text.charCodeAt(q - 1);
    const after = q + 1 === text.length ? LF : text.charCodeAt(q + 1);
    const separated = (c: number): boolean => c === SPACE || c === LF || c === CR;
    if ((separated(before) || before === 0x5b || before === 0x7b || before === 0x2c) && separated(after)) return true;
  }
  return hasEmptyEntry(text);
}

const EMPTY_ENTRY_LINE = /^ *-(?: +(?:#.*)?)?\r?$/;

/**
 * Whether a block list has an empty entry (`-` alone on its line). After one,
 * js-yaml (4.3) keeps reading a less indented `- x` into the same list, where
 * `yaml` ends the list. Only lines holding one of these pairs can be such an entry.
 */
function hasEmptyEntry(text: string): boolean {
  for (const needle of ['-\n', '-\r', '- \n', '- \r', '- #', '-  ']) {
    for (let at = text.indexOf(needle); at >= 0; at = text.indexOf(needle, at + 1)) {
      const start = text.lastIndexOf('\n', at) + 1;
      const eol = text.indexOf('\n', at);
      if (EMPTY_ENTRY_LINE.test(text.slice(start, eol < 0 ? text.length : eol))) return true;
    }
  }
  return /(?:^|\n) *- *$/.test(text.slice(-200));
}

/** What may precede a block map's first key on its line: indentation, `- ` entries, the key's anchor or tag. */
const COMPACT_LEAD = /^ *(?:- +)*(?:[&!][^ ]* +)*$/;

const isMap = (value: unknown): boolean => typeof value === 'object' && value !== null && !Array.isArray(value);

/** Index of the first character at or after `from` that is not a space. */
function skipSpaces(text: string, from: number): number {
  let at = from;
  while (text.charCodeAt(at) === SPACE) at++;
  return at;
}

/** Where a node's own text starts: after separation (spaces, line breaks, comments) and its anchor or tag. */
function nodeStart(text: string, from: number, to: number): number {
  let at = from;
  while (at < to) {
    const c = text.charCodeAt(at);
    if (c === SPACE || c === LF || c === CR) at++;
    else if (c === HASH) {
      const eol = text.indexOf('\n', at);
      at = eol < 0 ? to : eol;
    } else if (c === 0x26 /* & */ || c === 0x21 /* ! */) {
      while (at < to && text.charCodeAt(at) !== SPACE && text.charCodeAt(at) !== LF) at++;
    } else return at;
  }
  return at;
}

/**
 * Watches js-yaml's node events for what the `yaml` path would read otherwise.
 * Returns a listener and a verdict: 'ok', or why the text must go the slow way.
 */
function watcher(text: string, stars: readonly number[]): { listener: (event: 'open' | 'close', state: State) => void; verdict: () => string } {
  const starts: number[] = [];
  const anchors = new Set<string>();
  let reason = '';
  let mergeDepth = -1;
  const listener = (event: 'open' | 'close', state: State): void => {
    if (event === 'open') {
      starts.push(state.position);
      return;
    }
    const start = starts.pop() ?? 0;
    if (reason !== '') return;
    const s = state as State & { anchor: string | null; tag: string | null; kind: string | null };
    // The value of a merge key closes next at the key's depth. js-yaml merges a list's
    // indexes as keys; `yaml` takes maps and lists of maps only.
    const depth = starts.length;
    if (mergeDepth === depth) {
      mergeDepth = -1;
      const value: unknown = s.result;
      if (!(isMap(value) || (Array.isArray(value) && value.every(isMap)))) reason = 'merge of a non-map';
    }
    if (s.tag === MERGE_TAG) mergeDepth = depth;
    const end = state.position;
    // An explicit tag (!!str, !local): the `yaml` path resolves or warns.
    if (!allowedTag(s.tag)) reason = `tag ${s.tag}`;
    else if (s.anchor !== null) {
      // A name redefined, or ending in ':', warns or resolves differently; an alias
      // inside an anchored node makes the `yaml` path's alias counting nonlinear.
      if (anchors.has(s.anchor) || s.anchor.endsWith(':')) reason = `anchor ${s.anchor}`;
      else if (firstAtOrAfter(stars, start) < end) reason = `alias inside anchor ${s.anchor}`;
      anchors.add(s.anchor);
    }
    if (reason !== '') return;
    const kind = s.kind;
    if (kind === 'mapping' || kind === 'sequence') {
      // A flow collection over several lines: the `yaml` path checks its indentation and may warn.
      const at = nodeStart(text, start, end);
      const c = text.charCodeAt(at);
      if (c === 0x5b || c === 0x7b) {
        if (text.indexOf('\n', at) >= 0 && text.indexOf('\n', at) < end) reason = 'multi-line flow collection';
      } else if (kind === 'mapping' && !COMPACT_LEAD.test(text.slice(text.lastIndexOf('\n', at - 1) + 1, at))) {
        // A block map starting on its key's line (`a: &x b: c`): js-yaml reads a map, `yaml` an error.
        reason = 'block map after a key on its line';
      }
    } else if (kind === 'scalar' && s.tag === null) {
      // A block scalar's indentation indicator (|2): the parsers count from different places at the top level.
      const at = nodeStart(text, start, end);
      const c = text.charCodeAt(at);
      if ((c === 0x7c || c === 0x3e) && /^[|>][-+]?[0-9]/.test(text.slice(at, at + 3))) reason = 'block scalar indentation indicator';
    }
    // A comment must be separated from the node before it: js-yaml lets `"x"#c` pass.
    if (text.charCodeAt(end) === HASH) reason = 'comment not separated';
    if (reason !== '') return;
    // A key is the node an implicit-key `:` follows on its line.
    if (text.charCodeAt(skipSpaces(text, end)) === COLON) {
      // A key that is a list, a map, an alias or empty: an error or '' on the `yaml` path,
      // a string here. A null key is '' there, 'null' here. A long key is an error there.
      if (kind !== 'scalar' || (s.tag === CORE_TAG && s.result === null)) reason = 'key not a plain scalar';
      else if (end - start > MAX_KEY_SOURCE) reason = 'long key';
    }
  };
  return { listener, verdict: () => reason || 'ok' };
}

/** Where the text has a '*': every alias is at one of them. */
function starsOf(text: string): number[] {
  const at: number[] = [];
  for (let i = text.indexOf('*'); i >= 0; i = text.indexOf('*', i + 1)) at.push(i);
  return at;
}

/** The first of the ascending `positions` at or after `from`, or Infinity. */
function firstAtOrAfter(positions: readonly number[], from: number): number {
  let lo = 0;
  let hi = positions.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((positions[mid] ?? 0) < from) lo = mid + 1;
    else hi = mid;
  }
  return positions[lo] ?? Number.POSITIVE_INFINITY;
}

/**
 * The catalog as js-yaml reads it with the `yaml` path's schema, or undefined
 * where the `yaml` path must decide: any syntax error or repeated key (js-yaml
 * throws; `yaml` places it), an empty or multi-document stream, and every
 * construct textNeedsYamlPath and watcher name.
 */
export function readYamlFast(text: string): { readonly value: unknown } | undefined {
  return readYamlFastWhy(text).value;
}

/** As readYamlFast, with the reason it declined (for tests). */
export function readYamlFastWhy(text: string): { readonly value?: { readonly value: unknown }; readonly why: string } {
  if (textNeedsYamlPath(text)) return { why: 'text' };
  // With no alias nested in an anchored node, each anchor is counted once per
  // alias, so fewer '*' than the limit can't reach it.
  const stars = starsOf(text);
  if (stars.length > MAX_ALIASES) return { why: 'aliases' };
  const watch = watcher(text, stars);
  let warned = false;
  let value: unknown;
  try {
    value = load(text, {
      schema: SCHEMA,
      json: false,
      listener: watch.listener,
      onWarning: () => { warned = true; },
      maxDepth: MAX_DEPTH,
    } as Parameters<typeof load>[1]);
  } catch (e) {
    return { why: `js-yaml: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}` };
  }
  if (warned) return { why: 'js-yaml warned' };
  const verdict = watch.verdict();
  if (verdict !== 'ok') return { why: verdict };
  // An empty stream: js-yaml says undefined, `yaml` null; leave it to `yaml`.
  if (value === undefined) return { why: 'empty' };
  return { value: { value }, why: 'ok' };
}

// Repeated map keys, found as the `yaml` parser finds them but in linear time.
// The parser's own check (option uniqueKeys) compares each key with every
// earlier key of its map: for a catalog of 100 000 tasks that is 5·10⁹
// comparisons, minutes before validation starts. Here each map gets one set.
//
// The parser reports a repeated key at the offset where it began reading the
// key: the end of the tokens before it, or, where there are none, the end of the
// previous entry as it composed it. That offset decides the line and column
// users see and which node the path is found by, so it is reproduced exactly;
// test/unit/catalog/duplicate-keys.test.ts compares both ways on many documents.
import { isMap, isNode, isPair, isScalar, isSeq, type Document, type Pair, type YAMLMap } from 'yaml';

/** A parser-style error: what, and the text offset it is reported at. */
export interface DuplicateKey {
  readonly code: 'DUPLICATE_KEY';
  readonly pos: readonly [number];
  readonly message: string;
}

/** Whether any map of the document repeats a key (no tokens needed). */
export function hasDuplicateKeys(doc: Document): boolean {
  return walk(doc, () => true) === 'stopped';
}

/**
 * Every repeated key, in the order the parser reports them, from a document
 * parsed with `keepSourceTokens: true` and `uniqueKeys: false` that has no
 * errors; undefined when an offset can't be told (no tokens kept).
 */
export function duplicateKeys(doc: Document): DuplicateKey[] | undefined {
  const out: DuplicateKey[] = [];
  const result = walk(doc, (map, index) => {
    const offset = keyStart(map, index);
    if (offset === undefined) return true;
    out.push({ code: 'DUPLICATE_KEY', pos: [offset], message: 'Map keys must be unique' });
    return false;
  });
  return result === 'stopped' ? undefined : out;
}

/**
 * Visits nodes in the order the parser composes them (a key, then its value; the
 * check of a key in a block map before its value, in a flow map after it) and
 * calls `repeated` for each key equal to an earlier one of its map: two scalar
 * keys with the same value (===); other keys are never equal. `repeated`
 * returning true stops the walk.
 */
function walk(doc: Document, repeated: (map: YAMLMap, index: number) => boolean): 'stopped' | 'done' {
  let stopped = false;
  const check = (map: YAMLMap, seen: Set<unknown>, index: number): void => {
    const key = (map.items[index] as Pair).key;
    // NaN (.nan) never equals itself, so never repeats, though a Set would think so.
    if (!isScalar(key) || Number.isNaN(key.value)) return;
    if (!seen.has(key.value)) seen.add(key.value);
    else if (repeated(map, index)) stopped = true;
  };
  // Recursion is as deep as the parser's own, which went through without an error.
  const visit = (node: unknown): void => {
    if (stopped) return;
    if (isMap(node)) {
      const seen = new Set<unknown>();
      node.items.forEach((pair, index) => {
        visit(pair.key);
        if (!node.flow) check(node, seen, index);
        visit(pair.value);
        if (node.flow) check(node, seen, index);
      });
    } else if (isSeq(node)) {
      for (const item of node.items) visit(item);
    } else if (isPair(node)) {
      visit(node.key);
      visit(node.value);
    }
  };
  visit(doc.contents);
  return stopped ? 'stopped' : 'done';
}

/** Where the parser began reading the key of `map.items[index]` (compose/resolve-*.js, keyStart). */
function keyStart(map: YAMLMap, index: number): number | undefined {
  const pair = map.items[index];
  const token = pair?.srcToken;
  if (token === undefined) return undefined;
  const before = token.start[token.start.length - 1];
  if (before !== undefined) return before.offset + before.source.length;
  // Every entry of a flow map but the first starts with a comma; the first repeats nothing.
  if (map.flow === true) return undefined;
  const previous = map.items[index - 1];
  if (previous === undefined) return map.range?.[0];
  // After an entry with a value the parser stands where that value's node ends;
  // after one without, where the tokens after its key end.
  if (isNode(previous.value)) return previous.value.range?.[2];
  const sep = previous.srcToken?.sep;
  const last = sep?.[sep.length - 1];
  if (last !== undefined) return last.offset + last.source.length;
  return isNode(previous.key) ? previous.key.range?.[2] : undefined;
}

// A fast path for catalogs written as JSON. The YAML parser reads JSON too (and
// parse-text.ts falls back to it), but at about 1 MB/s: a 20 MB catalog would take
// seconds before validation starts. JSON.parse is a hundred times faster; it is
// used only where the YAML parser would produce the same value without a word of
// complaint, so which parser ran never shows in the result.

/** Deeper than this, the YAML parser may exhaust the stack and say so; let it. */
const MAX_DEPTH = 64;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const SPACE = 0x20;
const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;

/**
 * The catalog as JSON.parse reads it, or undefined where the YAML path must decide:
 * text that is not a JSON object, repeated keys (JSON.parse keeps the last one
 * silently; YAML reports it with its position), a bare CR (no line break to YAML),
 * or nesting deeper than MAX_DEPTH.
 */
export function readJsonCatalog(text: string): { readonly value: unknown } | undefined {
  if (!startsWithBrace(text)) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  const keys = countKeys(text);
  // Every key in the text becomes a property unless an earlier one had its name.
  if (keys < 0 || keys !== countProperties(value)) return undefined;
  return { value };
}

function startsWithBrace(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === SPACE || c === LF || c === TAB || c === CR) continue;
    return c === 0x7b;
  }
  return false;
}

const isSpace = (c: number): boolean => c === SPACE || c === LF || c === TAB || c === CR;

/**
 * Object keys in text that JSON.parse accepted, or -1 when YAML would read the text
 * differently (a CR not followed by LF). In valid JSON a quote outside a string
 * opens the next string, so the scan jumps from string to string.
 */
export function countKeys(text: string): number {
  // Raw CRs can only be whitespace in valid JSON.
  for (let cr = text.indexOf('\r'); cr >= 0; cr = text.indexOf('\r', cr + 1)) {
    if (text.charCodeAt(cr + 1) !== LF) return -1;
  }
  let keys = 0;
  const end = text.length;
  for (let open = text.indexOf('"'); open >= 0; open = text.indexOf('"', open)) {
    let next = closingQuote(text, open + 1) + 1;
    while (next < end && isSpace(text.charCodeAt(next))) next++;
    if (text.charCodeAt(next) === COLON) keys++;
    open = next;
  }
  return keys;
}

/** Index of the quote that ends the string whose content starts at `from`. */
function closingQuote(text: string, from: number): number {
  for (let at = from; ;) {
    const quote = text.indexOf('"', at);
    if (quote < 0) return text.length;
    let slashes = 0;
    while (text.charCodeAt(quote - 1 - slashes) === BACKSLASH) slashes++;
    if (slashes % 2 === 0) return quote;
    at = quote + 1;
  }
}

/**
 * Own properties of every object in a JSON value, or NaN when it nests deeper
 * than MAX_DEPTH (as the text does: one level per object or array).
 */
export function countProperties(value: unknown, depth = 1): number {
  if (typeof value !== 'object' || value === null) return 0;
  if (depth > MAX_DEPTH) return Number.NaN;
  let count = 0;
  if (Array.isArray(value)) {
    for (const element of value) if (typeof element === 'object' && element !== null) count += countProperties(element, depth + 1);
    return count;
  }
  const record = value as Record<string, unknown>;
  // for…in: no array of keys per object. An inherited enumerable key (a polluted
  // prototype) would count too, and only send the text down the YAML path.
  for (const key in record) {
    count++;
    const inner = record[key];
    if (typeof inner === 'object' && inner !== null) count += countProperties(inner, depth + 1);
  }
  return count;
}

// iptables-save text → vipmesh's chains and jumps. Pure: the adapter feeds it the
// output of one save call. Foreign chains and rules are dropped here, so nothing
// above this layer can mistake them for vipmesh's.
import { BUILTIN_CHAINS, CHAIN_PREFIX, TABLES, type Table } from '../plan/types.js';
import type { ObservedIptables, ObservedTable } from './types.js';

interface TableBuilder {
  readonly chains: Map<string, string[]>;
  readonly jumps: { from: string; spec: string }[];
}

function isTable(name: string): name is Table {
  return (TABLES as readonly string[]).includes(name);
}

function isBuiltin(chain: string): boolean {
  return (BUILTIN_CHAINS as readonly string[]).includes(chain);
}

/**
 * Words of a rule spec as iptables would read them. iptables-save double-quotes
 * arguments with spaces (`--comment "a b"`), so a naive split could find a `-j`
 * inside a comment.
 */
export function splitSpec(spec: string): string[] {
  const words: string[] = [];
  let word = '';
  let started = false;
  let quoted = false;
  for (let i = 0; i < spec.length; i++) {
    const c = spec[i]!;
    if (quoted) {
      if (c === '\\' && i + 1 < spec.length) word += spec[++i];
      else if (c === '"') quoted = false;
      else word += c;
    } else if (c === '"') {
      quoted = true;
      started = true;
    } else if (c === ' ' || c === '\t') {
      if (started) words.push(word);
      word = '';
      started = false;
    } else {
      word += c;
      started = true;
    }
  }
  if (started) words.push(word);
  return words;
}

/** The `-j` target of a rule spec, if any. */
export function jumpTarget(spec: string): string | undefined {
  const words = splitSpec(spec);
  for (let i = 0; i < words.length - 1; i++) {
    if (words[i] === '-j' || words[i] === '--jump') return words[i + 1];
  }
  return undefined;
}

function freeze(builder: TableBuilder): ObservedTable {
  return { chains: builder.chains, jumps: builder.jumps };
}

/** Throws on text that is not iptables-save output (the caller reports it with context). */
export function parseIptablesSave(text: string): ObservedIptables {
  const tables = new Map<Table, TableBuilder>(TABLES.map((t) => [t, { chains: new Map(), jumps: [] }]));
  let inTable = false;
  // undefined while inside a table vipmesh does not use (raw, security).
  let current: TableBuilder | undefined;
  const lines = text.split('\n');
  lines.forEach((raw, index) => {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    const where = `line ${index + 1}`;
    if (line.trim() === '' || line.startsWith('#')) return;
    if (line.startsWith('*')) {
      if (inTable) throw new Error(`${where}: table ${line} starts before the previous one's COMMIT`);
      const name = line.slice(1);
      inTable = true;
      current = isTable(name) ? tables.get(name) : undefined;
      return;
    }
    if (!inTable) throw new Error(`${where}: not inside a table: ${line}`);
    if (line === 'COMMIT') {
      inTable = false;
      current = undefined;
      return;
    }
    if (line.startsWith(':')) {
      const chain = line.slice(1).split(' ')[0] ?? '';
      if (current && chain.startsWith(CHAIN_PREFIX) && !current.chains.has(chain)) current.chains.set(chain, []);
      return;
    }
    if (!line.startsWith('-A ')) throw new Error(`${where}: not a chain or rule line: ${line}`);
    const rest = line.slice(3);
    const space = rest.indexOf(' ');
    const chain = space < 0 ? rest : rest.slice(0, space);
    const spec = space < 0 ? '' : rest.slice(space + 1);
    if (!current) return;
    if (chain.startsWith(CHAIN_PREFIX)) {
      const rules = current.chains.get(chain) ?? [];
      rules.push(spec);
      current.chains.set(chain, rules);
    } else if (isBuiltin(chain) && jumpTarget(spec)?.startsWith(CHAIN_PREFIX)) {
      current.jumps.push({ from: chain, spec });
    }
  });
  if (inTable) throw new Error('the output ends inside a table (no COMMIT)');
  return {
    mangle: freeze(tables.get('mangle')!),
    nat: freeze(tables.get('nat')!),
    filter: freeze(tables.get('filter')!),
  };
}

// Where iptables-restore (1.8, both backends) names an input line in its stderr.
const BLAME = [
  // A command failed; legacy also blames a table's COMMIT when the kernel refuses the whole table.
  /\bline (\d+) failed\b/,
  // nft: the kernel refused one object of the transaction, one line per object
  // (`line 4: RULE_APPEND failed (Invalid argument): rule in chain POSTROUTING`).
  /^line (\d+): [A-Z_]+ failed\b/,
  // The line does not parse.
  /Error occurred at line: (\d+)/,
  // A table is not closed; at the end of the input this is one past its last line.
  /COMMIT expected at line (\d+)/,
];

// nft resolves jumps at COMMIT, so a jump to a missing chain blames the COMMIT line.
const MISSING_CHAIN = /Chain '([^']+)' does not exist/;

const RULE_COMMANDS = new Set(['-A', '--append', '-I', '--insert', '-R', '--replace']);
const JUMPS = new Set(['-j', '--jump', '-g', '--goto']);

/** Lines of the table that `commit` (1-based) closes whose rule jumps or goes to `chain`. */
function jumpsTo(lines: readonly string[], commit: number, chain: string): number[] {
  const found: number[] = [];
  for (let n = commit - 1; n >= 1 && !lines[n - 1]!.startsWith('*'); n--) {
    const words = splitSpec(lines[n - 1]!);
    if (!RULE_COMMANDS.has(words[0] ?? '')) continue;
    if (words.some((word, i) => JUMPS.has(word) && words[i + 1] === chain)) found.unshift(n);
  }
  return found;
}

function inputLines(text: string): string[] {
  const lines = text.split('\n').map((line) => (line.endsWith('\r') ? line.slice(0, -1) : line));
  if (lines.at(-1) === '') lines.pop();
  return lines;
}

/**
 * The input lines (1-based) an iptables-restore failure blames, in the order it
 * named them; empty when it named none (e.g. a table the kernel does not have).
 */
export function restoreFailureLines(stderr: string, input: string): number[] {
  const blamed: number[] = [];
  for (const line of stderr.split('\n')) {
    for (const pattern of BLAME) {
      const match = pattern.exec(line.trim());
      if (match) blamed.push(Number(match[1]));
    }
  }
  const missing = MISSING_CHAIN.exec(stderr)?.[1];
  const lines = inputLines(input);
  const out = missing === undefined
    ? blamed
    : blamed.flatMap((n) => {
      const jumps = lines[n - 1]?.trim() === 'COMMIT' ? jumpsTo(lines, n, missing) : [];
      return jumps.length > 0 ? jumps : [n];
    });
  return [...new Set(out)];
}

/** iptables-restore's stderr without blank lines and its `Try … --help` hint. */
export function restoreStderr(stderr: string): string {
  return stderr
    .split('\n')
    .map((line) => line.trimEnd())
    .filter((line) => line !== '' && !line.startsWith('Try `'))
    .join('\n');
}

/**
 * The blamed lines with `context` lines either side, numbered, each blamed one
 * marked `>`; separate stretches are parted by `…`. A line one past the end
 * (an unclosed table) shows as `(end of input)`.
 */
export function quoteInput(text: string, blamed: readonly number[], context = 2): string {
  const lines = inputLines(text);
  const marked = new Set(blamed.filter((n) => n >= 1 && n <= lines.length + 1));
  if (marked.size === 0) return '';
  const shown = new Set<number>();
  for (const n of marked) {
    for (let k = Math.max(1, n - context); k <= Math.min(lines.length + 1, n + context); k++) {
      if (k <= lines.length || marked.has(k)) shown.add(k);
    }
  }
  const order = [...shown].sort((a, b) => a - b);
  const width = String(order.at(-1)).length;
  const out: string[] = [];
  order.forEach((n, i) => {
    if (i > 0 && n !== order[i - 1]! + 1) out.push(`  ${' '.repeat(width)} …`);
    const content = n > lines.length ? '(end of input)' : lines[n - 1];
    out.push(`${marked.has(n) ? '>' : ' '} ${String(n).padStart(width)} | ${content}`);
  });
  return out.join('\n');
}

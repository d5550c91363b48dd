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

/**
 * The input line iptables-restore blamed: legacy and nft print `…: line 7 failed`,
 * parse errors print `Error occurred at line: 7`.
 */
export function restoreFailureLine(stderr: string): number | undefined {
  const match = /\bline (\d+) failed/.exec(stderr) ?? /Error occurred at line: (\d+)/.exec(stderr);
  return match ? Number(match[1]) : undefined;
}

/** The blamed line with `context` lines either side, numbered, the blamed one marked `>`. */
export function quoteInput(text: string, line: number, context = 2): string {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  if (line < 1 || line > lines.length) return '';
  const first = Math.max(1, line - context);
  const last = Math.min(lines.length, line + context);
  const width = String(last).length;
  const out: string[] = [];
  for (let n = first; n <= last; n++) {
    out.push(`${n === line ? '>' : ' '} ${String(n).padStart(width)} | ${lines[n - 1]}`);
  }
  return out.join('\n');
}

// Chains → `iptables-restore --noflush` text. Declaring a chain (`:NAME - [0:0]`)
// creates it or, under --noflush, flushes it; its rules then refill it, all in one
// atomic transaction per table. Built-in chains are never declared, so foreign
// rules in them stay untouched.
import type { Family } from '../catalog/types.js';
import { BUILTIN_CHAINS, TABLES, type Chain, type Jump, type Table } from '../plan/types.js';
import { compareText } from '../plan/marks.js';

/** The jump rule's spec as iptables-save prints it after `-A <from> `. */
export function jumpSpec(chain: Chain, jump: Jump): string {
  return jump.match === '' ? `-j ${chain.name}` : `${jump.match} -j ${chain.name}`;
}

export interface RestoreOptions {
  /** Which jump rules to write; default all. The reconciler writes only missing ones. */
  readonly includeJump?: (chain: Chain, jump: Jump) => boolean;
}

/** One table's transaction, or '' when no chain of it is given. */
export function renderTable(table: Table, chains: readonly Chain[], options: RestoreOptions = {}): string {
  const mine = chains.filter((c) => c.table === table).sort((a, b) => compareText(a.name, b.name));
  if (mine.length === 0) return '';
  const lines = [`*${table}`];
  for (const chain of mine) lines.push(`:${chain.name} - [0:0]`);
  const jumps = mine
    .flatMap((chain) => chain.jumps.map((jump) => ({ chain, jump })))
    .filter(({ chain, jump }) => options.includeJump?.(chain, jump) ?? true)
    .sort((a, b) => BUILTIN_CHAINS.indexOf(a.jump.from) - BUILTIN_CHAINS.indexOf(b.jump.from));
  // -I puts our jump ahead of foreign rules: a published port must not be
  // caught by someone else's DNAT first, and FORWARD must accept before it drops.
  for (const { chain, jump } of jumps) lines.push(`-I ${jump.from} ${jumpSpec(chain, jump)}`);
  for (const chain of mine) for (const rule of chain.rules) lines.push(`-A ${chain.name} ${rule}`);
  lines.push('COMMIT');
  return lines.join('\n') + '\n';
}

/** Every table of one address family, in a fixed order. */
export function renderRestore(chains: readonly Chain[], family: Family, options: RestoreOptions = {}): string {
  const ofFamily = chains.filter((c) => c.family === family);
  return TABLES.map((t) => renderTable(t, ofFamily, options)).join('');
}

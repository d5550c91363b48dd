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

/** One table's changes; the plan is the case where everything is written. */
export interface TableChanges {
  /** Chains to (re)write whole: declared (so created or flushed), then refilled. */
  readonly write: readonly Chain[];
  readonly addJumps: readonly { readonly from: string; readonly spec: string }[];
  readonly deleteJumps: readonly { readonly from: string; readonly spec: string }[];
  /** vipmesh chains to remove; their jumps must be in deleteJumps. */
  readonly deleteChains: readonly string[];
}

function byBuiltinOrder(a: { from: string }, b: { from: string }): number {
  return BUILTIN_CHAINS.indexOf(a.from as never) - BUILTIN_CHAINS.indexOf(b.from as never);
}

/**
 * Order matters inside the transaction: flush (declare) first, then drop stale
 * jumps, so a chain is unreferenced and empty when it is deleted.
 */
export function renderTableChanges(table: Table, changes: TableChanges): string {
  const write = [...changes.write].sort((a, b) => compareText(a.name, b.name));
  const removed = [...changes.deleteChains].sort(compareText);
  if (write.length + removed.length + changes.addJumps.length + changes.deleteJumps.length === 0) return '';
  const lines = [`*${table}`];
  for (const name of [...write.map((c) => c.name), ...removed].sort(compareText)) lines.push(`:${name} - [0:0]`);
  for (const j of changes.deleteJumps) lines.push(`-D ${j.from} ${j.spec}`);
  for (const name of removed) lines.push(`-X ${name}`);
  // -I puts our jump ahead of foreign rules: a published port must not be
  // caught by someone else's DNAT first, and FORWARD must accept before it drops.
  for (const j of [...changes.addJumps].sort(byBuiltinOrder)) lines.push(`-I ${j.from} ${j.spec}`);
  for (const chain of write) for (const rule of chain.rules) lines.push(`-A ${chain.name} ${rule}`);
  lines.push('COMMIT');
  return lines.join('\n') + '\n';
}

/** One table's whole desired state, or '' when no chain of it is given. */
export function renderTable(table: Table, chains: readonly Chain[]): string {
  const mine = chains.filter((c) => c.table === table);
  return renderTableChanges(table, {
    write: mine,
    addJumps: mine.flatMap((chain) => chain.jumps.map((jump) => ({ from: jump.from, spec: jumpSpec(chain, jump) }))),
    deleteJumps: [],
    deleteChains: [],
  });
}

/** Every table of one address family, in a fixed order. */
export function renderRestore(chains: readonly Chain[], family: Family): string {
  const ofFamily = chains.filter((c) => c.family === family);
  return TABLES.map((t) => renderTable(t, ofFamily)).join('');
}

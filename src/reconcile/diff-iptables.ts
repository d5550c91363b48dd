// Desired chains vs observed ones → one transaction per table touching only what
// differs. Rules are compared as strings, which works because the planner spells
// them the way iptables-save prints them.
import type { Family } from '../catalog/types.js';
import type { ObservedIptables } from '../kernel/types.js';
import { TABLES, type Chain } from '../plan/types.js';
import { jumpSpec, renderTableChanges } from '../render/iptables.js';
import type { Change } from './types.js';

export const isDnsChain = (name: string): boolean => name.startsWith('VIPMESH-DNS-');

function sameRules(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((rule, i) => rule === b[i]);
}

export function diffIptables(
  family: Family,
  desired: readonly Chain[],
  observed: ObservedIptables | undefined,
  manageDns: boolean,
): { restore: string; changes: Change[] } {
  const managed = (name: string) => manageDns || !isDnsChain(name);
  const changes: Change[] = [];
  let restore = '';
  const v = family === 6 ? 'ip6 ' : '';
  for (const table of TABLES) {
    const want = desired.filter((c) => c.family === family && c.table === table && managed(c.name));
    const have = observed?.[table] ?? { chains: new Map<string, readonly string[]>(), jumps: [] };
    const write: Chain[] = [];
    for (const chain of want) {
      const rules = have.chains.get(chain.name);
      if (rules === undefined) changes.push({ text: `+ ${v}${table} ${chain.name} (${chain.rules.length} rules)`, drift: true });
      else if (!sameRules(rules, chain.rules)) changes.push({ text: `~ ${v}${table} ${chain.name} (${describeRuleChange(rules, chain.rules)})`, drift: true });
      else continue;
      write.push(chain);
    }
    const wantedNames = new Set(want.map((c) => c.name));
    const deleteChains = [...have.chains.keys()].filter((name) => managed(name) && !wantedNames.has(name));
    for (const name of deleteChains) changes.push({ text: `- ${v}${table} ${name}`, drift: true });

    const wantedJumps = want.flatMap((chain) => chain.jumps.map((jump) => ({ from: jump.from as string, spec: jumpSpec(chain, jump) })));
    const seen = new Set<string>();
    const deleteJumps: { from: string; spec: string }[] = [];
    for (const jump of have.jumps) {
      const target = /-j (VIPMESH-\S+)$/.exec(jump.spec)?.[1] ?? '';
      if (!managed(target)) continue;
      const key = `${jump.from} ${jump.spec}`;
      const wanted = wantedJumps.some((w) => w.from === jump.from && w.spec === jump.spec);
      // A duplicate of a wanted jump goes too: each chain is jumped to once.
      if (wanted && !seen.has(key)) {
        seen.add(key);
        continue;
      }
      deleteJumps.push(jump);
      changes.push({ text: `- ${v}${table} jump ${jump.from} ${jump.spec}`, drift: true });
    }
    const addJumps = wantedJumps.filter((w) => !seen.has(`${w.from} ${w.spec}`));
    for (const jump of addJumps) changes.push({ text: `+ ${v}${table} jump ${jump.from} ${jump.spec}`, drift: true });
    restore += renderTableChanges(table, { write, addJumps, deleteJumps, deleteChains });
  }
  return { restore, changes };
}

function describeRuleChange(have: readonly string[], want: readonly string[]): string {
  const haveSet = new Set(have);
  const wantSet = new Set(want);
  const added = want.filter((r) => !haveSet.has(r)).length;
  const removed = have.filter((r) => !wantSet.has(r)).length;
  return added + removed === 0 ? 'rules reordered' : `${added} rules added, ${removed} removed`;
}

// An entry that fails its schema only in fields no cross-entry check reads
// (a task's weight, a service's lb, an unknown field…) is still worth
// checking against the rest of the catalog: otherwise a typo in one field
// would hide, say, that entry's clash with another's address. Such an entry
// is rebuilt without the bad fields and parsed again; it never reaches a
// Catalog, since its own problems are already reported.
import type { z } from 'zod';
import type { SectionName } from './schema.js';

interface Rule {
  /** Fields the cross-entry checks never read. */
  readonly loose: readonly string[];
  /** Fields blamed by an entry-level rule (one of netns/pid). */
  readonly root: readonly string[];
  /** Stand-ins, by bad field, for what the entry then lacks to parse at all. */
  readonly stand: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
}

const RULES: Readonly<Record<SectionName, Rule>> = {
  networks: { loose: [], root: [], stand: {} },
  nodes: { loose: ['address', 'netns'], root: [], stand: { address: { address: '0.0.0.0' } } },
  services: { loose: ['lb', 'healthcheck'], root: [], stand: {} },
  tasks: {
    loose: ['netns', 'pid', 'health', 'weight'], root: ['netns', 'pid'], stand: { netns: { netns: '/' }, pid: { netns: '/' } },
  },
};

export interface Salvaged {
  readonly entry: Record<string, unknown>;
  /** Fields whose value in `entry` is a stand-in, not the author's: checks must not judge them. */
  readonly standIns: readonly string[];
}

/** The entry minus its unknown and loose bad fields, or undefined if a bad field matters to other checks. */
export function salvage(section: SectionName, raw: Record<string, unknown>, error: z.ZodError): Salvaged | undefined {
  const rule = RULES[section];
  const bad = new Set<string>();
  const unknown = new Set<string>();
  for (const issue of error.issues) {
    const [field] = issue.path;
    if (issue.code === 'unrecognized_keys' && field === undefined) issue.keys.forEach((k) => unknown.add(k));
    else if (typeof field === 'string') bad.add(field);
    else if (field === undefined && issue.code === 'custom') rule.root.forEach((f) => bad.add(f));
    else return undefined;
  }
  if ([...bad].some((f) => !rule.loose.includes(f))) return undefined;
  const entry = Object.fromEntries(Object.entries(raw).filter(([k]) => !bad.has(k) && !unknown.has(k)));
  const stands = [...bad].flatMap((f) => (Object.hasOwn(rule.stand, f) ? [rule.stand[f] ?? {}] : []));
  Object.assign(entry, ...stands);
  return { entry, standIns: stands.flatMap((stand) => Object.keys(stand)) };
}

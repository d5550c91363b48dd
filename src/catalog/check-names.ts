// Names become DNS names (services, aliases, tasks, PTR networks) or host
// names (nodes), so they follow RFC 1123 and collide case-insensitively.
import type { Draft } from './draft.js';
import { joinPath, problem, quoted, shown, sortText } from './problems.js';
import type { CatalogProblem } from './types.js';

const LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
/** Dot-separated LABELs: what splitting on dots and testing each part decides, in one pass. */
const DOTTED_LABELS = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const MAX_DNS_NAME = 253;
const LABEL_RULE = '1 to 63 letters, digits and hyphens, not starting or ending with a hyphen';

export function isLabel(name: string): boolean {
  return LABEL.test(name);
}

export function labelProblem(path: string, name: string): CatalogProblem | undefined {
  return isLabel(name) ? undefined : problem(path, `${quoted(name)} is not a valid name: use ${LABEL_RULE}`);
}

export function taskNameProblem(path: string, name: string): CatalogProblem | undefined {
  if (name.length > MAX_DNS_NAME) {
    return problem(path, `the task name is ${name.length} characters long; at most ${MAX_DNS_NAME} are allowed`);
  }
  if (DOTTED_LABELS.test(name)) return undefined;
  return problem(path, `${quoted(name)} is not a valid task name: use dot-separated labels of ${LABEL_RULE}`);
}

interface Claim {
  readonly name: string;
  readonly path: string;
  readonly what: string;
  /** For service names and aliases: the service the name leads to. */
  readonly service?: string;
  readonly isAlias?: boolean;
}

/** First claim of a name wins; each later one (compared case-insensitively) is reported. */
function collisions(claims: readonly Claim[], describe: (later: Claim, first: Claim) => string): CatalogProblem[] {
  const seen = new Map<string, Claim>();
  const out: CatalogProblem[] = [];
  for (const claim of claims) {
    const key = claim.name.toLowerCase();
    const first = seen.get(key);
    if (first === undefined) seen.set(key, claim);
    else {
      const caseNote = first.name === claim.name ? '' : ' (names are case-insensitive)';
      out.push(problem(claim.path, describe(claim, first) + caseNote));
    }
  }
  return out;
}

const sameName = (later: Claim, first: Claim): string => `${quoted(later.name)} is the same name as ${first.what}`;

function rawNames(section: { entries: ReadonlyMap<string, unknown>; broken: ReadonlySet<string> }): string[] {
  // Entries are kept in name order already (draft.ts).
  if (section.broken.size === 0) return [...section.entries.keys()];
  return sortText([...section.entries.keys(), ...section.broken]);
}

const RESERVED = 'it would shadow the tasks.<service> lookups';

function serviceNames(draft: Draft): CatalogProblem[] {
  const out: CatalogProblem[] = [];
  const claims: Claim[] = [];
  const names = rawNames(draft.services);
  for (const name of names) {
    const path = joinPath('services', name);
    const bad = labelProblem(path, name);
    if (bad !== undefined) out.push(bad);
    else if (name.toLowerCase() === 'tasks') out.push(problem(path, `a service can't be named "tasks": ${RESERVED}`));
    else claims.push({ name, path, what: `service ${shown(name)}`, service: name });
  }
  // Aliases come after every service name, so an alias is blamed rather than the service it shadows.
  for (const [name, { service }] of draft.services.entries) {
    for (const [i, alias] of service.aliases.entries()) {
      const path = `${joinPath('services', name)}.aliases[${i}]`;
      const bad = labelProblem(path, alias);
      if (bad !== undefined) out.push(bad);
      else if (alias.toLowerCase() === 'tasks') out.push(problem(path, `an alias can't be "tasks": ${RESERVED}`));
      else claims.push({ name: alias, path, what: `an alias of service ${shown(name)}`, service: name, isAlias: true });
    }
  }
  out.push(...collisions(claims, (later, first) => {
    if (first.isAlias === true) return `${quoted(later.name)} is already ${first.what}`;
    if (later.isAlias !== true) return sameName(later, first);
    return first.service === later.service
      ? `${quoted(later.name)} is already the service's own name`
      : `${quoted(later.name)} is already the name of ${first.what}`;
  }));
  return out;
}

function taskNames(draft: Draft): CatalogProblem[] {
  const out: CatalogProblem[] = [];
  const serviceClaims = new Map<string, string>();
  for (const [name, { service }] of draft.services.entries) {
    serviceClaims.set(name.toLowerCase(), `the name of service ${shown(name)}`);
    for (const alias of service.aliases) {
      if (!serviceClaims.has(alias.toLowerCase())) serviceClaims.set(alias.toLowerCase(), `an alias of service ${shown(name)}`);
    }
  }
  // collisions(), inline: a catalog may hold 100 000 task names, and a claim object per name adds up.
  const first = new Map<string, string>();
  const clashes: CatalogProblem[] = [];
  for (const name of rawNames(draft.tasks)) {
    const lower = name.toLowerCase();
    const shadowed = serviceClaims.get(lower);
    const owner = first.get(lower);
    if (owner === undefined) first.set(lower, name);
    const plain = DOTTED_LABELS.test(name) && name.length <= MAX_DNS_NAME && !lower.startsWith('tasks.');
    if (plain && shadowed === undefined && owner === undefined) continue;
    // Something to say: only now is the path spelled out.
    const path = joinPath('tasks', name);
    const bad = taskNameProblem(path, name);
    if (bad !== undefined) out.push(bad);
    else if (lower.startsWith('tasks.')) {
      out.push(problem(path, `a task name can't start with "tasks.": ${RESERVED}`));
    } else if (shadowed !== undefined) {
      out.push(problem(path, `${quoted(name)} is already ${shadowed}; DNS could not tell them apart`));
    }
    if (owner !== undefined) {
      const caseNote = owner === name ? '' : ' (names are case-insensitive)';
      clashes.push(problem(path, `${quoted(name)} is the same name as task ${shown(owner)}${caseNote}`));
    }
  }
  return [...out, ...clashes];
}

function plainNames(draft: Draft, section: 'networks' | 'nodes', what: string): CatalogProblem[] {
  const out: CatalogProblem[] = [];
  const claims: Claim[] = [];
  for (const name of rawNames(draft[section])) {
    const path = joinPath(section, name);
    const bad = labelProblem(path, name);
    if (bad !== undefined) out.push(bad);
    claims.push({ name, path, what: `${what} ${shown(name)}` });
  }
  return [...out, ...collisions(claims, sameName)];
}

export function checkNames(draft: Draft): CatalogProblem[] {
  return [
    ...plainNames(draft, 'networks', 'network'),
    ...plainNames(draft, 'nodes', 'node'),
    ...serviceNames(draft),
    ...taskNames(draft),
  ];
}

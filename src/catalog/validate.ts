import { checkDuplicateAddresses } from './check-addresses.js';
import { checkNamespaces } from './check-namespaces.js';
import { checkNames } from './check-names.js';
import { checkNetworks } from './check-networks.js';
import { checkNodes } from './check-nodes.js';
import { checkPorts } from './check-ports.js';
import { checkServices } from './check-services.js';
import { checkTasks } from './check-tasks.js';
import { readDraft, type Draft } from './draft.js';
import { isRecord } from './fields.js';
import { fallbackMessage, problemsFromZod } from './issues.js';
import { namesOf } from './names.js';
import { plainTopLevel } from './plain-entries.js';
import { problem, sortProblems } from './problems.js';
import { topLevelSchema } from './schema.js';
import { rememberTaskList } from './task-list.js';
import type { Catalog, CatalogProblem } from './types.js';

export type ValidationResult =
  | { ok: true; catalog: Catalog }
  | { ok: false; problems: CatalogProblem[] };

/** Validates a parsed catalog (plain data, as from YAML or JSON) and normalizes it. */
export function validateCatalog(raw: unknown): ValidationResult {
  if (raw === null || raw === undefined) {
    return { ok: false, problems: [problem('', 'the catalog is empty: it needs at least "version: 1"')] };
  }
  if (!isRecord(raw)) {
    return { ok: false, problems: [problem('', 'the catalog must be a map at the top level (version, networks, nodes, services, tasks)')] };
  }
  // Another version's catalog means something else field by field; judging it by version 1's rules would mislead.
  if (typeof raw.version === 'number' && raw.version !== 1) {
    return { ok: false, problems: [problem('version', `this vipmesh reads catalog version 1 only, not version ${raw.version}`)] };
  }
  const problems: CatalogProblem[] = [];
  if (!plainTopLevel(raw)) {
    const top = topLevelSchema.safeParse(raw, fallbackMessage);
    if (!top.success) problems.push(...problemsFromZod('', top.error));
  }
  const draft = readDraft(raw, problems);
  problems.push(
    ...checkNames(draft), ...checkNetworks(draft), ...checkNodes(draft), ...checkServices(draft),
    ...checkTasks(draft), ...checkNamespaces(draft), ...checkDuplicateAddresses(draft), ...checkPorts(draft),
  );
  if (problems.length > 0) return { ok: false, problems: sortProblems(problems) };
  return { ok: true, catalog: toCatalog(draft) };
}

function toCatalog(draft: Draft): Catalog {
  const catalog: Catalog = {
    version: 1,
    networks: namesOf(draft.networks.entries),
    nodes: namesOf(draft.nodes.entries),
    services: namesOf([...draft.services.entries].map(([name, { service }]) => [name, service] as const)),
    tasks: namesOf(draft.tasks.entries),
  };
  // Draft entries are in key order (draft.ts).
  rememberTaskList(catalog, [...draft.tasks.entries.values()]);
  return catalog;
}

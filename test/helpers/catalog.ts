import { parseCatalog } from '../../src/catalog/load.js';
import { formatProblems } from '../../src/catalog/problems.js';
import type { Catalog } from '../../src/catalog/types.js';
import type { NodeFacts } from '../../src/plan/types.js';

export function catalogOf(yaml: string): Catalog {
  const result = parseCatalog(yaml);
  if (!result.ok) throw new Error(`test catalog is invalid:\n${formatProblems(result.problems)}`);
  return result.catalog;
}

export function facts(overrides: Partial<NodeFacts> = {}): NodeFacts {
  return {
    kernelRelease: '6.1.0-28-cloud-amd64',
    resolverPorts: new Map(),
    marks: new Map(),
    probes: new Map(),
    ...overrides,
  };
}

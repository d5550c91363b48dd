// vipmesh as a library, for programs that embed the catalog loader and the
// planner (a controller that validates catalogs before it publishes them, a UI
// that shows what a node would program). Everything here is pure but the
// loader's file read; the kernel, the pass and the agent stay internal until a
// caller needs them.
export { loadCatalog, parseCatalog, type LoadResult } from './catalog/load.js';
export { formatProblems } from './catalog/problems.js';
export type * from './catalog/types.js';
export { EMPTY_FACTS, planNode } from './plan/index.js';
export type {
  Balanced, Chain, NamespacePlan, NamespaceRole, NodeFacts, NodePlan, RealServer, ResolverPorts, Sysctl, VirtualService,
} from './plan/types.js';
export { renderPlanJson, renderPlanJsonChunks, renderPlanText, renderPlanTextChunks } from './render/plan.js';

// The import rules of the house (STYLE.md): no import cycles anywhere, and the pure
// layers (catalog validation, plan, render, the diffs, resolver records and wire, the etcd
// key layout) do no
// I/O. `npm run check:deps` prints every violation; test/unit/imports.test.ts runs the same
// check inside `npm test`.

/** The modules that must stay pure: given the same input, the same output, no I/O. */
const PURE = [
  '^src/catalog/', // all but the loader, below
  '^src/plan/',
  '^src/render/',
  '^src/reconcile/diff[^/]*[.]ts$',
  '^src/reconcile/fingerprint[.]ts$',
  '^src/resolver/records[.]ts$',
  '^src/resolver/wire[.]ts$',
  '^src/cluster/(layout|source|view|push-diff)[.]ts$',
  '^src/agent/liveness[.]ts$',
  '^src/lab/(topology|facts)[.]ts$',
];
/** Pure modules' neighbours that do read files, so they sit outside PURE. */
const NOT_PURE = ['^src/catalog/load[.]ts$'];
/** What I/O comes in through: files, sockets, processes. */
const IO = [
  '^(node:)?(fs|net|dgram|child_process)(/|$)',
  '(^|/)node_modules/execa/',
  '^execa$',
  '(^|/)node_modules/(etcd3|@grpc)/',
  '^etcd3$',
];

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-cycle',
      severity: 'error',
      comment: 'An import cycle, type-only imports included: layers go one way (STYLE.md).',
      from: {},
      to: { circular: true },
    },
    {
      name: 'pure-imports-no-io',
      severity: 'error',
      comment: 'A pure module imports files, sockets or processes.',
      from: { path: PURE, pathNot: NOT_PURE },
      to: { path: IO },
    },
    {
      name: 'pure-imports-no-kernel',
      severity: 'error',
      comment:
        'A pure module imports kernel code. Only its types may be imported (`import type`): ' +
        'they are gone once compiled.',
      from: { path: PURE, pathNot: NOT_PURE },
      to: { path: '^src/kernel/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'pure-reaches-no-io',
      severity: 'error',
      comment: 'A pure module reaches files, sockets or processes through the modules it imports.',
      from: { path: PURE, pathNot: NOT_PURE },
      to: { path: IO, reachable: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Type-only imports vanish from the compiled output; read the TypeScript so that a
    // cycle through them still counts.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types', 'typings'],
    },
    skipAnalysisNotInRules: true,
  },
};

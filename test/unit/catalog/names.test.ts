// Names that are also JavaScript object internals. `constructor`, `toString`,
// `valueOf` and `hasOwnProperty` are valid DNS labels, so a catalog may use
// them for anything; `__proto__` is not, and must be refused rather than lost.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCatalog } from '../../../src/catalog/load.js';
import { emptyNames, lookup, namesOf, noNames } from '../../../src/catalog/names.js';
import { formatProblems } from '../../../src/catalog/problems.js';
import type { Catalog } from '../../../src/catalog/types.js';
import { EMPTY_FACTS, planNode } from '../../../src/plan/index.js';
import { renderPlanText } from '../../../src/render/plan.js';

const INHERITED = ['constructor', 'toString', 'valueOf', 'hasOwnProperty', 'isPrototypeOf', 'propertyIsEnumerable', 'toLocaleString'];

function accept(text: string): Catalog {
  const result = parseCatalog(text);
  if (!result.ok) assert.fail(`expected a valid catalog, got:\n${formatProblems(result.problems)}`);
  return result.catalog;
}

function problemsOf(text: string): string[] {
  const result = parseCatalog(text);
  if (result.ok) assert.fail('expected the catalog to be rejected');
  return formatProblems(result.problems).split('\n');
}

test('a record of names finds its own entries only, __proto__ included', () => {
  const names = namesOf([['a', 1], ['__proto__', 2]]);
  assert.equal(names['a'], 1);
  assert.equal(names['__proto__'], 2, 'an own entry, not the prototype');
  assert.deepEqual(Object.keys(names), ['a', '__proto__']);
  const empty = emptyNames<number>();
  for (const name of [...INHERITED, '__proto__', '__defineGetter__']) {
    assert.equal(empty[name], undefined, name);
    assert.equal(noNames<number>()[name], undefined, name);
    assert.equal(name in empty, false, name);
  }
  empty['__proto__'] = 3;
  assert.equal(Object.hasOwn(empty, '__proto__'), true, 'writing __proto__ makes an entry, it sets no prototype');
  const plain: Record<string, number> = { a: 1 };
  assert.equal(lookup(plain, 'constructor'), undefined, 'lookup ignores what a plain object inherits');
  assert.equal(lookup(plain, 'a'), 1);
});

test('every record of a validated catalog inherits no name', () => {
  const catalog = accept(`
version: 1
networks: { appnet: { subnet: 10.0.1.0/24 } }
nodes: { node-1: { address: 192.0.2.11 } }
services:
  fast: { vips: { appnet: 10.0.1.2 } }
  slow: { vips: { appnet: 10.0.1.4 }, healthcheck: { tcp: 80 } }
tasks:
  fast.1: { service: fast, node: node-1, netns: /run/netns/f, addresses: { appnet: 10.0.1.3 } }
  slow.1: { service: slow, node: node-1, pid: 42, addresses: { appnet: 10.0.1.5 }, weight: 2 }
  bare: { node: node-1, netns: /run/netns/b }
`);
  // fast.* take the hand-written readers, slow.* zod: both must give such records.
  const records = [
    catalog.networks, catalog.nodes, catalog.services, catalog.tasks,
    ...Object.values(catalog.services).map((s) => s.vips), ...Object.values(catalog.tasks).map((t) => t.addresses),
  ];
  for (const record of records) {
    for (const name of [...INHERITED, '__proto__']) assert.equal(record[name], undefined, `${name} in ${JSON.stringify(record)}`);
  }
});

test('inherited names work as network, node, service and task names', () => {
  const catalog = accept(`
version: 1
networks:
  constructor: { subnet: 10.0.1.0/24 }
  toString: { subnet: 10.0.2.0/24 }
  ingress: { subnet: 10.255.0.0/16, ingress: true }
nodes:
  valueOf: { address: 192.0.2.11, ingressSandbox: { netns: /run/netns/sbox, address: 10.255.0.2 } }
services:
  hasOwnProperty:
    vips: { constructor: 10.0.1.2, toString: 10.0.2.2 }
    ports: [{ target: 80, published: 8080 }]
  isPrototypeOf: { vips: { constructor: 10.0.1.9 } }
tasks:
  hasOwnProperty.1: { service: hasOwnProperty, node: valueOf, netns: /run/netns/h1, addresses: { constructor: 10.0.1.3, toString: 10.0.2.3, ingress: 10.255.0.3 } }
  toLocaleString: { service: isPrototypeOf, node: valueOf, netns: /run/netns/t, addresses: { constructor: 10.0.1.4 } }
`);
  // Through a string, as a name from a file or a command line comes: the type would name Object's members.
  const [valueOf, hasOwnProperty, toString] = ['valueOf', 'hasOwnProperty', 'toString'] as [string, string, string];
  assert.equal(catalog.nodes[valueOf]?.address, '192.0.2.11');
  assert.equal(catalog.services[hasOwnProperty]?.vips[toString], '10.0.2.2');
  const plan = planNode(catalog, 'valueOf', EMPTY_FACTS);
  const text = renderPlanText(plan);
  // toLocaleString has no address on toString: the VIP of hasOwnProperty there is not its to reach.
  const client = plan.namespaces.find((ns) => ns.task === 'toLocaleString');
  assert.deepEqual(client?.ipvs.map((s) => s.label), ['hasOwnProperty/constructor', 'isPrototypeOf/constructor']);
  assert.doesNotMatch(text, /function|native code|undefined|\[object/);
  assert.match(text, /-d 10\.0\.2\.2\/32 -m comment --comment "hasOwnProperty\/toString"/);
});

test('a missing address on a network named constructor is reported, not taken from Object.prototype', () => {
  assert.deepEqual(problemsOf(`
version: 1
networks:
  appnet: { subnet: 10.0.1.0/24 }
  constructor: { subnet: 10.0.3.0/24 }
  valueOf: { subnet: 10.255.0.0/16, ingress: true }
nodes:
  node-1: { address: 192.0.2.11, ingressSandbox: { netns: /run/netns/sbox, address: 10.255.0.2 } }
services:
  web: { vips: { appnet: 10.0.1.2, constructor: 10.0.3.2 }, ports: [{ target: 80, published: 80 }] }
tasks:
  web.1: { service: web, node: node-1, netns: /run/netns/web-1, addresses: { appnet: 10.0.1.3 } }
`), [
    'tasks.web.1.addresses: has no address on constructor, a network of service web',
    'tasks.web.1.addresses: has no address on the ingress network valueOf, which service web\'s ingress-mode ports need',
  ]);
});

test('references to inherited names that name nothing are unknown', () => {
  assert.deepEqual(problemsOf(`
version: 1
networks: { appnet: { subnet: 10.0.1.0/24 } }
nodes: { node-1: { address: 192.0.2.11 } }
services:
  web: { vips: { appnet: 10.0.1.2, toString: 10.0.9.2 }, ports: [{ target: 80, published: 80, mode: host, network: valueOf }] }
  rr: { endpointMode: dnsrr, networks: [constructor] }
tasks:
  a: { service: constructor, node: toString, netns: /run/netns/a, addresses: { hasOwnProperty: 10.0.1.3 } }
`), [
    'services.rr.networks[0]: unknown network "constructor"',
    'services.web.ports[0].network: unknown network "valueOf"',
    'services.web.vips.toString: unknown network "toString"',
    'tasks.a.addresses.hasOwnProperty: unknown network "hasOwnProperty"',
    'tasks.a.node: unknown node "toString"',
    'tasks.a.service: unknown service "constructor"',
  ]);
});

test('__proto__ as a key anywhere is refused, in YAML and in JSON alike', () => {
  const yaml = `
version: 1
__proto__: { networks: {} }
networks:
  appnet: { subnet: 10.0.1.0/24 }
nodes:
  node-1: { address: 192.0.2.11, __proto__: { netns: /run/netns/x } }
  __proto__: { address: 192.0.2.12 }
services:
  web: { vips: { appnet: 10.0.1.2, __proto__: 10.0.2.2 }, lb: { __proto__: { scheduler: wlc } } }
  __proto__: { vips: { appnet: 10.0.1.9 } }
tasks:
  web.1: { service: web, node: node-1, netns: /run/netns/w, addresses: { appnet: 10.0.1.3, __proto__: 10.0.2.3 } }
  __proto__: { node: node-1, netns: /run/netns/p }
`;
  const expected = [
    '__proto__: unknown field "__proto__"',
    'nodes.__proto__: "__proto__" is not a valid name: use 1 to 63 letters, digits and hyphens, not starting or ending with a hyphen',
    'nodes.node-1.__proto__: unknown field "__proto__"',
    'services.__proto__: "__proto__" is not a valid name: use 1 to 63 letters, digits and hyphens, not starting or ending with a hyphen',
    'services.web.lb.__proto__: unknown field "__proto__"',
    'services.web.vips.__proto__: unknown network "__proto__"',
    'tasks.__proto__: "__proto__" is not a valid task name: use dot-separated labels of 1 to 63 letters, digits and hyphens, '
      + 'not starting or ending with a hyphen',
    'tasks.web.1.addresses.__proto__: unknown network "__proto__"',
  ];
  assert.deepEqual(problemsOf(yaml), expected);
  const json = JSON.stringify({
    version: 1,
    networks: { appnet: { subnet: '10.0.1.0/24' } },
    nodes: { 'node-1': { address: '192.0.2.11' } },
    services: { web: { vips: { appnet: '10.0.1.2' } } },
    tasks: { 'web.1': { service: 'web', node: 'node-1', netns: '/run/netns/w', addresses: { appnet: '10.0.1.3' } } },
  }).replace('"appnet":"10.0.1.3"', '"appnet":"10.0.1.3","__proto__":"10.0.2.3"')
    .replace('"appnet":"10.0.1.2"', '"appnet":"10.0.1.2","__proto__":"10.0.2.2"');
  assert.deepEqual(problemsOf(json), [
    'services.web.vips.__proto__: unknown network "__proto__"',
    'tasks.web.1.addresses.__proto__: unknown network "__proto__"',
  ]);
});

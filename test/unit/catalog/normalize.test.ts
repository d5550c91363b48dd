import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCatalog } from '../../../src/catalog/load.js';
import { formatProblems } from '../../../src/catalog/problems.js';
import type { Catalog } from '../../../src/catalog/types.js';

/**
 * The catalog as plain data: its records inherit nothing (names.ts), which
 * deepStrictEqual would count against them when compared with a literal.
 */
function accept(text: string): Catalog {
  const result = parseCatalog(text);
  if (!result.ok) assert.fail(`expected a valid catalog, got:\n${formatProblems(result.problems)}`);
  return structuredClone(result.catalog);
}

const MINIMAL = `
version: 1
networks:
  appnet: { subnet: 10.0.1.0/24 }
  ingress: { subnet: 10.255.0.0/16, ingress: true }
nodes:
  node-1:
    address: 192.0.2.11
    ingressSandbox: { netns: /run/netns/ingress_sbox, address: 10.255.0.2 }
services:
  whoami:
    vips: { appnet: 10.0.1.2 }
    ports:
      - { target: 80, published: 8080 }
tasks:
  whoami.1.698qak908bz8:
    service: whoami
    node: node-1
    pid: 1234
    addresses: { appnet: 10.0.1.3, ingress: 10.255.0.7 }
`;

test('defaults are filled in and pid becomes a namespace path', () => {
  const catalog = accept(MINIMAL);
  assert.deepEqual(catalog.services.whoami, {
    name: 'whoami',
    endpointMode: 'vip',
    vips: { appnet: '10.0.1.2' },
    networks: ['appnet'],
    aliases: [],
    ports: [{ target: 80, published: 8080, protocol: 'tcp', mode: 'ingress' }],
    lb: { scheduler: 'rr', persistence: 0, drainTimeout: 60 },
  });
  assert.deepEqual(catalog.tasks['whoami.1.698qak908bz8'], {
    name: 'whoami.1.698qak908bz8',
    service: 'whoami',
    node: 'node-1',
    netns: '/proc/1234/ns/net',
    addresses: { appnet: '10.0.1.3', ingress: '10.255.0.7' },
    state: 'running',
    health: 'unknown',
    weight: 1,
  });
  assert.deepEqual(catalog.networks.appnet, { name: 'appnet', subnet: '10.0.1.0/24', family: 4, ingress: false });
  assert.deepEqual(catalog.nodes['node-1'], {
    name: 'node-1', address: '192.0.2.11', ingressSandbox: { netns: '/run/netns/ingress_sbox', address: '10.255.0.2' },
  });
  assert.equal('netns' in (catalog.nodes['node-1'] ?? {}), false, 'optional keys are left out, not set to undefined');
  assert.equal('healthcheck' in (catalog.services.whoami ?? {}), false);
});

test('a service\'s networks are sorted: the VIP networks, or the dnsrr list', () => {
  const catalog = accept(`
version: 1
networks:
  zeta: { subnet: 10.0.2.0/24 }
  alpha: { subnet: 10.0.1.0/24 }
services:
  lb: { vips: { zeta: 10.0.2.2, alpha: 10.0.1.2 }, networks: [zeta, alpha] }
  rr: { endpointMode: dnsrr, networks: [zeta, alpha] }
`);
  assert.deepEqual(catalog.services.lb?.networks, ['alpha', 'zeta']);
  assert.deepEqual(catalog.services.rr?.networks, ['alpha', 'zeta']);
  assert.deepEqual(catalog.services.rr?.vips, {});
});

test('IPv6 subnets and addresses are canonical: compressed and lowercase', () => {
  const catalog = accept(`
version: 1
networks:
  v6net: { subnet: "FD00:0001:0000:0000::/64" }
nodes:
  node-1: { address: "2001:DB8:0:0::11" }
services:
  metrics:
    endpointMode: dnsrr
    networks: [v6net]
    ports: [{ target: 9100, published: 9100, mode: host, network: v6net }]
tasks:
  metrics.1.x:
    service: metrics
    node: node-1
    netns: /run/netns/metrics-1
    addresses: { v6net: "FD00:1:0:0:0:0:0:A" }
`);
  assert.equal(catalog.networks.v6net?.subnet, 'fd00:1::/64');
  assert.equal(catalog.networks.v6net?.family, 6);
  assert.equal(catalog.nodes['node-1']?.address, '2001:db8::11');
  assert.equal(catalog.tasks['metrics.1.x']?.addresses.v6net, 'fd00:1::a');
  assert.deepEqual(catalog.services.metrics?.ports, [{ target: 9100, published: 9100, protocol: 'tcp', mode: 'host', network: 'v6net' }]);
});

test('JSON input gives the same catalog as YAML', () => {
  const json = JSON.stringify({
    version: 1,
    networks: { appnet: { subnet: '10.0.1.0/24' }, ingress: { subnet: '10.255.0.0/16', ingress: true } },
    nodes: { 'node-1': { address: '192.0.2.11', ingressSandbox: { netns: '/run/netns/ingress_sbox', address: '10.255.0.2' } } },
    services: { whoami: { vips: { appnet: '10.0.1.2' }, ports: [{ target: 80, published: 8080 }] } },
    tasks: {
      'whoami.1.698qak908bz8': {
        service: 'whoami', node: 'node-1', pid: 1234, addresses: { appnet: '10.0.1.3', ingress: '10.255.0.7' },
      },
    },
  }, null, '\t');
  assert.deepEqual(accept(json), accept(MINIMAL));
});

test('healthchecks: durations in milliseconds, defaults, and each kind of probe', () => {
  const catalog = accept(`
version: 1
networks:
  appnet: { subnet: 10.0.1.0/24 }
services:
  a: { vips: { appnet: 10.0.1.2 }, healthcheck: { tcp: 80, interval: 1m30s, timeout: 1.5, retries: 5 } }
  b: { vips: { appnet: 10.0.1.3 }, healthcheck: { http: { port: 8080 } } }
  c: { vips: { appnet: 10.0.1.4 }, healthcheck: { exec: [pg_isready, -q], interval: 500ms, timeout: 2s } }
`);
  assert.deepEqual(catalog.services.a?.healthcheck,
    { probe: { kind: 'tcp', port: 80 }, intervalMs: 90_000, timeoutMs: 1_500, retries: 5 });
  assert.deepEqual(catalog.services.b?.healthcheck,
    { probe: { kind: 'http', port: 8080, path: '/' }, intervalMs: 30_000, timeoutMs: 5_000, retries: 3 });
  assert.deepEqual(catalog.services.c?.healthcheck,
    { probe: { kind: 'exec', argv: ['pg_isready', '-q'] }, intervalMs: 500, timeoutMs: 2_000, retries: 3 });
});

test('lb settings, aliases, task state, health and weight are kept', () => {
  const catalog = accept(`
version: 1
networks:
  appnet: { subnet: 10.0.1.0/24 }
nodes:
  node-1: { address: 192.0.2.11, netns: /run/netns/node-1 }
services:
  api:
    vips: { appnet: 10.0.1.2 }
    aliases: [api-v1, API-legacy]
    lb: { scheduler: wlc, persistence: 300, drainTimeout: 0 }
tasks:
  api.1.x:
    service: api
    node: node-1
    netns: /run/netns/api-1
    addresses: { appnet: 10.0.1.3 }
    state: shutdown
    health: unhealthy
    weight: 0
`);
  assert.deepEqual(catalog.services.api?.lb, { scheduler: 'wlc', persistence: 300, drainTimeout: 0 });
  assert.deepEqual(catalog.services.api?.aliases, ['api-v1', 'API-legacy']);
  assert.equal(catalog.nodes['node-1']?.netns, '/run/netns/node-1');
  const task = catalog.tasks['api.1.x'];
  assert.deepEqual([task?.state, task?.health, task?.weight], ['shutdown', 'unhealthy', 0]);
});

test('a catalog with only a version is valid and empty; empty sections may be left blank', () => {
  assert.deepEqual(accept('version: 1\n'), { version: 1, networks: {}, nodes: {}, services: {}, tasks: {} });
  assert.deepEqual(accept('version: 1\nnetworks:\nnodes:\nservices:\ntasks:\n'),
    { version: 1, networks: {}, nodes: {}, services: {}, tasks: {} });
});

test('YAML anchors and merge keys can share settings between services', () => {
  const catalog = accept(`
version: 1
networks:
  appnet: { subnet: 10.0.1.0/24 }
services:
  a: &defaults
    vips: { appnet: 10.0.1.2 }
    lb: { scheduler: wlc }
  b:
    <<: *defaults
    vips: { appnet: 10.0.1.3 }
`);
  assert.equal(catalog.services.b?.lb.scheduler, 'wlc');
  assert.deepEqual(catalog.services.b?.vips, { appnet: '10.0.1.3' });
});

test('a /31 network has no network or broadcast address to avoid', () => {
  const catalog = accept(`
version: 1
networks:
  p2p: { subnet: 10.0.9.0/31 }
nodes:
  node-1: { address: 192.0.2.11 }
tasks:
  a: { node: node-1, netns: /run/netns/a, addresses: { p2p: 10.0.9.0 } }
  b: { node: node-1, netns: /run/netns/b, addresses: { p2p: 10.0.9.1 } }
`);
  assert.equal(Object.keys(catalog.tasks).length, 2);
});

test('a host-mode port into an IPv6 network is allowed, by default or by name', () => {
  const catalog = accept(`
version: 1
networks:
  v6net: { subnet: "fd00:1::/64" }
nodes:
  node-1: { address: 192.0.2.11 }
  node-2: { address: 192.0.2.12 }
services:
  metrics:
    endpointMode: dnsrr
    networks: [v6net]
    ports: [{ target: 9100, published: 9100, mode: host }, { target: 53, published: 53, protocol: udp, mode: host, network: v6net }]
tasks:
  metrics.1.x: { service: metrics, node: node-1, netns: /run/netns/m1, addresses: { v6net: "fd00:1::11" } }
  metrics.2.x: { service: metrics, node: node-2, netns: /run/netns/m2, addresses: { v6net: "fd00:1::12" } }
  metrics.3.x: { service: metrics, node: node-2, netns: /run/netns/m3, addresses: { v6net: "fd00:1::13" }, state: failed }
`);
  assert.equal(catalog.services.metrics?.ports.length, 2);
});

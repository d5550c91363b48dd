// Other nodes' word applied to the catalog (src/agent/liveness.ts): tasks of a
// node without a live lease and remote tasks published unhealthy do not serve;
// the local node's own tasks are never touched.
import assert from 'node:assert/strict';
import test from 'node:test';
import { NODE_DOWN_STATE, notServing, withCluster } from '../../../src/agent/liveness.js';
import type { SharedHealth } from '../../../src/cluster/view.js';
import { serves } from '../../../src/plan/serving.js';
import { catalogOf } from '../../helpers/catalog.js';

const catalog = catalogOf(`version: 1
networks: { net: { subnet: 10.0.1.0/24 } }
nodes:
  a: { address: 192.0.2.1 }
  b: { address: 192.0.2.2 }
services:
  web:
    vips: { net: 10.0.1.2 }
    healthcheck: { tcp: 80, interval: 1s, timeout: 1s, retries: 1 }
tasks:
  web.a: { service: web, node: a, netns: /run/netns/x1, addresses: { net: 10.0.1.11 } }
  web.b: { service: web, node: b, netns: /run/netns/x2, addresses: { net: 10.0.1.12 } }
  web.b2: { service: web, node: b, netns: /run/netns/x3, addresses: { net: 10.0.1.13 } }
`);

const verdict = (node: string, state: SharedHealth['state']): SharedHealth => ({ node, state, since: '2025-01-01T00:00:00.000Z' });
const serving = (c: typeof catalog): string[] =>
  Object.values(c.tasks).filter((t) => serves(c, t, 'a', new Map([['web.a', true]]))).map((t) => t.name).sort();

test('every node live and nothing published: the catalog itself', () => {
  assert.equal(withCluster(catalog, 'a', { live: new Set(['a', 'b']), health: new Map() }), catalog);
});

test('a node without its lease: its tasks stop serving here; the local node is live for itself', () => {
  const seen = withCluster(catalog, 'a', { live: new Set(), health: new Map() });
  assert.equal(seen.tasks['web.b']!.state, NODE_DOWN_STATE);
  assert.equal(seen.tasks['web.a']!.state, 'running');
  assert.deepEqual(serving(seen), ['web.a']);
  assert.deepEqual(notServing(catalog, 'a', { live: new Set(), health: new Map() }), { nodeDown: ['web.b', 'web.b2'], unhealthy: [] });
});

test('a remote verdict other than healthy stops that task; a verdict about another placement is ignored', () => {
  const health = new Map([['web.b', verdict('b', 'unhealthy')], ['web.b2', verdict('c', 'unhealthy')], ['web.a', verdict('a', 'unhealthy')]]);
  const seen = withCluster(catalog, 'a', { live: new Set(['b']), health });
  assert.deepEqual(serving(seen), ['web.a', 'web.b2'], 'web.a follows the local probe, web.b2\'s verdict names another node');
  for (const state of ['starting', 'namespace-gone'] as const) {
    const other = withCluster(catalog, 'a', { live: new Set(['b']), health: new Map([['web.b', verdict('b', state)]]) });
    assert.deepEqual(serving(other), ['web.a', 'web.b2'], state);
  }
  const back = withCluster(catalog, 'a', { live: new Set(['b']), health: new Map([['web.b', verdict('b', 'healthy')]]) });
  assert.deepEqual(serving(back), ['web.a', 'web.b', 'web.b2']);
});

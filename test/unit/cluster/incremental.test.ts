// The etcd watch's catalog kept by difference (src/cluster/incremental.ts) says
// what catalogOf says of the whole union after every change: a task put, a
// value that is not JSON (a problem of the union), mended, a service deleted
// with its task still there, and back.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ClusterCatalog, changedKeys } from '../../../src/cluster/incremental.js';
import { catalogOf, entriesOf, objectKey } from '../../../src/cluster/layout.js';
import { canonical } from '../../helpers/canonical-catalog.js';

const PREFIX = '/t';
const DOCUMENT = {
  networks: { ingress: { subnet: '10.255.0.0/16', ingress: true }, app: { subnet: '10.0.1.0/24' } },
  nodes: { n1: { address: '192.0.2.1', ingressSandbox: { netns: '/run/netns/sb', address: '10.255.0.2' } } },
  services: { web: { vips: { app: '10.0.1.2' }, ports: [{ target: 80, published: 8080 }] } },
  tasks: { 'web.1': { service: 'web', node: 'n1', netns: '/run/netns/w1', addresses: { app: '10.0.1.3', ingress: '10.255.0.3' } } },
};

test('the watch catalog kept by difference equals catalogOf of the union at every step', () => {
  let objects = entriesOf(PREFIX, DOCUMENT);
  const held = new ClusterCatalog(PREFIX, objects);
  assert.deepEqual(held.result, catalogOf(PREFIX, objects));
  const steps: [string, string | undefined][] = [
    [objectKey(PREFIX, 'tasks', 'web.2'), JSON.stringify({ service: 'web', node: 'n1', netns: '/run/netns/w2', addresses: { app: '10.0.1.4', ingress: '10.255.0.4' } })],
    [objectKey(PREFIX, 'tasks', 'web.3'), '{not json'],
    [objectKey(PREFIX, 'tasks', 'web.3'), JSON.stringify({ service: 'web', node: 'n1', netns: '/run/netns/w3', addresses: { app: '10.0.1.4', ingress: '10.255.0.5' } })],
    [objectKey(PREFIX, 'tasks', 'web.3'), undefined],
    [objectKey(PREFIX, 'services', 'web'), undefined],
    [objectKey(PREFIX, 'services', 'web'), JSON.stringify(DOCUMENT.services.web)],
    [objectKey(PREFIX, 'tasks', 'web.2'), undefined],
  ];
  const paths: string[] = [];
  for (const [key, value] of steps) {
    const next = new Map(objects);
    if (value === undefined) next.delete(key);
    else next.set(key, value);
    const update = held.update(changedKeys(objects, next), next);
    objects = next;
    paths.push(update.path);
    const full = catalogOf(PREFIX, objects);
    assert.equal(update.result.ok ? canonical(update.result.catalog) : JSON.stringify(update.result), full.ok ? canonical(full.catalog) : JSON.stringify(full), `after ${key} = ${String(value)}`);
  }
  // Valid after valid is judged by difference; the rest in full.
  assert.deepEqual(paths, ['incremental', 'full', 'full', 'full', 'full', 'full', 'incremental']);
});

import assert from 'node:assert/strict';
import test from 'node:test';
import { validateCatalog } from '../../../src/catalog/validate.js';
import { buildRecords, buildRecordsInSteps, EMPTY_RECORDS, localNamespaces, type Lookup, type Records } from '../../../src/resolver/records.js';
import { syntheticCatalog, taskName } from '../../../bench/synthetic.js';
import { catalogOf } from '../../helpers/catalog.js';
import { BULK, CLIENT, CLUSTER, NODE, sorted } from './helpers.js';

const A = 1;
const PTR = 12;
const MX = 15;
const TXT = 16;
const AAAA = 28;
const SRV = 33;
const ANY = 255;

const catalog = catalogOf(CLUSTER);
const records = buildRecords(catalog, NODE, new Map());

function data(lookup: Lookup): string[] {
  assert.equal(lookup.kind, 'answer', `expected an answer, got ${lookup.kind}`);
  return lookup.kind === 'answer' ? sorted(lookup.records.map((r) => r.data)) : [];
}

function kind(r: Records, netns: string, name: string, qtype: number): string {
  return r.lookup(netns, name, qtype).kind;
}

test('a vip-mode service and its aliases answer the VIP on the first of the task\'s networks', () => {
  // client sits on appnet and backend; web has a VIP on both: appnet comes first in name order
  assert.deepEqual(data(records.lookup(CLIENT, 'web', A)), ['10.0.1.2']);
  assert.deepEqual(data(records.lookup(CLIENT, 'www', A)), ['10.0.1.2']);
  // db.1.a sits on backend only, so it sees web's backend VIP
  assert.deepEqual(data(records.lookup('/run/netns/db1', 'web', A)), ['10.0.2.2']);
  assert.deepEqual(data(records.lookup('/run/netns/db1', 'www', A)), ['10.0.2.2']);
});

test('tasks.<service> answers every serving task; unhealthy and shut-down tasks are left out', () => {
  assert.deepEqual(data(records.lookup(CLIENT, 'tasks.web', A)), ['10.0.1.11', '10.0.1.12']);
  assert.deepEqual(data(records.lookup('/run/netns/db1', 'tasks.web', A)), ['10.0.2.11', '10.0.2.12']);
  assert.equal(kind(records, CLIENT, 'web.3.c', A), 'unknown', 'an unhealthy task has no name');
  assert.equal(kind(records, CLIENT, 'web.4.d', A), 'unknown', 'a shut-down task has no name');
});

test('task names answer the task\'s address; standalone tasks too', () => {
  assert.deepEqual(data(records.lookup(CLIENT, 'web.1.a', A)), ['10.0.1.11']);
  assert.deepEqual(data(records.lookup(CLIENT, 'loner', A)), ['10.0.1.51']);
  assert.deepEqual(data(records.lookup(CLIENT, 'client', A)), ['10.0.1.61'], 'a task resolves itself');
});

test('dnsrr: the service name answers every serving task, per family from the first network with that family', () => {
  assert.deepEqual(data(records.lookup(CLIENT, 'peers', A)), ['10.0.1.31', '10.0.1.32']);
  assert.deepEqual(data(records.lookup(CLIENT, 'peers', AAAA)), ['fd00:1::31', 'fd00:1::32']);
  assert.deepEqual(data(records.lookup(CLIENT, 'tasks.peers', AAAA)), ['fd00:1::31', 'fd00:1::32']);
  assert.deepEqual(data(records.lookup(CLIENT, 'peers.1.a', AAAA)), ['fd00:1::31']);
  assert.equal(data(records.lookup(CLIENT, 'big', A)).length, BULK);
});

test('a name found on several networks answers from the first only, never merged', () => {
  const web = data(records.lookup(CLIENT, 'tasks.web', A));
  assert.ok(web.every((a) => a.startsWith('10.0.1.')), `only appnet addresses: ${web.join(', ')}`);
  assert.deepEqual(data(records.lookup(CLIENT, 'web.1.a', A)), ['10.0.1.11']);
});

test('a known name without records of the type is NODATA, never unknown', () => {
  for (const qtype of [AAAA, MX, TXT, SRV]) {
    assert.equal(kind(records, CLIENT, 'web', qtype), 'nodata', `web type ${qtype}`);
  }
  assert.equal(kind(records, CLIENT, 'loner', AAAA), 'nodata');
  assert.equal(kind(records, CLIENT, 'web', PTR), 'nodata', 'PTR of a forward name');
  assert.equal(kind(records, CLIENT, '2.1.0.10.in-addr.arpa', A), 'nodata', 'A of a reverse name');
  // idle has a VIP; tasks.idle has no serving task but is still our name
  assert.deepEqual(data(records.lookup(CLIENT, 'idle', A)), ['10.0.1.5']);
  assert.equal(kind(records, CLIENT, 'tasks.idle', A), 'nodata');
});

test('ANY answers A and AAAA together', () => {
  assert.deepEqual(data(records.lookup(CLIENT, 'peers', ANY)), ['10.0.1.31', '10.0.1.32', 'fd00:1::31', 'fd00:1::32']);
  assert.deepEqual(data(records.lookup(CLIENT, 'web', ANY)), ['10.0.1.2']);
  assert.equal(kind(records, CLIENT, 'tasks.idle', ANY), 'nodata');
  assert.equal(kind(records, CLIENT, 'nothere', ANY), 'unknown');
});

test('only networks the asking task is attached to', () => {
  assert.equal(kind(records, CLIENT, 'hidden', A), 'unknown', 'client is not on zeta');
  assert.equal(kind(records, CLIENT, 'hidden.1.a', A), 'unknown');
  assert.equal(kind(records, '/run/netns/loner', 'db', A), 'unknown', 'loner is on appnet only');
  assert.equal(kind(records, '/run/netns/loner', 'db.1.a', A), 'unknown');
  assert.deepEqual(data(records.lookup('/run/netns/web1', 'db', A)), ['10.0.2.3']);
  assert.equal(kind(records, '/run/netns/db1', 'peers', A), 'unknown');
});

test('the ingress network never answers', () => {
  assert.ok(!data(records.lookup(CLIENT, 'web', A)).includes('10.255.0.3'));
  assert.equal(kind(records, CLIENT, '3.0.255.10.in-addr.arpa', PTR), 'unknown', 'the ingress VIP has no PTR');
  assert.equal(kind(records, CLIENT, '11.0.255.10.in-addr.arpa', PTR), 'unknown', 'nor an ingress task address');
  // edge is attached to ingress alone: it has a view, and it is empty
  assert.equal(records.hasView('/run/netns/edge'), true);
  assert.equal(kind(records, '/run/netns/edge', 'web', A), 'unknown');
  assert.equal(kind(records, '/run/netns/edge', 'edge', A), 'unknown');
});

test('PTR for task addresses (<task>.<network>) and VIPs (<service>.<network>)', () => {
  assert.deepEqual(data(records.lookup(CLIENT, '11.1.0.10.in-addr.arpa', PTR)), ['web.1.a.appnet']);
  assert.deepEqual(data(records.lookup(CLIENT, '11.2.0.10.in-addr.arpa', PTR)), ['web.1.a.backend']);
  assert.deepEqual(data(records.lookup(CLIENT, '2.1.0.10.in-addr.arpa', PTR)), ['web.appnet']);
  assert.deepEqual(data(records.lookup(CLIENT, '51.1.0.10.in-addr.arpa', PTR)), ['Loner.appnet']);
  const v6 = '1.3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.0.0.d.f.ip6.arpa';
  assert.deepEqual(data(records.lookup(CLIENT, v6, PTR)), ['peers.1.a.v6net']);
  assert.equal(kind(records, CLIENT, '13.1.0.10.in-addr.arpa', PTR), 'unknown', 'an unhealthy task has no PTR');
  assert.equal(kind(records, CLIENT, '99.1.0.10.in-addr.arpa', PTR), 'unknown');
  assert.equal(kind(records, CLIENT, '2.9.0.10.in-addr.arpa', PTR), 'unknown', 'zeta is not visible');
});

test('every name also answers as <name>.<network>, from that network only', () => {
  // appnet is client's first network; the qualified name picks backend all the same
  assert.deepEqual(data(records.lookup(CLIENT, 'web.backend', A)), ['10.0.2.2']);
  assert.deepEqual(data(records.lookup(CLIENT, 'web.appnet', A)), ['10.0.1.2']);
  assert.deepEqual(data(records.lookup(CLIENT, 'www.backend', A)), ['10.0.2.2']);
  assert.deepEqual(data(records.lookup(CLIENT, 'tasks.web.backend', A)), ['10.0.2.11', '10.0.2.12']);
  assert.deepEqual(data(records.lookup(CLIENT, 'web.1.a.backend', A)), ['10.0.2.11']);
  assert.deepEqual(data(records.lookup(CLIENT, 'db.backend', A)), ['10.0.2.3']);
  assert.deepEqual(data(records.lookup(CLIENT, 'Loner.AppNet.', A)), ['10.0.1.51']);
  assert.deepEqual(data(records.lookup(CLIENT, 'peers.v6net', AAAA)), ['fd00:1::31', 'fd00:1::32']);
  assert.deepEqual(data(records.lookup(CLIENT, 'peers.v6net', ANY)), ['fd00:1::31', 'fd00:1::32']);
  // known on that network, without records of the type: NODATA
  assert.equal(kind(records, CLIENT, 'peers.v6net', A), 'nodata');
  assert.equal(kind(records, CLIENT, 'web.backend', AAAA), 'nodata');
  assert.equal(kind(records, CLIENT, 'web.backend', MX), 'nodata');
  assert.equal(kind(records, CLIENT, 'tasks.idle.appnet', A), 'nodata');
  // a network the task is not on, the ingress network, a service not on that network
  assert.equal(kind(records, CLIENT, 'hidden.zeta', A), 'unknown');
  assert.equal(kind(records, CLIENT, 'web.zeta', A), 'unknown');
  assert.equal(kind(records, CLIENT, 'web.ingress', A), 'unknown');
  assert.equal(kind(records, CLIENT, 'db.appnet', A), 'unknown');
  assert.equal(kind(records, '/run/netns/loner', 'db.backend', A), 'unknown', 'loner is on appnet only');
});

test('what a PTR answers resolves forward again', () => {
  for (const address of ['10.0.2.11', '10.0.2.2', '10.0.1.51', '10.0.1.2']) {
    const [target] = data(records.lookup(CLIENT, `${address.split('.').reverse().join('.')}.in-addr.arpa`, PTR));
    assert.deepEqual(data(records.lookup(CLIENT, `${target!}.`, A)), [address], `${address} → ${target!}`);
  }
});

test('tasks.<alias> answers as tasks.<service>', () => {
  assert.deepEqual(data(records.lookup(CLIENT, 'tasks.www', A)), ['10.0.1.11', '10.0.1.12']);
  assert.deepEqual(data(records.lookup('/run/netns/db1', 'tasks.www', A)), ['10.0.2.11', '10.0.2.12']);
  assert.deepEqual(data(records.lookup(CLIENT, 'TASKS.www.backend', A)), ['10.0.2.11', '10.0.2.12']);
});

test('a name as it is wins over the same name read as <name>.<network>', () => {
  // Task "api.front" sits on back; service api has its VIP on front.
  const tricky = buildRecords(catalogOf(`
version: 1
networks: { front: { subnet: 10.1.0.0/24 }, back: { subnet: 10.2.0.0/24 } }
nodes: { node-1: { address: 192.0.2.11 } }
services: { api: { vips: { front: 10.1.0.2 } } }
tasks:
  api.front: { node: node-1, netns: /run/netns/apifront, addresses: { back: 10.2.0.5 } }
  both: { node: node-1, netns: /run/netns/both, addresses: { front: 10.1.0.9, back: 10.2.0.9 } }
  frontonly: { node: node-1, netns: /run/netns/frontonly, addresses: { front: 10.1.0.8 } }
`), 'node-1', new Map());
  const both = '/run/netns/both';
  assert.deepEqual(data(tricky.lookup(both, 'api.front', A)), ['10.2.0.5'], 'the task, not api on front');
  assert.equal(kind(tricky, both, 'api.front', AAAA), 'nodata', 'the task is known: no fallback to the qualified reading');
  assert.deepEqual(data(tricky.lookup(both, 'api.front.back', A)), ['10.2.0.5']);
  assert.equal(kind(tricky, both, 'api.front.front', A), 'unknown', 'the task is not on front');
  assert.deepEqual(data(tricky.lookup(both, 'api', A)), ['10.1.0.2']);
  // where the task api.front is not visible, the name is api on front
  assert.deepEqual(data(tricky.lookup('/run/netns/frontonly', 'api.front', A)), ['10.1.0.2']);
});

test('names are case-insensitive, with or without the trailing dot', () => {
  for (const name of ['WEB', 'Web.', 'wEb', 'TASKS.Web.', 'LONER', 'loner.']) {
    assert.equal(kind(records, CLIENT, name, A), 'answer', name);
  }
  assert.deepEqual(data(records.lookup(CLIENT, '11.1.0.10.IN-ADDR.ARPA.', PTR)), ['web.1.a.appnet']);
});

test('a local task with a healthcheck answers only once its probe passed; a remote one keeps the catalog\'s word', () => {
  assert.deepEqual(data(records.lookup(CLIENT, 'tasks.checked', A)), ['10.0.1.42']);
  const probed = buildRecords(catalog, NODE, new Map([['checked.1.a', true]]));
  assert.deepEqual(data(probed.lookup(CLIENT, 'tasks.checked', A)), ['10.0.1.41', '10.0.1.42']);
  const failed = buildRecords(catalog, NODE, new Map([['checked.1.a', false]]));
  assert.deepEqual(data(failed.lookup(CLIENT, 'tasks.checked', A)), ['10.0.1.42']);
});

test('one view per running local task; other namespaces have none', () => {
  assert.deepEqual(records.namespaces, [
    '/run/netns/checked1', '/run/netns/client', '/run/netns/db1', '/run/netns/edge',
    '/run/netns/loner', '/run/netns/peers1', '/run/netns/web1',
  ]);
  assert.equal(kind(records, '/run/netns/web4', 'web', A), 'no-view', 'web.4.d is shut down');
  assert.equal(kind(records, '/run/netns/web2', 'web', A), 'no-view', 'web.2.b runs on another node');
  assert.equal(kind(records, '/run/netns/nobody', 'web', A), 'no-view');
  assert.equal(kind(EMPTY_RECORDS, CLIENT, 'web', A), 'no-view');
  assert.equal(records.hasView('/run/netns/nobody'), false);
});

test('records are pre-encoded: owner pointer 0xC00C, class IN, TTL 600, the address as rdata', () => {
  const found = records.lookup(CLIENT, 'web', A);
  assert.equal(found.kind, 'answer');
  if (found.kind !== 'answer') return;
  assert.deepEqual([...found.records[0]!.wire], [0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x02, 0x58, 0, 4, 10, 0, 1, 2]);
});

test('a 10k-service catalog builds and answers right (its build time is in bench/dns-codec.ts)', () => {
  const raw = syntheticCatalog({ services: 10_000, tasksPerService: 3, networks: 20, localTasks: 200 });
  const validated = validateCatalog(raw);
  assert.ok(validated.ok, 'the synthetic catalog validates');
  if (!validated.ok) return;
  const big = buildRecords(validated.catalog, 'node-0', new Map());
  assert.equal(big.stats.views, 200);
  const netns = big.namespaces[0]!;
  // svc-00000 is on net-0 with the first local task; its VIP is the first address there
  assert.deepEqual(data(big.lookup(netns, 'svc-00000', A)), ['10.1.0.2']);
  assert.equal(data(big.lookup(netns, 'tasks.svc-00000', A)).length, 3);
});

test('a local task whose namespace is gone does not serve: out of every answer, no view of its own; the catalog is untouched', () => {
  const gone = buildRecords(catalog, NODE, new Map(), new Set(['/run/netns/web1', '/run/netns/peers1']));
  assert.deepEqual(data(gone.lookup(CLIENT, 'tasks.web', A)), ['10.0.1.12']);
  assert.equal(kind(gone, CLIENT, 'web.1.a', A), 'unknown', 'its name is no name of ours');
  assert.deepEqual(data(gone.lookup(CLIENT, 'peers', A)), ['10.0.1.32'], 'dnsrr answers without it');
  assert.deepEqual(data(gone.lookup(CLIENT, 'web', A)), ['10.0.1.2'], 'the VIP stays: the service has other tasks');
  assert.equal(kind(gone, CLIENT, '11.1.0.10.in-addr.arpa', PTR), 'unknown', 'nor does its address answer PTR');
  assert.equal(kind(gone, '/run/netns/web1', 'web', A), 'no-view');
  assert.ok(!gone.namespaces.includes('/run/netns/web1'));
  assert.ok(!gone.namespaces.includes('/run/netns/peers1'));
  assert.deepEqual(localNamespaces(catalog, NODE), [...records.namespaces], 'every running local task still has its namespace listed');
  // A path is a local namespace: a remote task that happens to use the same path is no concern of this node's.
  const remote = buildRecords(catalog, NODE, new Map(), new Set(['/run/netns/web2']));
  assert.deepEqual(data(remote.lookup(CLIENT, 'tasks.web', A)), ['10.0.1.11', '10.0.1.12']);
});

test('built in steps, the snapshot answers as one built at once, and the steps are small', () => {
  const raw = syntheticCatalog({ services: 2_000, tasksPerService: 3, networks: 5, localTasks: 20 });
  const validated = validateCatalog(raw);
  assert.ok(validated.ok);
  if (!validated.ok) return;
  const steps = buildRecordsInSteps({ catalog: validated.catalog, node: 'node-0', probes: new Map() });
  let yields = 0;
  let step = steps.next();
  for (; step.done !== true; step = steps.next()) yields++;
  const stepped = step.value;
  const whole = buildRecords(validated.catalog, 'node-0', new Map());
  assert.ok(yields >= (2_000 * 3 + 2_000) / 256, `it yields every few hundred entries: ${yields} yields`);
  assert.deepEqual(stepped.stats, whole.stats);
  assert.deepEqual(stepped.namespaces, whole.namespaces);
  for (const netns of whole.namespaces.slice(0, 5)) {
    for (const name of ['svc-00000', 'tasks.svc-00001', taskName(2, 1), 'nothing-here']) {
      assert.deepEqual(stepped.lookup(netns, name, A), whole.lookup(netns, name, A), `${netns} ${name}`);
    }
  }
});

// The resolver host and its worker without root: the message protocol, the
// catalog's wire form, and the host driving a real worker thread whose binding
// is faked on loopback sockets (fake-worker.ts): answers, ports, gone
// namespaces, counters, stop, and a worker that crashes, hangs or is refused.
// Real namespaces and dig are in test/kernel/resolver-host.test.ts.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type TestContext } from 'node:test';
import dnsPacket from 'dns-packet';
import { CHUNK, decodeCatalog, encodeCatalog } from '../../../src/resolver/catalog-wire.js';
import { type DnsCounters, type ResolverHost, type ResolverHostOptions, ResolverHostError, type SyncReport, startResolverHost } from '../../../src/resolver/host.js';
import { isRequest, isWorkerMessage } from '../../../src/resolver/protocol.js';
import { catalogOf } from '../../helpers/catalog.js';
import { IncrementalCatalog } from '../../../src/catalog/incremental.js';
import { loadCatalog } from '../../../src/catalog/load.js';
import { FIXTURES } from '../../helpers/paths.js';

const FAKE_WORKER = new URL('./fake-worker.js', import.meta.url);

const catalogYaml = (webTasks: number) => `
version: 1
networks: { appnet: { subnet: 10.0.1.0/24 } }
nodes: { node-1: { address: 192.0.2.11 }, node-2: { address: 192.0.2.12 } }
services: { web: { vips: { appnet: 10.0.1.2 } } }
tasks:
${Array.from({ length: webTasks }, (_, i) => `  web.${i + 1}.x: { service: web, node: node-1, netns: /run/netns/web${i + 1}, addresses: { appnet: 10.0.1.${11 + i} } }`).join('\n')}
  remote.1: { node: node-2, netns: /run/netns/remote1, addresses: { appnet: 10.0.1.99 } }
`;

interface World {
  readonly dir: string;
  readonly runDir: string;
  readonly logs: string[];
  readonly synced: SyncReport[];
  readonly batches: DnsCounters[];
  /** Makes a fake namespace at this path (or another one, with a new id). */
  exists(netns: string, id?: string): void;
  vanish(netns: string): void;
  set(name: 'crash-on' | 'hang-on' | 'bind-delay-ms', value: string): void;
  start(more?: Partial<ResolverHostOptions>): Promise<ResolverHost>;
}

function world(t: TestContext): World {
  const dir = mkdtempSync(join(tmpdir(), 'vipmesh-host-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const runDir = join(dir, 'run');
  mkdirSync(join(runDir, 'fake', 'ns'), { recursive: true });
  const logs: string[] = [];
  const synced: SyncReport[] = [];
  const batches: DnsCounters[] = [];
  const file = (netns: string) => join(runDir, 'fake', 'ns', encodeURIComponent(netns));
  return {
    dir,
    runDir,
    logs,
    synced,
    batches,
    exists: (netns, id = `${netns}#0`) => writeFileSync(file(netns), id),
    vanish: (netns) => unlinkSync(file(netns)),
    set: (name, value) => writeFileSync(join(runDir, 'fake', name), value),
    async start(more = {}) {
      const host = await startResolverHost({
        node: 'node-1',
        runDir,
        etcNetns: join(dir, 'etc-netns'),
        upstreams: [],
        search: [],
        retryMs: 0,
        checkMs: 0,
        countersIntervalMs: 50,
        entry: FAKE_WORKER,
        log: (level, message) => logs.push(`${level} ${message}`),
        onSync: (report) => synced.push(report),
        onCounters: (counters) => batches.push(counters),
        ...more,
      });
      t.after(() => host.stop());
      return host;
    },
  };
}

type Decoded = dnsPacket.DecodedPacket & { readonly rcode: string };

async function ask(port: number, name: string, timeoutMs = 2000): Promise<Decoded> {
  const socket = dgram.createSocket('udp4');
  try {
    const reply = new Promise<Buffer>((resolve, reject) => {
      socket.once('message', resolve);
      setTimeout(() => reject(new Error(`no reply for ${name}`)), timeoutMs).unref();
    });
    socket.send(dnsPacket.encode({ type: 'query', id: 7, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name }] }), port, '127.0.0.1');
    return dnsPacket.decode(await reply) as Decoded;
  } finally {
    socket.close();
  }
}

const addresses = (packet: dnsPacket.Packet) => (packet.answers ?? []).map((a) => ('data' in a ? String(a.data) : '')).sort();

/**
 * Each test's whole limit: one failed once under heavy load and then held its
 * file open; a hang must fail the test, not stall the suite.
 */
const HANG_MS = 60_000;

async function until(what: string, condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs; // only catches a hang
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const udpPort = (host: ResolverHost, netns: string): number => {
  const ports = host.ports().get(netns);
  assert.ok(ports !== undefined, `${netns} has ports`);
  return ports.udp;
};

test('the protocol: well-formed messages pass the guards, anything else is refused', () => {
  const wire = encodeCatalog(catalogOf(catalogYaml(1)));
  const requests: unknown[] = [
    { type: 'update', id: 1, catalog: { kind: 'whole', seq: 1, wire }, probes: [['web.1.x', true]], gone: ['/run/netns/web1'] },
    { type: 'update', id: 1, catalog: { kind: 'patch', seq: 2, base: 1, patch: { services: '[]', tasks: '[]' } }, probes: [], gone: [] },
    { type: 'update', id: 2, catalog: null, probes: [], gone: [] },
    { type: 'upstreams', id: 3, upstreams: [{ address: '192.0.2.53', port: 53 }], search: null },
    { type: 'upstreams', id: 4, upstreams: [], search: ['corp.test'] },
    { type: 'counters', id: 5 },
    { type: 'stop', id: 6 },
  ];
  for (const request of requests) assert.ok(isRequest(request), JSON.stringify(request));
  const notRequests: unknown[] = [
    null, 'stop', { type: 'stop' }, { type: 'stop', id: 1.5 }, { type: 'reboot', id: 1 },
    { type: 'update', id: 1, catalog: 'yaml', probes: [], gone: [] },
    { type: 'update', id: 1, catalog: wire, probes: [], gone: [] },
    { type: 'update', id: 1, catalog: { kind: 'patch', seq: 2, patch: { services: '[]', tasks: '[]' } }, probes: [], gone: [] },
    { type: 'update', id: 1, catalog: null, probes: [['web', 'yes']], gone: [] },
    { type: 'update', id: 1, catalog: null, probes: [], gone: [42] },
    { type: 'upstreams', id: 1, upstreams: [{ address: '192.0.2.53' }], search: null },
  ];
  for (const value of notRequests) assert.ok(!isRequest(value), JSON.stringify(value));

  const report: SyncReport = { bound: [], closed: ['/run/netns/a'], failed: [], gone: [], serving: 1 };
  const messages: unknown[] = [
    { type: 'started' },
    { type: 'start-failed', message: 'another vipmesh resolver (pid 1) serves this node' },
    { type: 'synced', id: 1, report, ports: [['/run/netns/web1', { udp: 40000, tcp: 40001 }]] },
    { type: 'synced', id: null, report, ports: [] },
    { type: 'done', id: 2 },
    { type: 'failed', id: 3, message: 'no' },
    { type: 'counters', counters: { queries: { answered: 3 }, forwardSeconds: [0.01] } },
    { type: 'log', level: 'warn', message: 'resolver: something' },
  ];
  for (const message of messages) assert.ok(isWorkerMessage(message), JSON.stringify(message));
  const notMessages: unknown[] = [
    undefined, { type: 'synced', id: 1, report, ports: [['/run/netns/web1', { udp: 'x', tcp: 1 }]] },
    { type: 'synced', id: 1, report: { bound: [] }, ports: [] },
    { type: 'counters', counters: { queries: { answered: '3' }, forwardSeconds: [] } },
    { type: 'log', level: 'debug', message: 'x' }, { type: 'done' },
  ];
  for (const message of notMessages) assert.ok(!isWorkerMessage(message), JSON.stringify(message));
});

test('the catalog crosses as chunks of JSON and comes back equal, its name records without inherited names', async () => {
  const loaded = await loadCatalog(join(FIXTURES, 'article-003-whoami.yaml'));
  assert.ok(loaded.ok);
  if (!loaded.ok) return;
  const catalog = loaded.catalog;
  const decoded = decodeCatalog(encodeCatalog(catalog));
  assert.deepEqual(JSON.parse(JSON.stringify(decoded)), JSON.parse(JSON.stringify(catalog)));

  const tricky = catalogOf(`
version: 1
networks: { appnet: { subnet: 10.0.1.0/24 } }
nodes: { node-1: { address: 192.0.2.11 } }
services: { constructor: { vips: { appnet: 10.0.1.2 } } }
tasks:
  tostring: { service: constructor, node: node-1, netns: /run/netns/t, addresses: { appnet: 10.0.1.11 } }
`);
  const back = decodeCatalog(encodeCatalog(tricky));
  assert.equal(back.services['constructor']?.name, 'constructor');
  assert.equal(back.tasks['toString'], undefined, 'no inherited member answers a name');
  assert.equal(back.tasks['valueOf'], undefined);
  assert.equal(back.networks['hasOwnProperty'], undefined);
  assert.equal(back.tasks['tostring']!.addresses['constructor'], undefined);

  const count = CHUNK * 2 + 5;
  const many = catalogOf(`
version: 1
networks: { wide: { subnet: 10.8.0.0/16 } }
nodes: { node-1: { address: 192.0.2.11 } }
tasks:
${Array.from({ length: count }, (_, i) => `  t${i}: { node: node-1, netns: /run/netns/t${i}, addresses: { wide: 10.8.${Math.floor(i / 250)}.${(i % 250) + 2} } }`).join('\n')}
`);
  const wire = encodeCatalog(many);
  assert.equal(wire.tasks.length, 3, 'tasks go in chunks');
  assert.equal(Object.keys(decodeCatalog(wire).tasks).length, count);
  assert.throws(() => decodeCatalog({ ...wire, head: '{"version":2}' }), /not a version 1 catalog/);
  assert.throws(() => decodeCatalog({ ...wire, tasks: ['{}'] }), /not a list of objects/);
});

test('the host serves through its worker: ports, answers, a new task, a catalog sent only when it changed', { timeout: HANG_MS }, async (t) => {
  const w = world(t);
  for (const i of [1, 2, 3]) w.exists(`/run/netns/web${i}`);
  const host = await w.start();
  assert.deepEqual(host.status(), { state: 'running' });
  const catalog = catalogOf(catalogYaml(2));
  const first = await host.update(catalog, new Map(), new Set());
  assert.deepEqual(first.bound.map((b) => b.netns).sort(), ['/run/netns/web1', '/run/netns/web2']);
  assert.deepEqual([...host.ports().keys()].sort(), ['/run/netns/web1', '/run/netns/web2']);
  const recorded = JSON.parse(readFileSync(join(w.runDir, 'resolver.json'), 'utf8')) as { pid: number; namespaces: Record<string, unknown> };
  assert.equal(recorded.pid, process.pid, 'the worker is a thread of this process');
  assert.deepEqual(recorded.namespaces['/run/netns/web1'], host.ports().get('/run/netns/web1'));
  assert.deepEqual(addresses(await ask(udpPort(host, '/run/netns/web1'), 'tasks.web')), ['10.0.1.11', '10.0.1.12']);

  await host.update(catalog, new Map(), new Set());
  const grown = await host.update(catalogOf(catalogYaml(3)), new Map(), new Set());
  assert.deepEqual(grown.bound.map((b) => b.netns), ['/run/netns/web3']);
  assert.deepEqual(addresses(await ask(udpPort(host, '/run/netns/web1'), 'web.3.x')), ['10.0.1.13'], 'the new task answers');
  assert.deepEqual(w.logs.filter((l) => l.includes('fake: an update')), [
    'info fake: an update with a catalog',
    'info fake: an update without a catalog',
    'info fake: an update with a catalog',
  ]);
});

test('a catalog derived from the one sent goes as a patch, and answers follow it', { timeout: HANG_MS }, async (t) => {
  const w = world(t);
  for (const i of [1, 2]) w.exists(`/run/netns/web${i}`);
  const host = await w.start();
  const web = (i: number, node: string, netns: string) => ({ service: 'web', node, netns, addresses: { appnet: `10.0.1.${10 + i}` } });
  const source = new IncrementalCatalog({
    networks: [['appnet', { subnet: '10.0.1.0/24' }]],
    nodes: [['node-1', { address: '192.0.2.11' }], ['node-2', { address: '192.0.2.12' }]],
    services: [['web', { vips: { appnet: '10.0.1.2' } }]],
    tasks: [['web.1.x', web(1, 'node-1', '/run/netns/web1')], ['web.2.x', web(2, 'node-1', '/run/netns/web2')]],
  });
  assert.ok(source.result.ok);
  if (!source.result.ok) return;
  await host.update(source.result.catalog, new Map(), new Set());
  const port = udpPort(host, '/run/netns/web1');
  assert.deepEqual(addresses(await ask(port, 'tasks.web')), ['10.0.1.11', '10.0.1.12']);

  // A remote task put, then one of the two taken twice over (two derivations, one patch).
  const grown = source.apply([{ collection: 'tasks', name: 'web.3.x', value: web(3, 'node-2', '/run/netns/web3') }]);
  assert.equal(grown.path, 'incremental');
  assert.ok(grown.result.ok);
  if (!grown.result.ok) return;
  await host.update(grown.result.catalog, new Map(), new Set());
  assert.deepEqual(addresses(await ask(port, 'tasks.web')), ['10.0.1.11', '10.0.1.12', '10.0.1.13']);
  assert.deepEqual(addresses(await ask(port, 'web.3.x')), ['10.0.1.13']);
  source.apply([{ collection: 'tasks', name: 'web.3.x', value: { ...web(3, 'node-2', '/run/netns/web3'), addresses: { appnet: '10.0.1.23' } } }]);
  const moved = source.apply([{ collection: 'tasks', name: 'web.3.x', value: { ...web(3, 'node-2', '/run/netns/web3'), addresses: { appnet: '10.0.1.33' } } }]);
  assert.ok(moved.result.ok);
  if (!moved.result.ok) return;
  await host.update(moved.result.catalog, new Map(), new Set());
  assert.deepEqual(addresses(await ask(port, 'web.3.x')), ['10.0.1.33']);
  assert.deepEqual(addresses(await ask(port, 'tasks.web')), ['10.0.1.11', '10.0.1.12', '10.0.1.33']);
  // A catalog made anew (no derivation) goes whole.
  await host.update(catalogOf(catalogYaml(2)), new Map(), new Set());
  assert.deepEqual(addresses(await ask(port, 'tasks.web')), ['10.0.1.11', '10.0.1.12']);
  assert.deepEqual(w.logs.filter((l) => l.includes('fake: an update')), [
    'info fake: an update with a catalog',
    'info fake: an update with a catalog patch',
    'info fake: an update with a catalog patch',
    'info fake: an update with a catalog',
  ]);
  assert.ok(!w.logs.some((l) => l.includes('refused')), w.logs.join('\n'));
});

test('gone namespaces: the agent\'s, out of DNS with their sockets closed; one the worker finds, reported on its own', { timeout: HANG_MS }, async (t) => {
  const w = world(t);
  for (const i of [1, 2, 3]) w.exists(`/run/netns/web${i}`);
  const host = await w.start({ checkMs: 20 });
  const catalog = catalogOf(catalogYaml(3));
  await host.update(catalog, new Map(), new Set());
  const port = udpPort(host, '/run/netns/web1');
  const web2 = udpPort(host, '/run/netns/web2');

  const report = await host.update(catalog, new Map(), new Set(['/run/netns/web2']));
  assert.deepEqual(report.closed, ['/run/netns/web2']);
  assert.deepEqual(addresses(await ask(port, 'tasks.web')), ['10.0.1.11', '10.0.1.13']);
  await assert.rejects(ask(web2, 'web', 300), /no reply/, 'its socket is closed');
  assert.ok(!host.ports().has('/run/netns/web2'));

  w.vanish('/run/netns/web3');
  await until('the worker reports web3 gone', () => w.synced.some((r) => r.gone.includes('/run/netns/web3')));
  assert.deepEqual(w.synced.find((r) => r.gone.length > 0)!.closed, ['/run/netns/web3']);
  assert.deepEqual([...host.ports().keys()], ['/run/netns/web1'], 'ports() follows the worker\'s own syncs');
  assert.deepEqual(addresses(await ask(port, 'tasks.web')), ['10.0.1.11']);
});

test('counters: batches of what the DNS counters gained, and totals on request', { timeout: HANG_MS }, async (t) => {
  const w = world(t);
  w.exists('/run/netns/web1');
  const host = await w.start();
  await host.update(catalogOf(catalogYaml(1)), new Map(), new Set());
  const port = udpPort(host, '/run/netns/web1');
  for (let i = 0; i < 3; i++) await ask(port, 'web');
  await ask(port, 'web.example'); // forwarded: there is no upstream, so SERVFAIL
  const totals = await host.counters();
  assert.equal(totals.queries.answered, 3);
  assert.equal(totals.queries.servfail, 1);
  assert.equal(totals.forwards, 1, 'the failed forward was timed too');
  const sum = (outcome: 'answered' | 'servfail') => w.batches.reduce((n, b) => n + (b.queries[outcome] ?? 0), 0);
  assert.equal(sum('answered'), 3, 'onCounters got every gain once');
  assert.equal(sum('servfail'), 1);
  assert.equal(w.batches.flatMap((b) => b.forwardSeconds).length, 1);
  assert.deepEqual((await host.counters()).queries, totals.queries, 'nothing new: nothing added');
});

test('stop closes every socket, keeps resolver.json, and ends the worker; requests after it are refused', { timeout: HANG_MS }, async (t) => {
  const w = world(t);
  w.exists('/run/netns/web1');
  const host = await w.start();
  await host.update(catalogOf(catalogYaml(1)), new Map(), new Set());
  const port = udpPort(host, '/run/netns/web1');
  const before = readFileSync(join(w.runDir, 'resolver.json'), 'utf8');
  await host.stop();
  assert.deepEqual(host.status(), { state: 'stopped' });
  assert.deepEqual(await host.exited, { state: 'stopped' });
  await assert.rejects(ask(port, 'web', 300), /no reply/);
  assert.equal(readFileSync(join(w.runDir, 'resolver.json'), 'utf8'), before);
  await assert.rejects(host.counters(), (error: unknown) => error instanceof ResolverHostError && error.kind === 'exited');
  await host.stop(); // twice is fine

  // The next host takes the same ports again.
  const next = await w.start();
  await next.update(catalogOf(catalogYaml(1)), new Map(), new Set());
  assert.equal(udpPort(next, '/run/netns/web1'), port);
});

test('a host is refused while another live resolver holds the node', { timeout: HANG_MS }, async (t) => {
  const w = world(t);
  writeFileSync(join(w.runDir, 'resolver.json'), JSON.stringify({ pid: process.ppid, namespaces: {} }));
  await assert.rejects(w.start(), (error: unknown) => {
    assert.ok(error instanceof ResolverHostError);
    assert.equal(error.kind, 'refused');
    assert.match(error.message, new RegExp(`another vipmesh resolver \\(pid ${process.ppid}\\)`));
    return true;
  });
});

test('a worker that crashes: the host fails, requests in flight are rejected, its sockets are closed', { timeout: HANG_MS }, async (t) => {
  const w = world(t);
  w.exists('/run/netns/web1');
  const host = await w.start();
  await host.update(catalogOf(catalogYaml(1)), new Map(), new Set());
  const port = udpPort(host, '/run/netns/web1');
  w.set('crash-on', 'upstreams');
  await assert.rejects(host.setUpstreams([]), (error: unknown) => error instanceof ResolverHostError && error.kind === 'exited');
  const exit = await host.exited;
  assert.equal(exit.state, 'failed');
  assert.match(exit.state === 'failed' ? exit.error : '', /crashing on upstreams/);
  assert.equal(host.status().state, 'failed');
  await assert.rejects(ask(port, 'web', 300), /no reply/, 'the thread took its sockets with it');
  await assert.rejects(host.update(catalogOf(catalogYaml(1)), new Map(), new Set()), /crashing on upstreams/);
  await host.stop(); // resolves: it has ended already

  w.set('crash-on', 'none');
  const again = await w.start();
  await again.update(catalogOf(catalogYaml(1)), new Map(), new Set());
  assert.equal(udpPort(again, '/run/netns/web1'), port, 'a new worker binds the same ports');
});

test('a worker whose loop is stuck: a cheap request times out and the worker is ended', { timeout: HANG_MS }, async (t) => {
  const w = world(t);
  const host = await w.start({ requestTimeoutMs: 300 });
  w.set('hang-on', 'counters');
  await assert.rejects(host.counters(), (error: unknown) => error instanceof ResolverHostError && error.kind === 'timeout');
  const exit = await host.exited;
  assert.equal(exit.state, 'failed');
  assert.match(exit.state === 'failed' ? exit.error : '', /did not answer a counters request within 300 ms: its loop is stuck/);
});

test('an update that takes longer than its timeout is rejected; the ports it bound still reach ports()', { timeout: HANG_MS }, async (t) => {
  const w = world(t);
  w.exists('/run/netns/web1');
  w.set('bind-delay-ms', '500');
  const host = await w.start({ updateTimeoutMs: 100 });
  await assert.rejects(host.update(catalogOf(catalogYaml(1)), new Map(), new Set()), (error: unknown) =>
    error instanceof ResolverHostError && error.kind === 'timeout');
  assert.equal(host.status().state, 'running', 'a slow bind is no stuck loop');
  await until('the late sync reaches ports()', () => host.ports().has('/run/netns/web1'));
});

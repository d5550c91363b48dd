// The resolver service without root: namespaces are "bound" by a fake that opens
// loopback sockets, so what is checked here is the bookkeeping — which
// namespaces are served, resolver.json, the /etc/netns resolv.conf files, answers
// following the catalog, failures that stay local, and taking ports again after
// a restart. Real namespaces are in test/kernel/resolver.test.ts.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { after, type TestContext } from 'node:test';
import dnsPacket from 'dns-packet';
import type { Catalog } from '../../../src/catalog/types.js';
import { BindError, type NamespaceSockets, type ResolverPorts } from '../../../src/kernel/netns-sockets.js';
import {
  type BindFn,
  type IdentifyFn,
  type ResolverService,
  type SyncReport,
  createResolverService,
  namedNamespace,
  resolvConfText,
} from '../../../src/resolver/service.js';
import { catalogOf } from '../../helpers/catalog.js';

const catalogYaml = (webTasks: number, extra = '') => `
version: 1
networks:
  appnet: { subnet: 10.0.1.0/24 }
  other: { subnet: 10.0.2.0/24 }
nodes:
  node-1: { address: 192.0.2.11 }
  node-2: { address: 192.0.2.12 }
services:
  web: { vips: { appnet: 10.0.1.2 } }
  api: { vips: { other: 10.0.2.2 } }
tasks:
${Array.from({ length: webTasks }, (_, i) => `  web.${i + 1}.x: { service: web, node: node-1, netns: /run/netns/web${i + 1}, addresses: { appnet: 10.0.1.${11 + i} } }`).join('\n')}
  api.1.x: { service: api, node: node-1, netns: /proc/4242/ns/net, addresses: { other: 10.0.2.11 } }
  remote.1: { node: node-2, netns: /run/netns/remote1, addresses: { appnet: 10.0.1.99 } }
  gone.1: { node: node-1, netns: /run/netns/gone1, addresses: { appnet: 10.0.1.98 }, state: shutdown }
${extra}`;

interface Fake {
  bind: BindFn;
  identify: IdentifyFn;
  calls: { netns: string; wanted?: ResolverPorts }[];
  open: Map<string, NamespaceSockets>;
  /** Binds that fail (the namespace is there). */
  failing: Set<string>;
  /** Paths that name no namespace; any other names namespace `<path>#<generation>`. */
  gone: Set<string>;
  /** Bumped to make a path name another namespace (deleted and made again). */
  generation: Map<string, number>;
}

/** Binds loopback sockets instead of entering namespaces. */
function fakeBind(t: TestContext): Fake {
  const calls: Fake['calls'] = [];
  const open = new Map<string, NamespaceSockets>();
  const failing = new Set<string>();
  const gone = new Set<string>();
  const generation = new Map<string, number>();
  const identify: IdentifyFn = async (netns) => (gone.has(netns) ? undefined : `${netns}#${generation.get(netns) ?? 0}`);
  const bind: BindFn = async (netns, options) => {
    calls.push({ netns, ...(options.wanted ? { wanted: options.wanted } : {}) });
    const id = await identify(netns);
    if (id === undefined) throw new BindError(netns, 'no-namespace', 'the namespace does not exist');
    if (failing.has(netns)) throw new BindError(netns, 'address', 'cannot bind udp 127.0.0.11:0: the address is not local here');
    const udp = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
    const tcp = net.createServer();
    await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
    const ports = { udp: udp.address().port, tcp: (tcp.address() as net.AddressInfo).port };
    const changed = options.wanted !== undefined && (options.wanted.udp !== ports.udp || options.wanted.tcp !== ports.tcp);
    const sockets: NamespaceSockets = { netns, id, udp, tcp, ports, changed, durationMs: 1, warnings: [] };
    open.set(netns, sockets);
    udp.on('close', () => open.delete(netns));
    return sockets;
  };
  t.after(() => {
    for (const s of open.values()) {
      s.udp.close();
      s.tcp.close();
    }
  });
  return { bind, identify, calls, open, failing, gone, generation };
}

/** Every test's directories, removed when the file's tests are done. */
const made: string[] = [];
after(() => {
  for (const base of made) rmSync(base, { recursive: true, force: true });
});

function dirs(): { run: string; etc: string } {
  const base = mkdtempSync(join(tmpdir(), 'vipmesh-service-'));
  made.push(base);
  return { run: join(base, 'run'), etc: join(base, 'etc-netns') };
}

interface Started {
  readonly s: ResolverService;
  readonly first: SyncReport;
  /** Reports of the syncs the service ran on its own. */
  readonly own: SyncReport[];
}

const input = (catalog: Catalog, gone: readonly string[] = [], probes: ReadonlyMap<string, boolean> = new Map()) => ({
  catalog,
  probes,
  gone: new Set(gone),
});

async function service(
  t: TestContext,
  fake: Fake,
  d: { run: string; etc: string },
  yaml: string,
  more: { retryMs?: number; checkMs?: number; logs?: string[] } = {},
): Promise<Started> {
  const own: SyncReport[] = [];
  const s = createResolverService({
    node: 'node-1',
    upstreams: [],
    search: ['corp.test', 'example.test'],
    runDir: d.run,
    etcNetns: d.etc,
    bind: fake.bind,
    identify: fake.identify,
    retryMs: more.retryMs ?? 0,
    checkMs: more.checkMs ?? 0,
    onSync: (report) => own.push(report),
    log: (level, message) => more.logs?.push(`${level} ${message}`),
  });
  t.after(() => s.stop());
  await s.start();
  return { s, first: await s.update(input(catalogOf(yaml))), own };
}

async function until(what: string, condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs; // only catches a hang
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Asks over UDP on the loopback socket that stands for a namespace. */
/** dns-packet decodes the rcode too; its types leave it out. */
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

const addresses = (packet: dnsPacket.Packet) =>
  (packet.answers ?? []).map((a) => ('data' in a ? String(a.data) : '')).sort();

function resolverJson(d: { run: string }): { pid: number; namespaces: Record<string, ResolverPorts> } {
  return JSON.parse(readFileSync(join(d.run, 'resolver.json'), 'utf8')) as { pid: number; namespaces: Record<string, ResolverPorts> };
}

test('namedNamespace: only /run/netns/NAME has a name that ip netns exec uses', () => {
  assert.equal(namedNamespace('/run/netns/web1'), 'web1');
  assert.equal(namedNamespace('/var/run/netns/web1'), 'web1');
  assert.equal(namedNamespace('/proc/42/ns/net'), null);
  assert.equal(namedNamespace('/run/netns/a/b'), null);
  assert.equal(namedNamespace('/run/netns/..'), null);
});

test('the first update serves every running local task namespace and records them', async (t) => {
  const fake = fakeBind(t);
  const d = dirs();
  const { first: report } = await service(t, fake, d, catalogYaml(2));
  const expected = ['/proc/4242/ns/net', '/run/netns/web1', '/run/netns/web2'];
  assert.deepEqual(report.bound.map((b) => b.netns).sort(), expected);
  assert.deepEqual(report.failed, []);
  assert.equal(report.serving, 3);

  const json = resolverJson(d);
  assert.equal(json.pid, process.pid);
  assert.deepEqual(Object.keys(json.namespaces), expected);
  for (const netns of expected) assert.deepEqual(json.namespaces[netns], fake.open.get(netns)!.ports);

  // Named namespaces get a resolv.conf; /proc/PID/ns/net has no name to hang one on.
  const conf = readFileSync(join(d.etc, 'web1', 'resolv.conf'), 'utf8');
  assert.equal(conf, resolvConfText(['corp.test', 'example.test']));
  assert.match(conf, /^nameserver 127\.0\.0\.11$/m);
  assert.match(conf, /^options ndots:0$/m);
  assert.match(conf, /^search corp\.test example\.test$/m);
  assert.ok(!existsSync(join(d.etc, 'remote1')));

  // Each socket answers from its own task's view.
  const web = await ask(fake.open.get('/run/netns/web1')!.ports.udp, 'web');
  assert.deepEqual(addresses(web), ['10.0.1.2']);
  const api = await ask(fake.open.get('/proc/4242/ns/net')!.ports.udp, 'web');
  assert.equal(api.rcode, 'SERVFAIL', 'web is not on the api task\'s network: forwarded, and there is no upstream');
});

test('a catalog change changes answers, binds newcomers and closes the sockets of tasks that leave', async (t) => {
  const fake = fakeBind(t);
  const d = dirs();
  const { s } = await service(t, fake, d, catalogYaml(3));
  const port = fake.open.get('/run/netns/web1')!.ports.udp;
  assert.deepEqual(addresses(await ask(port, 'tasks.web')), ['10.0.1.11', '10.0.1.12', '10.0.1.13']);

  const web3 = fake.open.get('/run/netns/web3')!;
  const scaled = await s.update(input(catalogOf(catalogYaml(1).replace('tasks:\n', 'tasks:\n  web.9.x: { service: web, node: node-1, netns: /run/netns/web9, addresses: { appnet: 10.0.1.19 } }\n'))));
  assert.deepEqual(scaled.bound.map((b) => b.netns), ['/run/netns/web9']);
  assert.deepEqual([...scaled.closed].sort(), ['/run/netns/web2', '/run/netns/web3']);
  assert.deepEqual(addresses(await ask(port, 'tasks.web')), ['10.0.1.11', '10.0.1.19'], 'same socket, new answers');
  assert.ok(!fake.open.has('/run/netns/web3'), 'the leaving task\'s socket is closed');
  await assert.rejects(ask(web3.ports.udp, 'web', 300), /no reply/);
  assert.deepEqual(Object.keys(resolverJson(d).namespaces), ['/proc/4242/ns/net', '/run/netns/web1', '/run/netns/web9']);
  assert.ok(!existsSync(join(d.etc, 'web3')), 'its resolv.conf and the directory went too');
  assert.ok(existsSync(join(d.etc, 'web9', 'resolv.conf')));
});

test('one namespace failing to bind stops no other, and it is tried again', async (t) => {
  const fake = fakeBind(t);
  fake.failing.add('/run/netns/web2');
  const d = dirs();
  const logs: string[] = [];
  const { first: report, own } = await service(t, fake, d, catalogYaml(3), { retryMs: 20, logs });
  assert.deepEqual(report.failed, [{ netns: '/run/netns/web2', message: 'namespace /run/netns/web2: cannot bind udp 127.0.0.11:0: the address is not local here', gone: false }]);
  assert.deepEqual(report.gone, [], 'the namespace is there: it is no gone one');
  assert.equal(report.serving, 3);
  assert.ok(!('/run/netns/web2' in resolverJson(d).namespaces));
  assert.ok(!existsSync(join(d.etc, 'web2')), 'no resolv.conf pointing at a resolver that is not there');
  assert.deepEqual(addresses(await ask(fake.open.get('/run/netns/web1')!.ports.udp, 'tasks.web')), ['10.0.1.11', '10.0.1.12', '10.0.1.13'],
    'a task whose sockets failed still answers for others: it serves');

  await new Promise((r) => setTimeout(r, 200));
  const tries = fake.calls.filter((c) => c.netns === '/run/netns/web2').length;
  assert.ok(tries >= 3 && tries <= 6, `retried with back-off: ${tries} tries in 200 ms`);
  assert.equal(logs.filter((l) => l.includes('web2')).length, 1, `said once: ${logs.join('\n')}`);
  assert.equal(own.length, 0, 'retries that change nothing are not reported');

  fake.failing.clear();
  await until('the retry binds it', () => fake.open.has('/run/netns/web2'));
  assert.ok(logs.some((l) => /web2: bound after all/.test(l)));
  await until('the retry is reported', () => own.length > 0);
  assert.deepEqual(own[0]!.bound.map((b) => b.netns), ['/run/netns/web2']);
  assert.ok('/run/netns/web2' in resolverJson(d).namespaces);
});

test('a namespace the agent says is gone: out of DNS at once, its sockets closed, and back when it is not gone any more', async (t) => {
  const fake = fakeBind(t);
  const d = dirs();
  const { s } = await service(t, fake, d, catalogYaml(3));
  const catalog = catalogOf(catalogYaml(3));
  const port = fake.open.get('/run/netns/web1')!.ports.udp;
  const web2 = fake.open.get('/run/netns/web2')!;
  assert.deepEqual(addresses(await ask(port, 'web.2.x')), ['10.0.1.12']);

  const report = await s.update(input(catalog, ['/run/netns/web2']));
  assert.deepEqual(report.closed, ['/run/netns/web2']);
  assert.deepEqual(report.gone, [], 'the agent found it, not the service');
  assert.deepEqual(addresses(await ask(port, 'tasks.web')), ['10.0.1.11', '10.0.1.13'], 'not serving: out of tasks.web');
  assert.equal((await ask(port, 'web.2.x')).rcode, 'SERVFAIL', 'its own name is no name of ours any more: forwarded');
  assert.ok(!fake.open.has('/run/netns/web2'), 'its sockets are closed');
  await assert.rejects(ask(web2.ports.udp, 'web', 300), /no reply/);
  assert.ok(!('/run/netns/web2' in resolverJson(d).namespaces));
  assert.ok(!existsSync(join(d.etc, 'web2')), 'its resolv.conf went too');
  assert.deepEqual(s.records().namespaces, ['/proc/4242/ns/net', '/run/netns/web1', '/run/netns/web3'], 'no view for it');

  const back = await s.update(input(catalog));
  assert.deepEqual(back.bound.map((b) => b.netns), ['/run/netns/web2']);
  assert.deepEqual(addresses(await ask(port, 'tasks.web')), ['10.0.1.11', '10.0.1.12', '10.0.1.13']);
});

test('a namespace that vanishes is found by the service itself: out of DNS, sockets closed, reported; a bind that finds none too', async (t) => {
  const fake = fakeBind(t);
  fake.gone.add('/run/netns/web3'); // listed running, but no namespace there (yet)
  const d = dirs();
  const logs: string[] = [];
  const { s, first, own } = await service(t, fake, d, catalogYaml(3), { checkMs: 20, retryMs: 20, logs });
  assert.deepEqual(first.gone, ['/run/netns/web3']);
  assert.deepEqual(first.failed.map((f) => [f.netns, f.gone]), [['/run/netns/web3', true]]);
  const port = fake.open.get('/run/netns/web1')!.ports.udp;
  assert.deepEqual(addresses(await ask(port, 'tasks.web')), ['10.0.1.11', '10.0.1.12'], 'a task with no namespace does not serve');

  const web2 = fake.open.get('/run/netns/web2')!;
  fake.gone.add('/run/netns/web2'); // ip netns delete
  await until('the check finds web2 gone', () => own.some((r) => r.gone.includes('/run/netns/web2')));
  const report = own.find((r) => r.gone.includes('/run/netns/web2'))!;
  assert.deepEqual(report.closed, ['/run/netns/web2']);
  assert.ok(!fake.open.has('/run/netns/web2'), 'its sockets are closed, so the kernel can free it');
  await assert.rejects(ask(web2.ports.udp, 'web', 300), /no reply/);
  assert.deepEqual(addresses(await ask(port, 'tasks.web')), ['10.0.1.11']);
  assert.equal(logs.filter((l) => /web2: the namespace is gone/.test(l)).length, 1);

  // The namespace is made (again): the next retry binds it and it answers again.
  fake.gone.delete('/run/netns/web3');
  await until('web3 is bound once it exists', () => fake.open.has('/run/netns/web3'));
  await until('and answers', () => s.records().namespaces.includes('/run/netns/web3'));
  assert.deepEqual(addresses(await ask(port, 'tasks.web')), ['10.0.1.11', '10.0.1.13']);
});

test('a path that comes to name another namespace gets its sockets bound again there, on the same ports', async (t) => {
  const fake = fakeBind(t);
  const d = dirs();
  const { own } = await service(t, fake, d, catalogYaml(2), { checkMs: 20 });
  const old = fake.open.get('/run/netns/web2')!;
  fake.generation.set('/run/netns/web2', 1); // ip netns delete web2; ip netns add web2
  await until('the check rebinds web2', () => fake.open.get('/run/netns/web2')?.id === '/run/netns/web2#1');
  await until('the rebind is reported', () => own.some((r) => r.bound.length > 0));
  const report = own.find((r) => r.bound.length > 0)!;
  assert.deepEqual(report.closed, ['/run/netns/web2']);
  assert.deepEqual(report.gone, [], 'replaced is not gone');
  assert.deepEqual(fake.calls.at(-1), { netns: '/run/netns/web2', wanted: old.ports }, 'the same ports are asked for, as the DNAT there will say');
});

test('a resolv.conf someone else put in /etc/netns is left alone, even when the task leaves', async (t) => {
  const fake = fakeBind(t);
  const d = dirs();
  mkdirSync(join(d.etc, 'web1'), { recursive: true });
  writeFileSync(join(d.etc, 'web1', 'resolv.conf'), 'nameserver 192.0.2.53\n');
  const { s } = await service(t, fake, d, catalogYaml(1));
  assert.equal(readFileSync(join(d.etc, 'web1', 'resolv.conf'), 'utf8'), 'nameserver 192.0.2.53\n');
  await s.update(input(catalogOf(catalogYaml(0))));
  assert.equal(readFileSync(join(d.etc, 'web1', 'resolv.conf'), 'utf8'), 'nameserver 192.0.2.53\n');
});

test('our resolv.conf of a namespace that no longer exists is swept; anyone else\'s stays', async (t) => {
  const fake = fakeBind(t);
  const d = dirs();
  const ghost = 'vipmesh-gone-ns-x1';
  mkdirSync(join(d.etc, ghost), { recursive: true });
  writeFileSync(join(d.etc, ghost, 'resolv.conf'), resolvConfText([]));
  mkdirSync(join(d.etc, 'vipmesh-gone-ns-x2'), { recursive: true });
  writeFileSync(join(d.etc, 'vipmesh-gone-ns-x2', 'resolv.conf'), 'nameserver 192.0.2.53\n');
  await service(t, fake, d, catalogYaml(1));
  assert.ok(!existsSync(join(d.etc, ghost)), 'a task that left while no resolver ran');
  assert.ok(existsSync(join(d.etc, 'vipmesh-gone-ns-x2', 'resolv.conf')));
  assert.ok(existsSync(join(d.etc, 'web1', 'resolv.conf')), 'served namespaces keep theirs');
});

test('removeResolvConfs removes only the files it wrote', async (t) => {
  const fake = fakeBind(t);
  const d = dirs();
  const { s } = await service(t, fake, d, catalogYaml(2));
  mkdirSync(join(d.etc, 'remote1'), { recursive: true });
  writeFileSync(join(d.etc, 'remote1', 'resolv.conf'), 'nameserver 192.0.2.53\n');
  await s.stop();
  assert.ok(existsSync(join(d.etc, 'web1', 'resolv.conf')), 'stop leaves the datapath in place');
  await s.removeResolvConfs();
  assert.ok(!existsSync(join(d.etc, 'web1')));
  assert.ok(!existsSync(join(d.etc, 'web2')));
  assert.ok(existsSync(join(d.etc, 'remote1', 'resolv.conf')));
});

test('after a restart the ports of the previous run are asked for again; a live resolver blocks a second one', async (t) => {
  const fake = fakeBind(t);
  const d = dirs();
  const { s: first } = await service(t, fake, d, catalogYaml(2));
  const before = resolverJson(d).namespaces;
  await first.stop();
  assert.equal(fake.open.size, 0, 'stop closes every socket');
  assert.deepEqual(resolverJson(d).namespaces, before, 'stop keeps resolver.json for the next start');

  await service(t, fake, d, catalogYaml(2));
  const asked = fake.calls.slice(-3);
  for (const call of asked) assert.deepEqual(call.wanted, before[call.netns], call.netns);

  // Another live process (here: our parent, node) owning resolver.json stops a second resolver.
  writeFileSync(join(d.run, 'resolver.json'), JSON.stringify({ pid: process.ppid, namespaces: {} }));
  await assert.rejects(service(t, fakeBind(t), d, catalogYaml(1)), new RegExp(`another vipmesh resolver \\(pid ${process.ppid}\\)`));
});

test('updates that arrive during a sync share the next one, which takes the newest input', async (t) => {
  const fake = fakeBind(t);
  const d = dirs();
  const { s } = await service(t, fake, d, catalogYaml(1));
  const binds = fake.calls.length;
  const a = s.update(input(catalogOf(catalogYaml(2))));
  await until('the first sync is binding', () => fake.calls.length > binds);
  const [b, c] = await Promise.all([s.update(input(catalogOf(catalogYaml(3)))), s.update(input(catalogOf(catalogYaml(4))))]);
  assert.deepEqual((await a).bound.map((x) => x.netns), ['/run/netns/web2'], 'the first one was running already');
  assert.equal(b, c, 'the two that came meanwhile share one sync');
  assert.deepEqual(b.bound.map((x) => x.netns).sort(), ['/run/netns/web3', '/run/netns/web4']);
  assert.equal(fake.calls.length, binds + 3, 'no namespace bound twice');
});

test('the snapshot is built again only when what it depends on changed', async (t) => {
  const fake = fakeBind(t);
  const d = dirs();
  const { s } = await service(t, fake, d, catalogYaml(2));
  const catalog = catalogOf(catalogYaml(2));
  await s.update(input(catalog));
  const built = s.records();
  await s.update(input(catalog, [], new Map()));
  assert.equal(s.records(), built, 'the same catalog, equal probes and gone: the same snapshot');
  await s.update(input(catalog, ['/run/netns/web2']));
  assert.notEqual(s.records(), built, 'a namespace gone: a new one');
  const withoutWeb2 = s.records();
  await s.update(input(catalog, ['/run/netns/web2'], new Map([['web.1.x', true]])));
  assert.notEqual(s.records(), withoutWeb2, 'a probe verdict changed: a new one');
});

// The resolver service without root: namespaces are "bound" by a fake that opens
// loopback sockets, so what is checked here is the bookkeeping — which
// namespaces are served, resolver.json, the /etc/netns resolv.conf files, answers
// following the catalog, failures that stay local, and taking ports again after
// a restart. Real namespaces are in test/kernel/resolver.test.ts.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type TestContext } from 'node:test';
import dnsPacket from 'dns-packet';
import type { NamespaceSockets, ResolverPorts } from '../../../src/kernel/netns-sockets.js';
import { type BindFn, type ResolverService, createResolverService, namedNamespace, resolvConfText } from '../../../src/resolver/service.js';
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
  calls: { netns: string; wanted?: ResolverPorts }[];
  open: Map<string, NamespaceSockets>;
  failing: Set<string>;
}

/** Binds loopback sockets instead of entering namespaces. */
function fakeBind(t: TestContext): Fake {
  const calls: Fake['calls'] = [];
  const open = new Map<string, NamespaceSockets>();
  const failing = new Set<string>();
  const bind: BindFn = async (netns, options) => {
    calls.push({ netns, ...(options.wanted ? { wanted: options.wanted } : {}) });
    if (failing.has(netns)) throw new Error(`namespace ${netns}: the namespace does not exist`);
    const udp = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
    const tcp = net.createServer();
    await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
    const ports = { udp: udp.address().port, tcp: (tcp.address() as net.AddressInfo).port };
    const changed = options.wanted !== undefined && (options.wanted.udp !== ports.udp || options.wanted.tcp !== ports.tcp);
    const sockets: NamespaceSockets = { netns, udp, tcp, ports, changed, durationMs: 1, warnings: [] };
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
  return { bind, calls, open, failing };
}

function dirs(): { run: string; etc: string } {
  const base = mkdtempSync(join(tmpdir(), 'vipmesh-service-'));
  return { run: join(base, 'run'), etc: join(base, 'etc-netns') };
}

function service(
  t: TestContext,
  fake: Fake,
  d: { run: string; etc: string },
  yaml: string,
  more: { retryMs?: number; logs?: string[] } = {},
): ResolverService {
  const s = createResolverService({
    catalog: catalogOf(yaml),
    node: 'node-1',
    upstreams: [],
    search: ['corp.test', 'example.test'],
    runDir: d.run,
    etcNetns: d.etc,
    bind: fake.bind,
    retryMs: more.retryMs ?? 0,
    log: (level, message) => more.logs?.push(`${level} ${message}`),
  });
  t.after(() => s.stop());
  return s;
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

test('start serves every running local task namespace and records them', async (t) => {
  const fake = fakeBind(t);
  const d = dirs();
  const s = service(t, fake, d, catalogYaml(2));
  const report = await s.start();
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
  const s = service(t, fake, d, catalogYaml(3));
  await s.start();
  const port = fake.open.get('/run/netns/web1')!.ports.udp;
  assert.deepEqual(addresses(await ask(port, 'tasks.web')), ['10.0.1.11', '10.0.1.12', '10.0.1.13']);

  const web3 = fake.open.get('/run/netns/web3')!;
  const scaled = await s.update(catalogOf(catalogYaml(1).replace('tasks:\n', 'tasks:\n  web.9.x: { service: web, node: node-1, netns: /run/netns/web9, addresses: { appnet: 10.0.1.19 } }\n')));
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
  const s = service(t, fake, d, catalogYaml(3), { retryMs: 20, logs });
  const report = await s.start();
  assert.deepEqual(report.failed.map((f) => f.netns), ['/run/netns/web2']);
  assert.match(report.failed[0]!.message, /does not exist/);
  assert.equal(report.serving, 3);
  assert.ok(!('/run/netns/web2' in resolverJson(d).namespaces));
  assert.ok(!existsSync(join(d.etc, 'web2')), 'no resolv.conf pointing at a resolver that is not there');

  await new Promise((r) => setTimeout(r, 200));
  const tries = fake.calls.filter((c) => c.netns === '/run/netns/web2').length;
  assert.ok(tries >= 3 && tries <= 6, `retried with back-off: ${tries} tries in 200 ms`);
  assert.equal(logs.filter((l) => l.includes('web2')).length, 1, `said once: ${logs.join('\n')}`);

  fake.failing.clear();
  for (let i = 0; i < 100 && !fake.open.has('/run/netns/web2'); i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(fake.open.has('/run/netns/web2'), 'the retry bound it');
  assert.ok(logs.some((l) => /web2: bound after all/.test(l)));
  await new Promise((r) => setTimeout(r, 50));
  assert.ok('/run/netns/web2' in resolverJson(d).namespaces);
});

test('a resolv.conf someone else put in /etc/netns is left alone, even when the task leaves', async (t) => {
  const fake = fakeBind(t);
  const d = dirs();
  mkdirSync(join(d.etc, 'web1'), { recursive: true });
  writeFileSync(join(d.etc, 'web1', 'resolv.conf'), 'nameserver 192.0.2.53\n');
  const s = service(t, fake, d, catalogYaml(1));
  await s.start();
  assert.equal(readFileSync(join(d.etc, 'web1', 'resolv.conf'), 'utf8'), 'nameserver 192.0.2.53\n');
  await s.update(catalogOf(catalogYaml(0)));
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
  const s = service(t, fake, d, catalogYaml(1));
  await s.start();
  assert.ok(!existsSync(join(d.etc, ghost)), 'a task that left while no resolver ran');
  assert.ok(existsSync(join(d.etc, 'vipmesh-gone-ns-x2', 'resolv.conf')));
  assert.ok(existsSync(join(d.etc, 'web1', 'resolv.conf')), 'served namespaces keep theirs');
});

test('removeResolvConfs removes only the files it wrote', async (t) => {
  const fake = fakeBind(t);
  const d = dirs();
  const s = service(t, fake, d, catalogYaml(2));
  await s.start();
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
  const first = service(t, fake, d, catalogYaml(2));
  await first.start();
  const before = resolverJson(d).namespaces;
  await first.stop();
  assert.deepEqual(resolverJson(d).namespaces, before, 'stop keeps resolver.json for the next start');

  const second = service(t, fake, d, catalogYaml(2));
  await second.start();
  const asked = fake.calls.slice(-3);
  for (const call of asked) assert.deepEqual(call.wanted, before[call.netns], call.netns);

  // Another live process (here: our parent, node) owning resolver.json stops a second resolver.
  writeFileSync(join(d.run, 'resolver.json'), JSON.stringify({ pid: process.ppid, namespaces: {} }));
  const third = service(t, fakeBind(t), d, catalogYaml(1));
  await assert.rejects(third.start(), new RegExp(`another vipmesh resolver \\(pid ${process.ppid}\\)`));
});

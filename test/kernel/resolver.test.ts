// The resolver against real clients in real namespaces (root). One node-1 with
// three local tasks (a client on appnet, a web task on appnet, a task only on
// network other), each in a throwaway namespace with a veth address, as a
// container has (glibc's AI_ADDRCONFIG ignores a namespace whose only IPv4
// address is on lo). `vipmesh resolver` serves them; `vipmesh reconcile` installs
// the DNAT 127.0.0.11:53 → its ports; a dnsmasq on a loopback address of this
// namespace plays the node's upstream. Clients: dig (UDP, TCP, TC), glibc's
// getent, Node's dns (c-ares and getaddrinfo), and a static musl getaddrinfo
// built here with musl-gcc, as in Alpine images.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { bindInNamespace } from '../../src/kernel/netns-sockets.js';
import { createResolver } from '../../src/resolver/answer.js';
import { Plumbing } from '../../src/lab/plumbing.js';
import { buildRecords } from '../../src/resolver/records.js';
import { serveNamespace } from '../../src/resolver/serve.js';
import { resolvConfText } from '../../src/resolver/service.js';
import { readHostResolvConf } from '../../src/resolver/upstreams.js';
import { catalogOf } from '../helpers/catalog.js';
import { CLI, ROOT } from '../helpers/paths.js';
import { netns, requireRoot, run, uniqueName } from '../helpers/netns.js';
import { requireTool } from '../helpers/tools.js';

const TOOLS = ['dig', 'dnsmasq', 'musl-gcc', 'getent', 'ss', 'ip', 'iptables', 'nsenter'];

const GAI_C = `
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>
int main(int argc, char **argv) {
  int rc = 0;
  for (int i = 1; i < argc; i++) {
    struct addrinfo hints, *res, *p;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int err = getaddrinfo(argv[i], NULL, &hints, &res);
    if (err) { printf("%s ERROR %s\\n", argv[i], gai_strerror(err)); rc = 1; continue; }
    for (p = res; p; p = p->ai_next) {
      char buf[INET6_ADDRSTRLEN];
      void *a = p->ai_family == AF_INET ? (void *)&((struct sockaddr_in *)p->ai_addr)->sin_addr
                                        : (void *)&((struct sockaddr_in6 *)p->ai_addr)->sin6_addr;
      inet_ntop(p->ai_family, a, buf, sizeof buf);
      printf("%s %s\\n", argv[i], buf);
    }
    freeaddrinfo(res);
  }
  return rc;
}
`;

// Node's two resolvers: c-ares (dns.resolve4, no search list) and getaddrinfo (dns.lookup).
const NODE_CLIENT = `
const dns = require('node:dns');
const names = process.argv.slice(1);
const settle = (p) => p.then((v) => v, (e) => 'ERROR ' + e.code);
Promise.all(names.map(async (n) => [n, {
  resolve4: await settle(dns.promises.resolve4(n)),
  lookup: await settle(dns.promises.lookup(n, { all: true }).then((all) => all.map((a) => a.address))),
}])).then((r) => console.log(JSON.stringify(Object.fromEntries(r))));
`;

// The rcode 127.0.0.11:53 answers an AXFR (252) and an IXFR (251) query with, over UDP and TCP.
const RCODES = `
const dgram = require('node:dgram'); const net = require('node:net');
const name = process.argv[1];
const query = (qtype) => {
  const labels = name.split('.').flatMap((l) => [Buffer.from([l.length]), Buffer.from(l)]);
  const tail = Buffer.from([0, 0, qtype, 0, 1]);
  return Buffer.concat([Buffer.from([0x12, 0x34, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0]), ...labels, tail]);
};
const udp = (q) => new Promise((resolve) => {
  const s = dgram.createSocket('udp4');
  s.on('message', (m) => { s.close(); resolve(m[3] & 15); });
  s.send(q, 53, '127.0.0.11');
});
const tcp = (q) => new Promise((resolve) => {
  const c = net.connect(53, '127.0.0.11', () => c.write(Buffer.concat([Buffer.from([q.length >> 8, q.length & 255]), q])));
  c.on('data', (d) => { c.destroy(); resolve(d[5] & 15); });
});
(async () => {
  const out = {};
  for (const t of [252, 251]) { out['udp' + t] = await udp(query(t)); out['tcp' + t] = await tcp(query(t)); }
  console.log(JSON.stringify(out));
})();
setTimeout(() => { console.log('{"timeout":true}'); process.exit(1); }, 5000).unref();
`;

const BIG = 60;

interface World {
  dir: string;
  runDir: string;
  catalogFile: string;
  ns: { host: string; client: string; web: string; onlyb: string };
  upstream: { address: string; port: number; log: string; hosts: string };
  musl: string;
}

function catalogText(w: World, options: { big?: number; moreWeb?: boolean; withOnlyb?: boolean } = {}): string {
  const path = (name: string) => `/run/netns/${name}`;
  const big = options.big ?? BIG;
  const lines = [
    'version: 1',
    'networks:',
    '  appnet: { subnet: 10.0.1.0/24 }',
    '  other: { subnet: 10.0.2.0/24 }',
    'nodes:',
    `  node-1: { address: 192.0.2.11, netns: ${path(w.ns.host)} }`,
    '  node-2: { address: 192.0.2.12 }',
    'services:',
    '  web: { vips: { appnet: 10.0.1.2 }, aliases: [www] }',
    '  peers: { endpointMode: dnsrr, networks: [appnet] }',
    '  big: { endpointMode: dnsrr, networks: [appnet] }',
    '  secret: { vips: { other: 10.0.2.2 } }',
    'tasks:',
    `  web.1.aaaa: { service: web, node: node-1, netns: ${path(w.ns.web)}, addresses: { appnet: 10.0.1.11 } }`,
    '  web.2.bbbb: { service: web, node: node-2, netns: /run/netns/remote-web2, addresses: { appnet: 10.0.1.12 } }',
    '  peers.1.cccc: { service: peers, node: node-2, netns: /run/netns/remote-p1, addresses: { appnet: 10.0.1.21 } }',
    '  peers.2.dddd: { service: peers, node: node-2, netns: /run/netns/remote-p2, addresses: { appnet: 10.0.1.22 } }',
    '  secret.1.eeee: { service: secret, node: node-2, netns: /run/netns/remote-s1, addresses: { other: 10.0.2.11 } }',
    `  client: { node: node-1, netns: ${path(w.ns.client)}, addresses: { appnet: 10.0.1.31 } }`,
  ];
  if (options.withOnlyb ?? true) lines.push(`  onlyb: { node: node-1, netns: ${path(w.ns.onlyb)}, addresses: { other: 10.0.2.31 } }`);
  if (options.moreWeb) lines.push('  web.3.ffff: { service: web, node: node-2, netns: /run/netns/remote-web3, addresses: { appnet: 10.0.1.13 } }');
  for (let i = 0; i < big; i++) {
    lines.push(`  big.${i + 1}.x: { service: big, node: node-2, netns: /run/netns/remote-big${i}, addresses: { appnet: 10.0.1.${100 + i} } }`);
  }
  return lines.join('\n') + '\n';
}

const spawn = (file: string, args: readonly string[], env: Record<string, string>, stdin: 'ignore' | 'pipe') =>
  execa(file, args, { reject: false, stdin, buffer: false, env });

/** A child process whose output lines a test can wait for. */
class Child {
  readonly lines: string[] = [];
  readonly errors: string[] = [];
  readonly process: ReturnType<typeof spawn>;

  constructor(file: string, args: readonly string[], env: Record<string, string> = {}, stdin: 'ignore' | 'pipe' = 'ignore') {
    this.process = spawn(file, args, env, stdin);
    this.process.stdout?.setEncoding('utf8').on('data', (chunk: string) => this.lines.push(...chunk.split('\n').filter(Boolean)));
    this.process.stderr?.setEncoding('utf8').on('data', (chunk: string) => this.errors.push(...chunk.split('\n').filter(Boolean)));
  }

  get alive(): boolean {
    return this.process.exitCode === null && this.process.signalCode === null;
  }

  async waitFor(pattern: RegExp, count = 1, timeoutMs = 20_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hits = this.lines.filter((l) => pattern.test(l));
      if (hits.length >= count) return hits[count - 1]!;
      if (!this.alive) throw new Error(`exited before printing ${pattern}:\n${[...this.lines, ...this.errors].join('\n')}`);
      if (Date.now() > deadline) throw new Error(`no ${pattern} within ${timeoutMs} ms:\n${[...this.lines, ...this.errors].join('\n')}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (!this.alive) return;
    this.process.kill(signal);
    const killer = setTimeout(() => this.process.kill('SIGKILL'), 5000);
    await this.process;
    clearTimeout(killer);
  }
}

const inNs = (name: string, file: string, args: readonly string[]) =>
  execa('ip', ['netns', 'exec', name, file, ...args], { reject: false, timeout: 30_000 });

/** dig's answers (+short), sorted. */
async function dig(ns: string, name: string, ...flags: string[]): Promise<string[]> {
  const result = await inNs(ns, 'dig', ['@127.0.0.11', '+short', '+time=2', '+tries=1', ...flags, name]);
  assert.equal(result.exitCode, 0, `dig ${name}: ${result.stdout}${result.stderr}`);
  return result.stdout.split('\n').filter((l) => l !== '' && !l.startsWith(';')).sort();
}

/** dig's status line. Its +time=8 bounds the wait: a resolver that hangs leaves no status, and fails the check. */
async function digStatus(ns: string, name: string, ...flags: string[]): Promise<{ status: string; text: string }> {
  const result = await inNs(ns, 'dig', ['@127.0.0.11', '+time=8', '+tries=1', ...flags, name]);
  const status = /status: (\w+)/.exec(result.stdout)?.[1] ?? `none (exit ${result.exitCode}: ${result.stdout}${result.stderr})`;
  return { status, text: result.stdout };
}

/** glibc: getent ahosts, unique addresses. */
async function getent(ns: string, name: string): Promise<string[]> {
  const result = await inNs(ns, 'getent', ['ahosts', name]);
  if (result.exitCode !== 0) return [`ERROR exit ${result.exitCode}`];
  return [...new Set(result.stdout.split('\n').filter(Boolean).map((l) => l.split(/\s+/)[0]!))].sort();
}

async function musl(w: World, ns: string, name: string): Promise<{ addresses: string[] }> {
  const result = await inNs(ns, w.musl, [name]);
  const out = result.stdout.split('\n').filter(Boolean);
  const errors = out.filter((l) => l.includes(' ERROR '));
  if (errors.length > 0) return { addresses: errors.map((l) => l.slice(name.length + 1)) };
  return { addresses: [...new Set(out.map((l) => l.split(' ')[1]!))].sort() };
}

async function nodeClient(ns: string, names: readonly string[]): Promise<Record<string, { resolve4: string[] | string; lookup: string[] | string }>> {
  const result = await inNs(ns, process.execPath, ['-e', NODE_CLIENT, ...names]);
  assert.equal(result.exitCode, 0, result.stderr);
  return JSON.parse(result.stdout) as Record<string, { resolve4: string[] | string; lookup: string[] | string }>;
}

const sorted = (v: string[] | string) => (Array.isArray(v) ? [...v].sort() : v);
const bigAddresses = (n: number) => Array.from({ length: n }, (_, i) => `10.0.1.${100 + i}`).sort();

describe('vipmesh resolver with real clients in task namespaces', { concurrency: false }, () => {
  const cleanups: (() => Promise<unknown> | unknown)[] = [];
  let w: World;
  let resolver: Child;
  let dnsmasq: Child;
  const cli = (args: readonly string[]) => new Child(process.execPath, [CLI, ...args], { VIPMESH_RUN_DIR: w.runDir });
  const startResolver = async (): Promise<Child> => {
    const child = cli(['resolver', '-c', w.catalogFile, '--node', 'node-1', '--upstream', `${w.upstream.address}:${w.upstream.port}`]);
    cleanups.push(() => child.stop('SIGKILL'));
    await child.waitFor(/^vipmesh resolver: serving \d+ namespaces?/);
    return child;
  };

  before(async () => {
    requireRoot();
    for (const tool of TOOLS) await requireTool(tool);
    const dir = mkdtempSync(join(tmpdir(), 'vipmesh-resolver-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const ns = { host: uniqueName('vrh'), client: uniqueName('vrc'), web: uniqueName('vrw'), onlyb: uniqueName('vrb') };
    // A loopback address of this namespace no one else uses; the port is not 53, so nothing here is disturbed.
    const upstream = { address: `127.${77 + (process.pid % 100)}.${process.pid % 250}.1`, port: 5300 + (process.pid % 600), log: join(dir, 'dnsmasq.log'), hosts: join(dir, 'hosts') };
    w = { dir, runDir: join(dir, 'run'), catalogFile: join(dir, 'catalog.yaml'), ns, upstream, musl: join(dir, 'gai-musl') };

    // One plumbing for the suite's namespaces; the resolver writes their /etc/netns entries, which go with them.
    const plumbing = new Plumbing();
    cleanups.push(() => plumbing.remove());
    for (const [role, name] of Object.entries(ns)) {
      await plumbing.ns(name);
      await plumbing.etcNetns(name);
      const address = { client: '10.0.1.31/24', web: '10.0.1.11/24', onlyb: '10.0.2.31/24' }[role];
      if (address === undefined) continue;
      // Both ends stay in the task's namespace: it only needs an address that is not on lo.
      await plumbing.wire(name, 'eth0', address, name, 'peer0', []);
    }

    writeFileSync(join(dir, 'gai.c'), GAI_C);
    await run('musl-gcc', ['-static', '-O2', '-o', w.musl, join(dir, 'gai.c')]);

    writeFileSync(upstream.hosts, '192.0.2.77 outside.test\n');
    dnsmasq = new Child(await requireTool('dnsmasq'), [
      '-C', '/dev/null', '--keep-in-foreground', '--no-resolv', '--no-hosts', `--addn-hosts=${upstream.hosts}`,
      // Authoritative for everything: unknown names get NXDOMAIN, not REFUSED.
      '--local=/#/', `--listen-address=${upstream.address}`, `--port=${upstream.port}`, '--bind-interfaces',
      '--user=root', '--pid-file=', '--log-queries', `--log-facility=${upstream.log}`,
    ]);
    cleanups.push(() => dnsmasq.stop('SIGKILL'));
    for (let i = 0; i < 100 && !existsSync(upstream.log); i++) await new Promise((r) => setTimeout(r, 20));

    writeFileSync(w.catalogFile, catalogText(w));
    resolver = await startResolver();
    const reconcile = await execa(process.execPath, [CLI, 'reconcile', '-c', w.catalogFile, '--node', 'node-1'], {
      env: { VIPMESH_RUN_DIR: w.runDir },
      reject: false,
    });
    // No IPVS on this kernel: reconcile names the VIP namespaces (exit 3) but still installs the DNS redirect.
    assert.match(reconcile.stdout, /nat VIPMESH-DNS-OUTPUT/, `${reconcile.stdout}${reconcile.stderr}`);
  });

  after(async () => {
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup();
      } catch {
        // keep cleaning
      }
    }
  });

  it('binds in each task namespace; the sockets there belong to the resolver process', async () => {
    const pid = resolver.process.pid!;
    for (const name of [w.ns.client, w.ns.web, w.ns.onlyb]) {
      const ss = await inNs(name, 'ss', ['-Hlnup', '-t', 'src', '127.0.0.11']);
      const lines = ss.stdout.split('\n').filter(Boolean);
      assert.equal(lines.length, 2, ss.stdout);
      for (const line of lines) assert.match(line, new RegExp(`pid=${pid},`));
    }
    assert.equal((await run('ss', ['-Hlnut', 'src', '127.0.0.11'])).trim(), '', 'nothing in our own namespace');
    const recorded = JSON.parse(readFileSync(join(w.runDir, 'resolver.json'), 'utf8')) as { pid: number; namespaces: Record<string, unknown> };
    assert.equal(recorded.pid, pid);
    assert.deepEqual(Object.keys(recorded.namespaces).sort(), [w.ns.client, w.ns.onlyb, w.ns.web].map((n) => `/run/netns/${n}`).sort());
    // What `ip netns exec` mounts over /etc/resolv.conf: us, ndots:0, and the host's search list.
    const conf = readFileSync(`/etc/netns/${w.ns.client}/resolv.conf`, 'utf8');
    assert.equal(conf, resolvConfText((await readHostResolvConf()).search));
    assert.match(conf, /^nameserver 127\.0\.0\.11\noptions ndots:0\n$/m);
    assert.ok(!existsSync(`/etc/netns/${w.ns.host}`), 'the node namespace is no task');
    // reconcile took the kernel-chosen ports from resolver.json into the redirect.
    const ports = recorded.namespaces[`/run/netns/${w.ns.client}`] as { udp: number; tcp: number };
    const nat = (await inNs(w.ns.client, 'iptables-save', ['-t', 'nat'])).stdout;
    assert.match(nat, new RegExp(`-p udp -m udp --dport 53 -j DNAT --to-destination 127\\.0\\.0\\.11:${ports.udp}\n`));
    assert.match(nat, new RegExp(`-p tcp -m tcp --dport 53 -j DNAT --to-destination 127\\.0\\.0\\.11:${ports.tcp}\n`));
  });

  it('dig over UDP and TCP: service → VIP, tasks.<svc> → tasks, task name → address, dnsrr → tasks', async () => {
    for (const tcp of [[], ['+tcp']]) {
      assert.deepEqual(await dig(w.ns.client, 'web', ...tcp), ['10.0.1.2']);
      assert.deepEqual(await dig(w.ns.client, 'WeB', ...tcp), ['10.0.1.2'], 'names are case-insensitive');
      assert.deepEqual(await dig(w.ns.client, 'tasks.web', ...tcp), ['10.0.1.11', '10.0.1.12']);
      assert.deepEqual(await dig(w.ns.client, 'web.1.aaaa', ...tcp), ['10.0.1.11']);
      assert.deepEqual(await dig(w.ns.client, 'peers', ...tcp), ['10.0.1.21', '10.0.1.22']);
    }
    assert.deepEqual(await dig(w.ns.web, 'client'), ['10.0.1.31'], 'every task namespace is served');
    const nodata = await digStatus(w.ns.client, 'web', 'AAAA');
    assert.equal(nodata.status, 'NOERROR');
    assert.match(nodata.text, /ANSWER: 0,/);
  });

  it('glibc getaddrinfo (getent ahosts) resolves the same names', async () => {
    assert.deepEqual(await getent(w.ns.client, 'web'), ['10.0.1.2']);
    assert.deepEqual(await getent(w.ns.client, 'tasks.web'), ['10.0.1.11', '10.0.1.12']);
    assert.deepEqual(await getent(w.ns.client, 'web.1.aaaa'), ['10.0.1.11']);
    assert.deepEqual(await getent(w.ns.client, 'peers'), ['10.0.1.21', '10.0.1.22']);
  });

  it("Node's dns.resolve4 (c-ares) and dns.lookup (getaddrinfo) resolve the same names", async () => {
    const got = await nodeClient(w.ns.client, ['web', 'tasks.web', 'web.1.aaaa', 'peers']);
    const want: Record<string, string[]> = {
      web: ['10.0.1.2'], 'tasks.web': ['10.0.1.11', '10.0.1.12'], 'web.1.aaaa': ['10.0.1.11'], peers: ['10.0.1.21', '10.0.1.22'],
    };
    for (const [name, addresses] of Object.entries(want)) {
      assert.deepEqual(sorted(got[name]!.resolve4), addresses, `resolve4 ${name}`);
      assert.deepEqual(sorted(got[name]!.lookup), addresses, `lookup ${name}`);
    }
  });

  it('a static musl getaddrinfo resolves the same names, a name with no AAAA included', async () => {
    // musl asks A and AAAA at once and gives up on the whole name (EAI_AGAIN) when
    // the AAAA gets a SERVFAIL or no reply at all: only a NODATA for the AAAA
    // lets it return the address. (inNs's 30 s timeout is the bound on a hang.)
    const web = await musl(w, w.ns.client, 'web');
    assert.deepEqual(web.addresses, ['10.0.1.2']);
    const aaaa = await digStatus(w.ns.client, 'web', 'AAAA');
    assert.equal(aaaa.status, 'NOERROR');
    assert.match(aaaa.text, /ANSWER: 0,/);
    assert.deepEqual((await musl(w, w.ns.client, 'tasks.web')).addresses, ['10.0.1.11', '10.0.1.12']);
    assert.deepEqual((await musl(w, w.ns.client, 'web.1.aaaa')).addresses, ['10.0.1.11']);
    assert.deepEqual((await musl(w, w.ns.client, 'peers')).addresses, ['10.0.1.21', '10.0.1.22']);
  });

  it('<name>.<network> and tasks.<alias>, as Docker answers them; what PTR answers resolves forward again', async () => {
    for (const tcp of [[], ['+tcp']]) {
      assert.deepEqual(await dig(w.ns.client, 'web.appnet', ...tcp), ['10.0.1.2']);
      assert.deepEqual(await dig(w.ns.client, 'Tasks.Web.AppNet', ...tcp), ['10.0.1.11', '10.0.1.12']);
      assert.deepEqual(await dig(w.ns.client, 'web.1.aaaa.appnet', ...tcp), ['10.0.1.11']);
      assert.deepEqual(await dig(w.ns.client, 'tasks.www', ...tcp), ['10.0.1.11', '10.0.1.12']);
    }
    for (const [address, name] of [['10.0.1.11', 'web.1.aaaa.appnet.'], ['10.0.1.2', 'web.appnet.']] as const) {
      assert.deepEqual(await dig(w.ns.client, address, '-x'), [name]);
      assert.deepEqual(await dig(w.ns.client, name), [address]);
    }
    // glibc: gethostbyname (getent hosts) and getaddrinfo (getent ahosts); musl's getaddrinfo
    const hosts = await inNs(w.ns.client, 'getent', ['hosts', 'web.appnet']);
    assert.equal(hosts.exitCode, 0, hosts.stderr);
    assert.match(hosts.stdout, /^10\.0\.1\.2\s+web\.appnet$/m);
    assert.deepEqual(await getent(w.ns.client, 'tasks.web.appnet'), ['10.0.1.11', '10.0.1.12']);
    assert.deepEqual(await getent(w.ns.client, 'web.1.aaaa.appnet'), ['10.0.1.11']);
    assert.deepEqual((await musl(w, w.ns.client, 'web.appnet')).addresses, ['10.0.1.2']);
    assert.deepEqual((await musl(w, w.ns.client, 'tasks.www.appnet')).addresses, ['10.0.1.11', '10.0.1.12']);
    // Not on appnet: the name is not ours there, and the upstream says NXDOMAIN.
    assert.equal((await digStatus(w.ns.onlyb, 'web.appnet')).status, 'NXDOMAIN');
    assert.deepEqual(await dig(w.ns.onlyb, 'secret.other'), ['10.0.2.2']);
  });

  it('a task only on network A gets nothing from vipmesh for a service only on network B: the upstream answers', async () => {
    assert.deepEqual(await dig(w.ns.onlyb, 'secret'), ['10.0.2.2'], 'on its own network, secret resolves');
    const before = readFileSync(w.upstream.log, 'utf8').split('\n').filter((l) => /query\[A\] secret from/.test(l)).length;
    const result = await digStatus(w.ns.client, 'secret');
    assert.equal(result.status, 'NXDOMAIN', result.text);
    const afterCount = readFileSync(w.upstream.log, 'utf8').split('\n').filter((l) => /query\[A\] secret from/.test(l)).length;
    assert.equal(afterCount, before + 1, 'the query went to the upstream, which said NXDOMAIN');
    assert.match((await musl(w, w.ns.client, 'secret')).addresses.join(), /ERROR/);
    assert.deepEqual(await getent(w.ns.client, 'secret'), ['ERROR exit 2']);
    assert.deepEqual(await dig(w.ns.onlyb, 'web'), [], 'nor does web leak the other way');
  });

  it(`tasks.big with ${BIG} tasks: dig and glibc get all (TC, then TCP); musl gets a truncated list`, async () => {
    const truncated = await inNs(w.ns.client, 'dig', ['@127.0.0.11', '+ignore', '+noedns', '+time=2', '+tries=1', 'tasks.big']);
    assert.match(truncated.stdout, /flags: qr[a-z ]* tc/, truncated.stdout);
    assert.deepEqual(await dig(w.ns.client, 'tasks.big'), bigAddresses(BIG));
    assert.deepEqual(await getent(w.ns.client, 'tasks.big'), bigAddresses(BIG));
    assert.deepEqual(sorted((await nodeClient(w.ns.client, ['tasks.big']))['tasks.big']!.resolve4), bigAddresses(BIG));
    const fromMusl = (await musl(w, w.ns.client, 'tasks.big')).addresses;
    assert.ok(fromMusl.length > 0 && fromMusl.length < BIG, `musl got ${fromMusl.length}`);
    for (const address of fromMusl) assert.ok(bigAddresses(BIG).includes(address), address);
  });

  it('an unknown name is answered by the upstream', async () => {
    assert.deepEqual(await dig(w.ns.client, 'outside.test'), ['192.0.2.77']);
    assert.deepEqual(await dig(w.ns.client, 'outside.test', '+tcp'), ['192.0.2.77']);
    assert.deepEqual(await getent(w.ns.client, 'outside.test'), ['192.0.2.77']);
    assert.deepEqual((await musl(w, w.ns.client, 'outside.test')).addresses, ['192.0.2.77']);
  });

  it('zone transfers are refused, over TCP and UDP, and never reach the upstream', async () => {
    // Whatever dnsmasq calls these types, nothing else asks it about these names meanwhile.
    const asked = () => readFileSync(w.upstream.log, 'utf8').split('\n').filter((l) => /query\[[^\]]*\] (web|outside\.test) from/.test(l)).length;
    const before = asked();
    for (const name of ['web', 'outside.test']) {
      // dig prints no status for a transfer, only that it failed.
      const axfr = await inNs(w.ns.client, 'dig', ['@127.0.0.11', '+time=2', '+tries=1', name, 'AXFR']);
      assert.match(axfr.stdout, /Transfer failed/, `AXFR ${name}: ${axfr.stdout}${axfr.stderr}`);
      const rcodes = await inNs(w.ns.client, process.execPath, ['-e', RCODES, name]);
      assert.deepEqual(JSON.parse(rcodes.stdout), { udp252: 5, udp251: 5, tcp252: 5, tcp251: 5 }, `REFUSED is 5: ${rcodes.stderr}`);
    }
    assert.equal(asked(), before);
  });

  it('scaling a service in the catalog changes the answers without restarting anything', async () => {
    const reloads = resolver.lines.filter((l) => /reloaded/.test(l)).length;
    writeFileSync(w.catalogFile, catalogText(w, { big: 5, moreWeb: true }));
    await resolver.waitFor(/reloaded/, reloads + 1);
    assert.deepEqual(await dig(w.ns.client, 'tasks.big'), bigAddresses(5));
    assert.deepEqual(await dig(w.ns.client, 'tasks.web'), ['10.0.1.11', '10.0.1.12', '10.0.1.13']);
    assert.deepEqual(await getent(w.ns.client, 'tasks.big'), bigAddresses(5));
    assert.deepEqual((await musl(w, w.ns.client, 'tasks.big')).addresses, bigAddresses(5));

    writeFileSync(w.catalogFile, catalogText(w));
    await resolver.waitFor(/reloaded/, reloads + 2);
    assert.deepEqual(await dig(w.ns.client, 'tasks.big'), bigAddresses(BIG));
    assert.equal(resolver.alive, true);
  });

  it(`a fuzz of 100 000 random and mutated packets: every one survived, and answers stay right`, async () => {
    const fuzzer = join(ROOT, 'dist', 'test', 'helpers', 'dns-fuzz.js');
    const seed = String(Date.now() % 1_000_000);
    const result = await execa('ip', ['netns', 'exec', w.ns.client, process.execPath, fuzzer, '127.0.0.11', '53', '100000', seed, 'web', '10.0.1.2'], {
      reject: false,
      timeout: 120_000,
    });
    assert.equal(result.exitCode, 0, `fuzzer (seed ${seed}): ${result.stderr}`);
    const stats = JSON.parse(result.stdout) as { sent: number; replies: number; probes: number; probesAnswered: number; probesCorrect: number };
    assert.ok(stats.sent >= 100_000, `sent ${stats.sent} (seed ${seed})`);
    // Between bursts a probe asks for web: each must come back, and right.
    assert.ok(stats.probesCorrect >= stats.probes * 0.99, `probes answered right during the fuzz: ${JSON.stringify(stats)} (seed ${seed})`);
    assert.ok(stats.replies > stats.probes, 'fuzzed packets that parse got answers too');
    assert.equal(resolver.alive, true, `the resolver died (seed ${seed}): ${resolver.errors.join('\n')}`);
    assert.deepEqual(await dig(w.ns.client, 'web'), ['10.0.1.2']);
    assert.deepEqual(await dig(w.ns.client, 'tasks.web', '+tcp'), ['10.0.1.11', '10.0.1.12']);
    assert.deepEqual(await getent(w.ns.client, 'peers'), ['10.0.1.21', '10.0.1.22']);
  });

  it('TCP garbage, oversize frames and abandoned connections do not stop TCP service', async () => {
    const script = `
      const net = require('node:net');
      let open = 0;
      const done = () => { if (--open === 0) console.log('ok'); };
      for (let i = 0; i < 200; i++) {
        open++;
        const c = net.connect(53, '127.0.0.11', () => {
          const kind = i % 4;
          if (kind === 0) c.write(require('node:crypto').randomBytes(1 + (i * 37) % 3000));
          if (kind === 1) c.write(Buffer.from([0xff, 0xff, 1, 2, 3]));
          if (kind === 2) c.write(Buffer.from([0, 0]));
          if (kind === 3) c.write(Buffer.from([0, 40, 1]));
          setTimeout(() => c.destroy(), 50);
        });
        c.on('error', () => {});
        c.on('close', done);
      }
    `;
    const result = await inNs(w.ns.client, process.execPath, ['-e', script]);
    assert.equal(result.stdout.trim(), 'ok', result.stderr);
    assert.equal(resolver.alive, true);
    assert.deepEqual(await dig(w.ns.client, 'tasks.web', '+tcp'), ['10.0.1.11', '10.0.1.12']);
  });

  it('a task that leaves loses its sockets and its resolv.conf', async () => {
    const reloads = resolver.lines.filter((l) => /reloaded/.test(l)).length;
    writeFileSync(w.catalogFile, catalogText(w, { withOnlyb: false }));
    await resolver.waitFor(/reloaded.*1 closed/, 1);
    assert.ok(resolver.lines.filter((l) => /reloaded/.test(l)).length > reloads);
    const ss = await inNs(w.ns.onlyb, 'ss', ['-Hlnut', 'src', '127.0.0.11']);
    assert.equal(ss.stdout.trim(), '', 'no socket left in the namespace');
    assert.ok(!existsSync(`/etc/netns/${w.ns.onlyb}`));
    const recorded = JSON.parse(readFileSync(join(w.runDir, 'resolver.json'), 'utf8')) as { namespaces: Record<string, unknown> };
    assert.ok(!(`/run/netns/${w.ns.onlyb}` in recorded.namespaces));
    assert.deepEqual(await dig(w.ns.client, 'web'), ['10.0.1.2'], 'the others carry on');
  });

  it('a restart takes the same ports again, so the DNS redirect stays right without a reconcile', async () => {
    const file = join(w.runDir, 'resolver.json');
    const before = (JSON.parse(readFileSync(file, 'utf8')) as { namespaces: Record<string, unknown> }).namespaces;
    await resolver.stop('SIGTERM');
    assert.equal(resolver.process.exitCode, 0, resolver.errors.join('\n'));
    assert.ok(resolver.lines.some((l) => /stopped \(SIGTERM\)/.test(l)));
    assert.deepEqual((JSON.parse(readFileSync(file, 'utf8')) as { namespaces: unknown }).namespaces, before, 'stop keeps resolver.json');
    const down = await inNs(w.ns.client, 'dig', ['@127.0.0.11', '+time=1', '+tries=1', 'web']);
    assert.notEqual(down.exitCode, 0, 'nothing answers while stopped');

    resolver = await startResolver();
    assert.deepEqual((JSON.parse(readFileSync(file, 'utf8')) as { namespaces: unknown }).namespaces, before);
    assert.deepEqual(await dig(w.ns.client, 'web'), ['10.0.1.2']);
    assert.deepEqual(await dig(w.ns.client, 'web', '+tcp'), ['10.0.1.2']);

    const second = await execa(process.execPath, [CLI, 'resolver', '-c', w.catalogFile, '--node', 'node-1'], {
      env: { VIPMESH_RUN_DIR: w.runDir },
      reject: false,
      timeout: 20_000,
    });
    assert.equal(second.exitCode, 2, `${second.stdout}${second.stderr}`);
    assert.match(second.stderr, new RegExp(`another vipmesh resolver \\(pid ${resolver.process.pid}\\) serves this node`));
    assert.deepEqual((JSON.parse(readFileSync(file, 'utf8')) as { namespaces: unknown }).namespaces, before, 'the first one keeps its file');
  });

  it('with the upstream stopped, an unknown name gets SERVFAIL', async () => {
    await dnsmasq.stop('SIGTERM');
    for (const flags of [[], ['+tcp']]) {
      // A status at all shows the answer came within dig's 8 s: a hang, not a speed, is what fails here.
      const result = await digStatus(w.ns.client, 'outside.test', ...flags);
      assert.equal(result.status, 'SERVFAIL', result.text);
    }
    assert.deepEqual(await dig(w.ns.client, 'web'), ['10.0.1.2'], 'local names do not need the upstream');
  });
});

// Idle TCP clients inside one namespace, more of them than the resolver has
// slots, that never close their side. In-process (bind, records, chain and
// sockets as the resolver wires them) so the idle timeout can be short.
const HOLDERS = `
const net = require('node:net');
const [port, count] = process.argv.slice(1).map(Number);
const sockets = [];
let settled = 0;
for (let i = 0; i < count; i++) {
  // allowHalfOpen: the server's FIN does not make this client close its side.
  const s = net.connect({ port, host: '127.0.0.11', allowHalfOpen: true });
  s.state = 'connecting';
  s.on('connect', () => { s.state = 'open'; if (++settled === count) console.log('connected'); });
  s.on('end', () => { s.state = 'fin'; });
  s.on('close', () => { if (s.state === 'connecting' && ++settled === count) console.log('connected'); s.state = 'closed'; });
  s.on('error', () => {});
  sockets.push(s);
}
process.stdin.setEncoding('utf8').on('data', () => {
  const by = {};
  for (const s of sockets) by[s.state] = (by[s.state] ?? 0) + 1;
  console.log(JSON.stringify(by));
});
`;

describe('TCP slots of the resolver in a namespace', () => {
  it('idle clients that never close free their slots after the idle timeout; dig +tcp answers while they hold on', async (t) => {
    requireRoot();
    for (const tool of ['dig', 'nsenter', 'ip']) await requireTool(tool);
    const name = await netns(t, 'vrs');
    const path = `/run/netns/${name}`;
    const catalog = catalogOf(`
version: 1
networks: { appnet: { subnet: 10.0.1.0/24 } }
nodes: { node-1: { address: 192.0.2.11 } }
services: { web: { vips: { appnet: 10.0.1.2 } } }
tasks:
  client: { node: node-1, netns: ${path}, addresses: { appnet: 10.0.1.31 } }
`);
    const sockets = await bindInNamespace(path);
    const idleMs = 500;
    const served = serveNamespace(sockets, {
      netns: path,
      answerer: createResolver({ records: buildRecords(catalog, 'node-1', new Map()), upstreams: [] }),
      limits: { tcpIdleTimeoutMs: idleMs },
    });
    t.after(() => served.close());
    const slots = 256; // the default bound
    const holders = new Child('ip', ['netns', 'exec', name, process.execPath, '-e', HOLDERS, String(sockets.ports.tcp), String(slots + 4)], {}, 'pipe');
    t.after(() => holders.stop('SIGKILL'));
    await holders.waitFor(/^connected$/);
    const report = async (): Promise<Record<string, number>> => {
      const before = holders.lines.length;
      holders.process.stdin?.write('report\n');
      for (let i = 0; i < 500 && holders.lines.length === before; i++) await new Promise((r) => setTimeout(r, 10));
      return JSON.parse(holders.lines.at(-1)!) as Record<string, number>;
    };
    const digTcp = () => inNs(name, 'dig', ['@127.0.0.11', '-p', String(sockets.ports.tcp), '+tcp', '+short', '+time=2', '+tries=1', 'web']);

    // The 4 beyond the bound are closed on accept; the rest hold every slot.
    let full = await report();
    for (let i = 0; i < 100 && full['open'] !== slots; i++) full = await report();
    assert.deepEqual(full, { open: slots, fin: 4 }, `every slot is held: ${JSON.stringify(full)}`);
    assert.equal(served.connections(), slots);
    assert.notEqual((await digTcp()).stdout.trim(), '10.0.1.2', 'no slot left for dig');

    // Past the idle timeout every slot is free again, though no client has closed.
    for (let i = 0; i < 1000 && served.connections() > 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(served.connections(), 0);
    const held = await report();
    assert.deepEqual(held, { fin: slots + 4 }, `the clients got our FIN and keep their side open: ${JSON.stringify(held)}`);
    const answered = await digTcp();
    assert.equal(answered.stdout.trim(), '10.0.1.2', `${answered.stdout}${answered.stderr}`);
    assert.equal(served.counters.tcpIdleClosed, slots);
  });
});

// dnsperf against vipmesh's resolver and against dnsmasq holding the same 1000
// records, in one run with one query file (90 % hits, 10 % unknown names). Both
// serve inside one throwaway namespace and dnsperf runs there too, so neither
// goes through the DNAT of 127.0.0.11:53: this compares the servers.
// Both forward the names they don't own to one upstream dnsmasq (in the same
// namespace, on 127.0.0.13:53, answering NXDOMAIN to everything): the same work.
// The vipmesh resolver process runs in that namespace too (`ip netns exec`), so
// its upstream socket talks over the namespace's lo like dnsmasq's does. Neither
// caches the forwarded answers: the upstream's NXDOMAIN carries no SOA, which
// dnsmasq does not cache without --neg-ttl (and --no-negcache says so), and
// vipmesh does not cache forwarded answers at all.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import dgram from 'node:dgram';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { execa } from 'execa';
import { parseCatalog } from '../src/catalog/load.js';
import { createResolver } from '../src/resolver/answer.js';
import { buildRecords } from '../src/resolver/records.js';
import { counts, dnsperf, latency, requireTools, type DnsTarget, type Latency } from './dnsperf.js';
import { createLab, machine, median, requireRoot } from './lab.js';

const SERVICES = 1000;
const CLIENT_NET = 'benchnet';
/** The upstream dnsmasq both servers forward unknown names to, in the bench namespace. */
const UPSTREAM = '127.0.0.13';

export interface ResolverBenchOptions {
  readonly seconds?: number;
  readonly rounds?: number;
  readonly fixedQps?: number;
  /** Also measure 1 and 2 answering threads on reusePort sockets (not the resolver: its chain, standalone). */
  readonly reusePort?: boolean;
}

interface Server extends DnsTarget {
  readonly pid: number;
}

interface Result {
  readonly qps: number;
  readonly cpuUsPerQuery: number;
  readonly lost: number;
}

const svc = (i: number) => `svc${String(i).padStart(4, '0')}`;
const vip = (i: number) => `10.1.${(i + 2) >> 8}.${(i + 2) & 0xff}`;

/** A deterministic 10 000-line query file: 90 % known names and 10 % unknown, or all known. */
function queryFile(dir: string, misses: boolean): string {
  let seed = 42;
  const next = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
  const lines = Array.from({ length: 10_000 }, (_, i) => (misses && i % 10 === 9 ? `miss${String(next() % 100_000).padStart(5, '0')} A` : `${svc(next() % SERVICES)} A`));
  const file = join(dir, misses ? 'queries-mixed.txt' : 'queries-known.txt');
  writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

function catalog(netns: string): object {
  const services = Object.fromEntries(Array.from({ length: SERVICES }, (_, i) => [svc(i), { vips: { [CLIENT_NET]: vip(i) } }]));
  return {
    version: 1,
    networks: { [CLIENT_NET]: { subnet: '10.1.0.0/16' } },
    nodes: { 'node-0': { address: '192.0.2.10' } },
    services,
    tasks: { client: { node: 'node-0', netns, addresses: { [CLIENT_NET]: '10.1.200.1' } } },
  };
}

function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]); // utime + stime, after the (comm)
}

const TICKS_PER_SECOND = 100;

async function maxRate(netns: string, server: Server, file: string, seconds: number, extra: readonly string[] = []): Promise<Result> {
  const before = cpuTicks(server.pid);
  const out = await dnsperf(netns, server, file, ['-l', String(seconds), ...extra]);
  const ticks = cpuTicks(server.pid) - before;
  const { qps, completed, lost } = counts(out);
  return { qps, cpuUsPerQuery: ((ticks / TICKS_PER_SECOND) * 1e6) / completed, lost };
}

/** p50/p99 in ms at a fixed rate. */
async function fixedRate(netns: string, server: Server, file: string, qps: number, seconds: number): Promise<Latency> {
  return latency(await dnsperf(netns, server, file, ['-l', String(seconds), '-Q', String(qps), '-v']), server.name);
}

interface Child extends PromiseLike<{ exitCode?: number | undefined }> {
  readonly stdout: NodeJS.ReadableStream | null;
  readonly stderr: NodeJS.ReadableStream | null;
}

async function waitFor(child: Child, pattern: RegExp, what: string): Promise<void> {
  let seen = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not start within 20 s: ${seen}`)), 20_000);
    const look = (chunk: Buffer | string) => {
      seen += chunk.toString();
      if (pattern.test(seen)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', look);
    child.stderr?.on('data', look);
    child.then((r) => reject(new Error(`${what} exited ${r.exitCode}: ${seen}`)), reject);
  });
}

export async function runResolverBench(options: ResolverBenchOptions = {}): Promise<{ markdown: string }> {
  requireRoot('the resolver benchmark');
  const seconds = options.seconds ?? 10;
  const rounds = options.rounds ?? 3;
  const fixedQps = options.fixedQps ?? 20_000;
  await requireTools('the resolver benchmark', ['dnsperf', 'dnsmasq']);
  const dir = mkdtempSync(join(tmpdir(), 'vipmesh-dnsbench-'));
  const loadBefore = loadavg()[0]!;
  const lab = createLab('vd');
  const children: { kill(signal: NodeJS.Signals): boolean }[] = [];
  try {
    const [netns] = await lab.add(['client']);
    const name = netns!.split('/').pop()!;
    await execa('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
    const mixed = queryFile(dir, true);
    const known = queryFile(dir, false);
    writeFileSync(join(dir, 'hosts'), Array.from({ length: SERVICES }, (_, i) => `${vip(i)} ${svc(i)}\n`).join(''));
    writeFileSync(join(dir, 'catalog.json'), JSON.stringify(catalog(netns!)));

    const dnsmasqArgs = (listen: string, extra: string[]) => [
      '-C', '/dev/null', '--keep-in-foreground', `--listen-address=${listen}`, '--port=53', '--bind-interfaces',
      '--no-resolv', '--no-hosts', '--user=root', '--pid-file=', ...extra,
    ];
    // The upstream both forward to: NXDOMAIN for every name (no SOA with it).
    const upstream = execa('ip', ['netns', 'exec', name, 'dnsmasq', ...dnsmasqArgs(UPSTREAM, ['--local=/#/'])], { reject: false });
    children.push(upstream as unknown as { kill(signal: NodeJS.Signals): boolean });
    // The dnsmasq under test: same records, TTL 600 like vipmesh, every other name
    // forwarded to the upstream, negative answers not cached (vipmesh caches none).
    const dnsmasq = execa('ip', ['netns', 'exec', name, 'dnsmasq', ...dnsmasqArgs('127.0.0.12', [
      `--addn-hosts=${join(dir, 'hosts')}`, '--local-ttl=600', `--server=${UPSTREAM}`, '--no-negcache',
    ])], { reject: false });
    children.push(dnsmasq as unknown as { kill(signal: NodeJS.Signals): boolean });

    const main = fileURLToPath(new URL('../src/cli/bin.js', import.meta.url));
    // VIPMESH_BENCH_NODE_ARGS, e.g. `--cpu-prof --cpu-prof-dir=/tmp/p`, profiles the resolver.
    const nodeArgs = (process.env['VIPMESH_BENCH_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== '');
    const resolver = execa('ip', ['netns', 'exec', name, process.execPath, ...nodeArgs, main, 'resolver', '-c', join(dir, 'catalog.json'), '--node', 'node-0', '--upstream', `${UPSTREAM}:53`], {
      reject: false, env: { VIPMESH_RUN_DIR: join(dir, 'run') }, buffer: false,
    });
    children.push(resolver as unknown as { kill(signal: NodeJS.Signals): boolean });
    await waitFor(resolver, /serving 1 namespace/, 'vipmesh resolver');
    const ports = JSON.parse(readFileSync(join(dir, 'run', 'resolver.json'), 'utf8')) as { namespaces: Record<string, { udp: number }> };
    await new Promise((r) => setTimeout(r, 300)); // dnsmasq reads its hosts file
    const dnsmasqPid = Number((await execa('pgrep', ['-f', `addn-hosts=${join(dir, 'hosts')}`])).stdout.split('\n')[0]);
    const servers: Server[] = [
      { name: 'vipmesh', address: '127.0.0.11', port: ports.namespaces[netns!]!.udp, pid: resolver.pid! },
      { name: 'dnsmasq 2.90', address: '127.0.0.12', port: 53, pid: dnsmasqPid },
    ];

    const rows: string[] = [];
    const qpsOf = new Map<string, number>();
    for (const [label, file] of [['90 % known', mixed], ['all known', known]] as const) {
      const results = new Map<string, Result[]>(servers.map((s) => [s.name, []]));
      for (let r = 0; r < rounds; r++) {
        for (const server of servers) results.get(server.name)!.push(await maxRate(name, server, file, seconds));
      }
      for (const server of servers) {
        const all = results.get(server.name)!;
        const qps = median(all.map((x) => x.qps));
        qpsOf.set(`${label} ${server.name}`, qps);
        const lat = await fixedRate(name, server, file, fixedQps, Math.max(3, Math.round(seconds / 2)));
        const range = `${(Math.min(...all.map((x) => x.qps)) / 1000).toFixed(1)}–${(Math.max(...all.map((x) => x.qps)) / 1000).toFixed(1)}k`;
        rows.push(`| ${label} | ${server.name} | ${(qps / 1000).toFixed(1)}k (${range}) | ${median(all.map((x) => x.cpuUsPerQuery)).toFixed(1)} | ` +
          `${all.reduce((n, x) => n + x.lost, 0)} | ${lat.p50.toFixed(3)} | ${lat.p99.toFixed(3)} | ${lat.rcodes} |`);
      }
    }
    const reuseRows = options.reusePort === true ? await reusePortRows(name, netns!, join(dir, 'catalog.json'), known, servers[1]!, seconds, rounds) : [];
    const ratio = (label: string) => (qpsOf.get(`${label} vipmesh`)! / qpsOf.get(`${label} dnsmasq 2.90`)!).toFixed(2);
    const out = [
      `${SERVICES} records, query files of 10 000 lines (90 % known names and 10 % unknown, as the issue asks; and all known), UDP; dnsperf and both servers in one throwaway namespace; ` +
        `max rate: \`dnsperf -l ${seconds}\` (100 outstanding), ${rounds} rounds each, alternating; latency at a fixed ${fixedQps / 1000}k QPS (\`-Q ${fixedQps} -v\`). ` +
        'Server CPU from /proc/PID/stat. Both forward the unknown names to the same upstream dnsmasq in that namespace (127.0.0.13:53, NXDOMAIN for all; its CPU not counted, but it shares the two cores); ' +
        'neither caches those answers (dnsmasq: `--no-negcache`, and the NXDOMAIN has no SOA; vipmesh caches only its own answers).',
      '',
      `| queries | server | QPS median (range) | server CPU µs/query | queries lost | p50 ms @${fixedQps / 1000}k | p99 ms @${fixedQps / 1000}k | answers |`,
      '|---|---|---:|---:|---:|---:|---:|---|',
      ...rows,
      '',
      `vipmesh ÷ dnsmasq QPS: **${ratio('90 % known')}×** with 10 % unknown names, **${ratio('all known')}×** with known names only (target ≥ 0.9×).`,
      '',
      ...reuseRows,
      `Load average (1 min) before and after: ${loadBefore.toFixed(2)}, ${loadavg()[0]!.toFixed(2)} (the machine is shared; these are wall-clock numbers). ` +
        `Machine: ${await machine()}. Command: \`sudo ${options.reusePort === true ? 'VIPMESH_BENCH_REUSEPORT=1 ' : ''}node dist/bench/resolver.js\` (after \`npm run build\`).`,
    ];
    return { markdown: out.join('\n') };
  } finally {
    for (const child of children) child.kill('SIGTERM');
    await Promise.allSettled(children as unknown as Promise<unknown>[]);
    await lab.close();
  }
}

const REUSE_ADDRESS = '127.0.0.14';

/**
 * reusePort, measured apart from the resolver: `threads` worker threads of a child
 * process in the bench namespace, each with its own reusePort UDP socket on
 * REUSE_ADDRESS:53 and its own answering chain (records and reply cache) over the
 * bench catalog. dnsperf -c 4 uses four source ports, so the kernel's reuseport
 * hash can spread them (one client's flow always lands on one socket).
 */
async function reusePortRows(name: string, netns: string, catalogFile: string, file: string, dnsmasq: Server, seconds: number, rounds: number): Promise<string[]> {
  const rows: string[] = [];
  for (const threads of [1, 2]) {
    const child = execa('ip', ['netns', 'exec', name, process.execPath, fileURLToPath(import.meta.url), '--reuse-port-server', String(threads), catalogFile, netns], { reject: false, buffer: false });
    try {
      await waitFor(child, /ready/, 'the reusePort responder');
      const server: Server = { name: `${threads} reusePort thread(s)`, address: REUSE_ADDRESS, port: 53, pid: child.pid! };
      const all: Result[] = [];
      for (let r = 0; r < rounds; r++) all.push(await maxRate(name, server, file, seconds, ['-c', '4']));
      rows.push(`| all known, \`-c 4\` | ${server.name} | ${(median(all.map((x) => x.qps)) / 1000).toFixed(1)}k (${(Math.min(...all.map((x) => x.qps)) / 1000).toFixed(1)}–${(Math.max(...all.map((x) => x.qps)) / 1000).toFixed(1)}k) | ${median(all.map((x) => x.cpuUsPerQuery)).toFixed(1)} | ${all.reduce((n, x) => n + x.lost, 0)} |`);
    } finally {
      child.kill('SIGTERM');
      await child;
    }
  }
  const all: Result[] = [];
  for (let r = 0; r < rounds; r++) all.push(await maxRate(name, dnsmasq, file, seconds, ['-c', '4']));
  rows.push(`| all known, \`-c 4\` | ${dnsmasq.name} | ${(median(all.map((x) => x.qps)) / 1000).toFixed(1)}k (${(Math.min(...all.map((x) => x.qps)) / 1000).toFixed(1)}–${(Math.max(...all.map((x) => x.qps)) / 1000).toFixed(1)}k) | ${median(all.map((x) => x.cpuUsPerQuery)).toFixed(1)} | ${all.reduce((n, x) => n + x.lost, 0)} |`);
  return [
    `reusePort, apart from the resolver (its answering chain on N worker threads, a reusePort socket each; \`dnsperf -l ${seconds} -c 4\`, ${rounds} rounds):`, '',
    '| queries | server | QPS median (range) | server CPU µs/query | queries lost |', '|---|---|---:|---:|---:|', ...rows, '',
  ];
}

/** One answering thread of the reusePort responder. */
function reusePortThread(data: { catalogFile: string; netns: string }): void {
  const loaded = parseCatalog(readFileSync(data.catalogFile, 'utf8'));
  if (!loaded.ok) throw new Error('the bench catalog does not load');
  const resolver = createResolver({ records: buildRecords(loaded.catalog, 'node-0', new Map()), upstreams: [] });
  const socket = dgram.createSocket({ type: 'udp4', reusePort: true });
  socket.on('message', (bytes, remote) => {
    const reply = resolver.answer({ bytes, transport: 'udp', netns: data.netns });
    if (!(reply instanceof Promise) && reply.bytes !== null) socket.send(reply.bytes, remote.port, remote.address);
  });
  socket.bind(53, REUSE_ADDRESS, () => parentPort!.postMessage('bound'));
}

if (!isMainThread && (workerData as { reusePortThread?: unknown } | null)?.reusePortThread === true) {
  reusePortThread(workerData as { catalogFile: string; netns: string });
} else if (isMainThread && process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.argv[2] === '--reuse-port-server') {
    const [threads, catalogFile, netns] = process.argv.slice(3);
    let bound = 0;
    for (let i = 0; i < Number(threads); i++) {
      new Worker(new URL(import.meta.url), { workerData: { reusePortThread: true, catalogFile, netns } }).on('message', () => {
        if (++bound === Number(threads)) process.stdout.write('ready\n');
      });
    }
  } else {
    const seconds = Number(process.argv[2] ?? 10);
    const { markdown } = await runResolverBench({ seconds, reusePort: process.env['VIPMESH_BENCH_REUSEPORT'] === '1' });
    process.stdout.write(markdown + '\n');
  }
}

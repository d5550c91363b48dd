// The resolver host against the real kernel (root): the resolver on its worker
// thread serves dig in task namespaces while this thread's loop is blocked (the
// point of running it apart from the agent's passes), follows updates, lets go
// of a namespace that is gone so the kernel can free it, and leaves nothing
// behind when its process is killed. dig asks the resolver's own ports on
// 127.0.0.11; the DNAT from port 53 is reconcile's, tested in resolver.test.ts.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type TestContext } from 'node:test';
import { execa } from 'execa';
import { type ResolverHost, ResolverHostError, type ResolverHostOptions, type SyncReport, startResolverHost } from '../../src/resolver/host.js';
import { catalogOf } from '../helpers/catalog.js';
import { inNetns, netns, plumbing, requireRoot, run, uniqueName } from '../helpers/netns.js';
import { ROOT } from '../helpers/paths.js';
import { requireTool } from '../helpers/tools.js';

const CHILD = join(ROOT, 'dist', 'test', 'helpers', 'resolver-host-child.js');

async function prerequisites(): Promise<void> {
  requireRoot();
  for (const tool of ['dig', 'ip', 'ss', 'nsenter']) await requireTool(tool);
}

/** A task namespace with lo up, as the plumbing makes them (127.0.0.11 is local only then). */
async function taskNetns(t: TestContext, prefix: string): Promise<{ name: string; path: string }> {
  const name = await netns(t, prefix);
  return { name, path: `/run/netns/${name}` };
}

function tempDirs(t: TestContext): { runDir: string; etcNetns: string; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'vipmesh-rhost-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return { dir, runDir: join(dir, 'run'), etcNetns: join(dir, 'etc-netns') };
}

async function startHost(t: TestContext, more: Partial<ResolverHostOptions> = {}): Promise<{ host: ResolverHost; synced: SyncReport[] }> {
  const dirs = tempDirs(t);
  const synced: SyncReport[] = [];
  const host = await startResolverHost({
    node: 'node-1',
    runDir: dirs.runDir,
    etcNetns: dirs.etcNetns,
    upstreams: [],
    search: [],
    onSync: (report) => synced.push(report),
    ...more,
  });
  // After hooks run in the order they were added: the directory's removal came first, and a
  // stopping host writes resolver.json there again; removed once more after the stop.
  t.after(async () => {
    await host.stop();
    rmSync(dirs.dir, { recursive: true, force: true });
  });
  return { host, synced };
}

interface TaskLine {
  readonly name: string;
  readonly netns: string;
  readonly address: string;
  readonly service?: string;
}

function catalog(tasks: readonly TaskLine[]) {
  const lines = tasks.map(
    (task) => `  ${task.name}: { ${task.service === undefined ? '' : `service: ${task.service}, `}node: node-1, netns: ${task.netns}, addresses: { appnet: ${task.address} } }`,
  );
  return catalogOf(`
version: 1
networks: { appnet: { subnet: 10.0.1.0/24 } }
nodes: { node-1: { address: 192.0.2.11 }, node-2: { address: 192.0.2.12 } }
services: { web: { vips: { appnet: 10.0.1.2 } }, api: { endpointMode: dnsrr, networks: [appnet] } }
tasks:
  web.9.remote: { service: web, node: node-2, netns: /run/netns/remote-web9, addresses: { appnet: 10.0.1.19 } }
${lines.join('\n')}
`);
}

function portsOf(host: ResolverHost, netns: string): { udp: number; tcp: number } {
  const ports = host.ports().get(netns);
  assert.ok(ports !== undefined, `the host holds ports in ${netns}: ${JSON.stringify([...host.ports()])}`);
  return ports;
}

/** dig's answers (+short, sorted), or its complaint. +time bounds a hang. */
async function dig(ns: string, port: number, name: string, ...flags: string[]): Promise<string[]> {
  const result = await execa('ip', ['netns', 'exec', ns, 'dig', '@127.0.0.11', '-p', String(port), '+short', '+time=2', '+tries=1', ...flags, name], {
    reject: false,
  });
  if (result.exitCode !== 0) return [`dig failed (exit ${result.exitCode}): ${result.stdout.trim()}`];
  return result.stdout.split('\n').filter((l) => l !== '').sort();
}

/** dig's status: NOERROR, NXDOMAIN, SERVFAIL … */
async function status(ns: string, port: number, name: string): Promise<string> {
  const result = await execa('ip', ['netns', 'exec', ns, 'dig', '@127.0.0.11', '-p', String(port), '+time=2', '+tries=1', name], { reject: false });
  return /status: (\w+)/.exec(result.stdout)?.[1] ?? `no status (exit ${result.exitCode})`;
}

async function until(what: string, condition: () => Promise<boolean> | boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs; // a generous bound: it only catches a hang
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('the host serves dig in a task namespace, over UDP and TCP, from its worker thread', async (t) => {
  await prerequisites();
  const client = await taskNetns(t, 'vhc');
  const web = await taskNetns(t, 'vhw');
  const { host } = await startHost(t);
  const report = await host.update(
    catalog([
      { name: 'client', netns: client.path, address: '10.0.1.31' },
      { name: 'web.1.a', service: 'web', netns: web.path, address: '10.0.1.11' },
    ]),
    new Map(),
    new Set(),
  );
  assert.deepEqual(report.bound.map((b) => b.netns).sort(), [client.path, web.path].sort());
  const ports = portsOf(host, client.path);
  assert.deepEqual(await dig(client.name, ports.udp, 'web'), ['10.0.1.2']);
  assert.deepEqual(await dig(client.name, ports.udp, 'tasks.web'), ['10.0.1.11', '10.0.1.19']);
  assert.deepEqual(await dig(client.name, ports.tcp, 'tasks.web', '+tcp'), ['10.0.1.11', '10.0.1.19']);
  assert.deepEqual(await dig(web.name, portsOf(host, web.path).udp, 'client'), ['10.0.1.31']);
  // The sockets are this process's (the worker is one of its threads), and live in the task's namespace.
  const ss = await inNetns(client.name, 'ss', ['-Hlnup', '-t', 'src', '127.0.0.11']);
  assert.equal(ss.split('\n').filter((l) => l.includes(`pid=${process.pid},`)).length, 2, ss);
  assert.equal((await run('ss', ['-Hlnut', 'src', '127.0.0.11'])).trim(), '', 'nothing of it in our own namespace');
});

test('while this thread\'s loop is blocked for 2 s (a pass), dig in the namespace still gets answers', async (t) => {
  await prerequisites();
  const client = await taskNetns(t, 'vhb');
  const { host } = await startHost(t);
  await host.update(catalog([{ name: 'client', netns: client.path, address: '10.0.1.31' }]), new Map(), new Set());
  const ports = portsOf(host, client.path);
  // Each query gives up after 1 s (+time=1 +tries=1): a resolver on this loop could answer none of those
  // sent during the 2 s block, so every one of them would fail.
  const script = `
    i=0
    while [ $i -lt 16 ]; do
      if [ $((i % 2)) -eq 0 ]; then port=${ports.udp}; tcp=; else port=${ports.tcp}; tcp=+tcp; fi
      s=$(date +%s%3N)
      r=$(dig @127.0.0.11 -p $port +short +time=1 +tries=1 $tcp tasks.web 2>&1 | sort | tr '\\n' ',')
      echo "$s $(date +%s%3N) $r"
      i=$((i + 1))
      sleep 0.1
    done`;
  const queries = execa('ip', ['netns', 'exec', client.name, 'sh', '-c', script], { reject: false, buffer: false, timeout: 60_000 });
  let out = '';
  queries.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString()));
  await until('the queries have started', () => out.includes('\n'));
  const blockedFrom = Date.now();
  while (Date.now() - blockedFrom < 2_000); // busy: no timer, no I/O, no message on this thread
  const blockedUntil = Date.now();
  const result = await queries;
  assert.equal(result.exitCode, 0, out);
  const lines = out.split('\n').filter(Boolean).map((line) => {
    const [sent, answered, answer] = line.split(' ');
    return { sent: Number(sent), answered: Number(answered), answer: answer ?? '' };
  });
  assert.equal(lines.length, 16);
  for (const line of lines) assert.equal(line.answer, '10.0.1.19,', `every query answered: ${out}`);
  const during = lines.filter((l) => l.sent >= blockedFrom && l.answered <= blockedUntil);
  // Not a speed check: only that the scenario took place (queries were sent and answered while the loop was blocked).
  assert.ok(during.length >= 2, `queries answered while the loop was blocked (${blockedFrom}–${blockedUntil}): ${out}`);
});

test('an update adding a task makes its name answer, and its own namespace is served', async (t) => {
  await prerequisites();
  const client = await taskNetns(t, 'vhu');
  const fresh = await taskNetns(t, 'vhn');
  const { host } = await startHost(t);
  const before = [{ name: 'client', netns: client.path, address: '10.0.1.31' }];
  await host.update(catalog(before), new Map(), new Set());
  const ports = portsOf(host, client.path);
  assert.equal(await status(client.name, ports.udp, 'api.1.new'), 'SERVFAIL', 'not ours yet: forwarded, and there is no upstream');

  const report = await host.update(catalog([...before, { name: 'api.1.new', service: 'api', netns: fresh.path, address: '10.0.1.41' }]), new Map(), new Set());
  assert.deepEqual(report.bound.map((b) => b.netns), [fresh.path]);
  assert.deepEqual(await dig(client.name, ports.udp, 'api.1.new'), ['10.0.1.41']);
  assert.deepEqual(await dig(client.name, ports.udp, 'api'), ['10.0.1.41']);
  assert.deepEqual(await dig(fresh.name, portsOf(host, fresh.path).udp, 'client'), ['10.0.1.31']);
});

test('an update that times out still binds its namespaces, and says so through onSync', async (t) => {
  await prerequisites();
  const client = await taskNetns(t, 'vht');
  // No worker binds a namespace within 1 ms: the caller stops waiting, the worker does not.
  const { host, synced } = await startHost(t, { updateTimeoutMs: 1 });
  await assert.rejects(
    host.update(catalog([{ name: 'client', netns: client.path, address: '10.0.1.31' }]), new Map(), new Set()),
    (error: unknown) => error instanceof ResolverHostError && error.kind === 'timeout',
  );
  await until('the late sync reaches onSync', () => synced.some((report) => report.bound.some((b) => b.netns === client.path)));
  assert.deepEqual(await dig(client.name, portsOf(host, client.path).udp, 'client'), ['10.0.1.31']);
});

/**
 * A task namespace whose end of a veth pair sits in an observer namespace: the
 * kernel deletes that peer when it destroys the task's namespace, so the peer
 * vanishing says the namespace was freed — nothing held it any more.
 */
async function observedNetns(t: TestContext, prefix: string): Promise<{ name: string; path: string; observer: string; peer: string; ino: string }> {
  const task = await taskNetns(t, prefix);
  const observer = await netns(t, 'vho');
  const peer = 'obs0';
  await plumbing(t).wire(task.name, 'eth0', [], observer, peer, []);
  const ino = String((await execa('stat', ['-L', '-c', '%i', task.path])).stdout.trim());
  return { ...task, observer, peer, ino };
}

const peerExists = async (ns: { observer: string; peer: string }) =>
  (await execa('ip', ['-n', ns.observer, 'link', 'show', ns.peer], { reject: false })).exitCode === 0;

/** The inodes (ss -e) of the sockets on 127.0.0.11 in the namespace, with their owner. */
async function socketInodes(name: string): Promise<string[]> {
  const out = await inNetns(name, 'ss', ['-Hlnupe', '-t', 'src', '127.0.0.11']);
  return [...out.matchAll(/ino:(\d+)/g)].map((m) => m[1]!);
}

/** Every process's descriptors and threads' namespaces that point at the namespace or its sockets. */
function holders(nsIno: string, sockets: readonly string[]): string[] {
  const targets = new Set([`net:[${nsIno}]`, ...sockets.map((s) => `socket:[${s}]`)]);
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    const links: string[] = [];
    try {
      for (const fd of readdirSync(`/proc/${pid}/fd`)) links.push(`/proc/${pid}/fd/${fd}`);
      for (const tid of readdirSync(`/proc/${pid}/task`)) links.push(`/proc/${pid}/task/${tid}/ns/net`);
    } catch {
      continue; // the process ended meanwhile
    }
    for (const link of links) {
      try {
        if (targets.has(readlinkSync(link))) found.push(`${link} → ${readlinkSync(link)}`);
      } catch {
        // closed meanwhile
      }
    }
  }
  return found;
}

test('a namespace the agent says is gone: its names stop answering, its sockets close, and the kernel frees it', async (t) => {
  await prerequisites();
  const client = await taskNetns(t, 'vhg');
  const doomed = await observedNetns(t, 'vhd');
  const { host } = await startHost(t, { checkMs: 0 }); // the agent tells it here, not its own check
  const tasks = [
    { name: 'client', netns: client.path, address: '10.0.1.31' },
    { name: 'api.1.doomed', service: 'api', netns: doomed.path, address: '10.0.1.41' },
  ];
  const listing = catalog(tasks);
  await host.update(listing, new Map(), new Set());
  const ports = portsOf(host, client.path);
  assert.deepEqual(await dig(client.name, ports.udp, 'tasks.api'), ['10.0.1.41']);
  assert.deepEqual(await dig(client.name, ports.udp, 'api.1.doomed'), ['10.0.1.41']);
  const sockets = await socketInodes(doomed.name);
  assert.equal(sockets.length, 2, 'a UDP and a TCP socket of ours in it');

  await run('ip', ['netns', 'delete', doomed.name]);
  // Our sockets hold it: deleting its name does not free it. (This is what the check below can catch.)
  await new Promise((r) => setTimeout(r, 500));
  assert.ok(await peerExists(doomed), 'while the resolver holds sockets in it, the namespace lives on');
  assert.ok(holders(doomed.ino, sockets).length > 0, 'and its sockets are found among our descriptors');

  const report = await host.update(listing, new Map(), new Set([doomed.path]));
  assert.deepEqual(report.closed, [doomed.path]);
  assert.ok(!host.ports().has(doomed.path));
  assert.equal(await status(client.name, ports.udp, 'api.1.doomed'), 'SERVFAIL', 'its name is not ours any more: forwarded');
  assert.deepEqual(await dig(client.name, ports.udp, 'tasks.api'), [], 'tasks.api has no serving task left here');
  await until('the kernel frees the namespace (its veth peer goes)', async () => !(await peerExists(doomed)));
  assert.deepEqual(holders(doomed.ino, sockets), [], 'no descriptor or thread anywhere refers to it');
});

test('a namespace deleted without a word is found by the worker: out of DNS, sockets closed, freed; one never made fails its bind as gone', async (t) => {
  await prerequisites();
  const client = await taskNetns(t, 'vhs');
  const doomed = await observedNetns(t, 'vhx');
  const never = `/run/netns/${uniqueName('vhnever')}`;
  const { host, synced } = await startHost(t, { checkMs: 200 });
  const first = await host.update(
    catalog([
      { name: 'client', netns: client.path, address: '10.0.1.31' },
      { name: 'api.1.doomed', service: 'api', netns: doomed.path, address: '10.0.1.41' },
      { name: 'api.3.never', service: 'api', netns: never, address: '10.0.1.43' },
    ]),
    new Map(),
    new Set(),
  );
  assert.deepEqual(first.failed.map((f) => [f.netns, f.gone]), [[never, true]]);
  assert.deepEqual(first.gone, [never]);
  const ports = portsOf(host, client.path);
  assert.deepEqual(await dig(client.name, ports.udp, 'tasks.api'), ['10.0.1.41'], 'a task with no namespace does not serve');
  const sockets = await socketInodes(doomed.name);

  await run('ip', ['netns', 'delete', doomed.name]);
  await until('the worker reports it gone', () => synced.some((r) => r.gone.includes(doomed.path)));
  assert.ok(!host.ports().has(doomed.path));
  assert.deepEqual(await dig(client.name, ports.udp, 'tasks.api'), []);
  await until('the kernel frees the namespace', async () => !(await peerExists(doomed)));
  assert.deepEqual(holders(doomed.ino, sockets), []);
});

/** Processes whose environment holds the mark: the child and anything it started. */
function marked(mark: string): number[] {
  const pids: number[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      if (readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(`VIPMESH_TEST_MARK=${mark}`)) pids.push(Number(pid));
    } catch {
      // ended meanwhile, or a kernel thread
    }
  }
  return pids;
}

async function childHost(t: TestContext, task: { path: string }, mark: string) {
  const dirs = tempDirs(t);
  const file = join(dirs.dir, 'catalog.yaml');
  writeFileSync(file, `
version: 1
networks: { appnet: { subnet: 10.0.1.0/24 } }
nodes: { node-1: { address: 192.0.2.11 } }
tasks:
  client: { node: node-1, netns: ${task.path}, addresses: { appnet: 10.0.1.31 } }
`);
  const child = execa(process.execPath, [CHILD, file, 'node-1', dirs.runDir, dirs.etcNetns], {
    reject: false,
    buffer: false,
    env: { VIPMESH_TEST_MARK: mark },
  });
  t.after(() => child.kill('SIGKILL'));
  let out = '';
  let err = '';
  child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (err += chunk.toString()));
  await until('the child host is ready', () => {
    if (child.exitCode !== null) throw new Error(`the child exited ${child.exitCode}: ${err}`);
    return out.includes('"ready":true');
  });
  const ready = JSON.parse(out.split('\n')[0]!) as { ports: Record<string, { udp: number; tcp: number }> };
  return { child, ready, runDir: dirs.runDir, out: () => out, err: () => err };
}

test('killing the agent with SIGKILL leaves no resolver behind: no process, no socket in the namespace', async (t) => {
  await prerequisites();
  const task = await taskNetns(t, 'vhk');
  const mark = randomBytes(8).toString('hex');
  const { child, ready } = await childHost(t, task, mark);
  const ports = ready.ports[task.path]!;
  assert.deepEqual(await dig(task.name, ports.udp, 'client'), ['10.0.1.31']);
  assert.deepEqual(marked(mark), [child.pid], 'the mark finds the child (and would find anything it started)');
  const ss = await inNetns(task.name, 'ss', ['-Hlnup', '-t', 'src', '127.0.0.11']);
  assert.equal(ss.split('\n').filter((l) => l.includes(`pid=${child.pid},`)).length, 2, ss);

  child.kill('SIGKILL');
  const result = await child;
  assert.equal(result.signal, 'SIGKILL');
  await until('nothing of the child is left', () => marked(mark).length === 0);
  assert.equal((await inNetns(task.name, 'ss', ['-Hlnut', 'src', '127.0.0.11'])).trim(), '', 'no socket of it in the namespace');
  assert.match((await dig(task.name, ports.udp, 'client'))[0] ?? '', /dig failed/, 'nothing answers there');
});

test('on SIGTERM the host closes its sockets and leaves resolver.json; the next one takes the same ports', async (t) => {
  await prerequisites();
  const task = await taskNetns(t, 'vht');
  const mark = randomBytes(8).toString('hex');
  const first = await childHost(t, task, mark);
  const recorded = readFileSync(join(first.runDir, 'resolver.json'), 'utf8');
  first.child.kill('SIGTERM');
  const result = await first.child;
  assert.equal(result.exitCode, 0, first.err());
  assert.match(first.out(), /^stopped$/m);
  assert.equal(readFileSync(join(first.runDir, 'resolver.json'), 'utf8'), recorded, 'resolver.json stays for the next start');
  assert.equal((await inNetns(task.name, 'ss', ['-Hlnut', 'src', '127.0.0.11'])).trim(), '');

  const { host } = await startHost(t, { runDir: first.runDir });
  await host.update(catalog([{ name: 'client', netns: task.path, address: '10.0.1.31' }]), new Map(), new Set());
  assert.deepEqual(portsOf(host, task.path), first.ready.ports[task.path], 'the same ports: the DNAT there stays right');
});

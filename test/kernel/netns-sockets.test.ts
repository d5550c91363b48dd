// Binding the resolver's sockets inside throwaway namespaces (root): the sockets
// live in the task's namespace but belong to this process, the helper is gone,
// ports recorded by a previous run are taken again, and where one cannot be,
// the namespace's stale 127.0.0.11:53 flows are removed.
import assert from 'node:assert/strict';
import type dgram from 'node:dgram';
import type net from 'node:net';
import test, { type TestContext } from 'node:test';
import { execa } from 'execa';
import { ExecError, createRunner, spawnWithIpc } from '../../src/kernel/exec.js';
import { BindError, type NamespaceSockets, bindInNamespace } from '../../src/kernel/netns-sockets.js';
import { serveNamespace } from '../../src/resolver/serve.js';
import { inNetns, netns, run } from '../helpers/netns.js';
import { requireTool } from '../helpers/tools.js';

async function taskNamespace(t: TestContext): Promise<{ name: string; path: string }> {
  const name = await netns(t, 'vmb');
  return { name, path: `/run/netns/${name}` };
}

function closeAfter(t: TestContext, sockets: NamespaceSockets): NamespaceSockets {
  t.after(() => closeSockets(sockets.udp, sockets.tcp));
  return sockets;
}

function closeSockets(udp: dgram.Socket, tcp: net.Server): void {
  try {
    udp.close();
  } catch {
    // already closed
  }
  tcp.close();
}

/** Listening sockets on 127.0.0.11 in the namespace, as `ss` prints them, with their owner pids. */
async function listening(name: string): Promise<string[]> {
  const out = await inNetns(name, 'ss', ['-Hlnup', '-t', 'src', '127.0.0.11']);
  return out.split('\n').filter((l) => l.trim() !== '');
}

// A client inside the namespace: one UDP datagram and one framed TCP message to 127.0.0.11.
const CLIENT = `
const dgram = require('node:dgram'); const net = require('node:net');
const [udpPort, tcpPort] = process.argv.slice(1).map(Number);
const s = dgram.createSocket('udp4');
s.on('message', (m) => { console.log('udp', m.toString()); s.close();
  const c = net.connect(tcpPort, '127.0.0.11', () => c.write(Buffer.from([0, 4, 0x70, 0x69, 0x6e, 0x67])));
  c.on('data', (d) => { console.log('tcp', d.subarray(2).toString()); c.destroy(); });
});
s.send('ping', udpPort, '127.0.0.11');
setTimeout(() => { console.log('timeout'); process.exit(1); }, 3000).unref();
`;

test('sockets bound in a namespace are served by this process; the helper is gone', async (t) => {
  for (const tool of ['nsenter', 'ss']) await requireTool(tool);
  const ns = await taskNamespace(t);
  const sockets = closeAfter(t, await bindInNamespace(ns.path));
  assert.ok(sockets.ports.udp > 0 && sockets.ports.tcp > 0);
  assert.equal(sockets.changed, false);
  t.diagnostic(`bind took ${sockets.durationMs.toFixed(0)} ms`);

  const lines = await listening(ns.name);
  assert.equal(lines.length, 2, lines.join('\n'));
  for (const line of lines) assert.match(line, new RegExp(`pid=${process.pid},`), `owned by this process: ${line}`);
  assert.ok(lines.some((l) => l.includes(`127.0.0.11:${sockets.ports.udp}`)));
  assert.ok(lines.some((l) => l.includes(`127.0.0.11:${sockets.ports.tcp}`)));
  const here = await run('ss', ['-Hlnut', 'src', '127.0.0.11']);
  assert.equal(here.trim(), '', 'nothing listens on 127.0.0.11 in our own namespace');

  const served = serveNamespace(sockets, {
    netns: ns.path,
    answerer: { answer: async (q) => ({ bytes: Buffer.concat([Buffer.from('pong:'), q.bytes]), outcome: 'answered' }) },
  });
  t.after(() => served.close());
  const out = await inNetns(ns.name, process.execPath, ['-e', CLIENT, String(sockets.ports.udp), String(sockets.ports.tcp)]);
  assert.deepEqual(out.trim().split('\n'), ['udp pong:ping', 'tcp pong:ping']);
});

test('ports a previous run held are taken again', async (t) => {
  const ns = await taskNamespace(t);
  const first = await bindInNamespace(ns.path);
  closeSockets(first.udp, first.tcp);
  const again = closeAfter(t, await bindInNamespace(ns.path, { wanted: first.ports }));
  assert.deepEqual(again.ports, first.ports);
  assert.equal(again.changed, false);
});

test('a taken port is replaced, and the stale 127.0.0.11:53 flows to it are removed', async (t) => {
  for (const tool of ['conntrack', 'dig', 'iptables', 'nsenter']) await requireTool(tool);
  const ns = await taskNamespace(t);
  const holder = closeAfter(t, await bindInNamespace(ns.path));
  // The redirect an earlier run programmed, and a client flow that uses it.
  await inNetns(ns.name, 'iptables', ['-t', 'nat', '-A', 'OUTPUT', '-d', '127.0.0.11/32', '-p', 'udp', '--dport', '53',
    '-j', 'DNAT', '--to-destination', `127.0.0.11:${holder.ports.udp}`]);
  await execa('ip', ['netns', 'exec', ns.name, 'dig', '+time=1', '+tries=1', '-b', '127.0.0.1#40053', '@127.0.0.11', 'stale.example'], { reject: false });
  assert.match(await inNetns(ns.name, 'conntrack', ['-L', '-p', 'udp']), /sport=40053 dport=53/);

  const moved = closeAfter(t, await bindInNamespace(ns.path, { wanted: holder.ports, runner: createRunner() }));
  assert.equal(moved.changed, true);
  assert.notEqual(moved.ports.udp, holder.ports.udp);
  assert.notEqual(moved.ports.tcp, holder.ports.tcp);
  assert.deepEqual(moved.warnings, []);
  assert.doesNotMatch(await inNetns(ns.name, 'conntrack', ['-L', '-p', 'udp']), /dport=53/);
});

test('lo down: an error where the kernel refuses, otherwise bound with a warning', async (t) => {
  const down = await netns(t, 'vmb');
  await inNetns(down, 'ip', ['link', 'set', 'lo', 'down']); // as `ip netns add` leaves it; the plumbing brings lo up
  const path = `/run/netns/${down}`;
  try {
    const sockets = closeAfter(t, await bindInNamespace(path));
    assert.deepEqual(sockets.warnings, [`namespace ${path}: lo is down: 127.0.0.11 is bound, but unreachable until lo is up`]);
  } catch (error) {
    assert.ok(error instanceof BindError, String(error));
    assert.equal(error.kind, 'address');
    assert.match(error.message, new RegExp(`namespace ${path}: cannot bind udp 127\\.0\\.0\\.11:0: .*lo down`));
  }
});

test('a namespace that does not exist, or is not a namespace, is a clear error', async () => {
  for (const path of ['/run/netns/vipmesh-no-such-ns', '/etc/hostname']) {
    await assert.rejects(bindInNamespace(path), (error: unknown) => {
      assert.ok(error instanceof BindError);
      assert.equal(error.kind, 'no-namespace');
      assert.equal(error.message, `namespace ${path}: the namespace does not exist`);
      return true;
    });
  }
});

// A behaviour check, not a timing one: 20 binds, 8 at a time, each end up with
// their own sockets in their own namespace. The only bound on time is each
// bind's own timeout (15 s), which catches a hang, not a slow machine.
test('binding 20 namespaces, 8 at a time: each gets its own sockets, owned by this process', async (t) => {
  const spaces = await Promise.all(Array.from({ length: 20 }, () => taskNamespace(t)));
  const bound = new Map<string, NamespaceSockets>();
  let next = 0;
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (next < spaces.length) {
      const ns = spaces[next++]!;
      bound.set(ns.name, closeAfter(t, await bindInNamespace(ns.path)));
    }
  }));
  assert.equal(bound.size, 20);
  for (const ns of spaces) {
    const sockets = bound.get(ns.name)!;
    assert.equal(sockets.netns, ns.path);
    const lines = await listening(ns.name);
    assert.equal(lines.length, 2, `${ns.name}: ${lines.join('\n')}`);
    assert.ok(lines.some((l) => l.includes(`127.0.0.11:${sockets.ports.udp}`) && l.includes(`pid=${process.pid},`)), lines.join('\n'));
    assert.ok(lines.some((l) => l.includes(`127.0.0.11:${sockets.ports.tcp}`) && l.includes(`pid=${process.pid},`)), lines.join('\n'));
  }
});

test('spawnWithIpc: messages arrive; command, exit code, stderr and duration are recorded as run records them', async () => {
  const stats = { spawns: 0, commands: 0, bytesWritten: 0 };
  const script = "process.send({ hello: 'parent' }, () => { process.stderr.write('bye'); process.exit(3); });";
  const child = spawnWithIpc({ file: process.execPath, args: ['-e', script] }, stats);
  const messages: unknown[] = [];
  child.onMessage((message) => messages.push(message));
  const result = await child.exited;
  assert.deepEqual(messages, [{ hello: 'parent' }]);
  assert.equal(result.exitCode, 3);
  assert.equal(result.stderr, 'bye');
  assert.equal(result.timedOut, false);
  assert.equal(result.failure, undefined);
  assert.equal(result.command, child.command);
  assert.ok(result.command.startsWith(`${process.execPath} -e `), result.command);
  assert.ok(result.durationMs >= 0);
  assert.deepEqual(stats, { spawns: 1, commands: 1, bytesWritten: 0 });
  assert.match(new ExecError(result).message, /exited 3: bye$/);
});

test('spawnWithIpc: a namespace goes through nsenter; a child past its timeout is killed and says so', async (t) => {
  await requireTool('nsenter');
  const ns = await taskNamespace(t);
  const inside = spawnWithIpc({ file: process.execPath, args: ['-e', 'process.send("in")'], netns: ns.path });
  const got: unknown[] = [];
  inside.onMessage((message) => got.push(message));
  const done = await inside.exited;
  assert.equal(done.exitCode, 0, done.stderr);
  assert.ok(done.command.startsWith(`nsenter --net=${ns.path} -- `), done.command);
  assert.deepEqual(got, ['in']);

  const stuck = await spawnWithIpc({ file: process.execPath, args: ['-e', 'setInterval(() => {}, 1000)'], timeoutMs: 200 }).exited;
  assert.equal(stuck.timedOut, true);
  assert.equal(stuck.failure, 'timed out after 200 ms');
});

// The lab's plumbing against the real kernel: what it builds carries packets, and
// what it made (and only that) is gone after remove() or removeMade().
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { execa } from 'execa';
import { type Made, Plumbing, inNs, listNamespaces, removeMade, sh } from '../../src/lab/plumbing.js';
import { requireRoot, uniqueName } from '../helpers/netns.js';

/** A TCP server in `ns` that accepts and closes, until the test ends. */
async function listen(t: { after: (fn: () => void) => void }, ns: string, port: number): Promise<void> {
  const child = execa('ip', ['netns', 'exec', ns, process.execPath, '-e',
    `require('net').createServer((s) => s.end()).listen(${port}, () => console.log('up'))`], { reject: false, buffer: false });
  t.after(() => { child.kill('SIGKILL'); });
  await new Promise<void>((resolve, reject) => {
    child.stdout?.once('data', () => resolve());
    void child.then((r) => reject(new Error(`server in ${ns} exited: ${String(r.stderr)}`)));
  });
}

/** Connects from `ns` to host:port within 3 s, or throws. */
async function connect(ns: string, host: string, port: number): Promise<void> {
  await inNs(ns, process.execPath, ['-e',
    `const s = require('net').connect(${port}, '${host}', () => { s.destroy(); }); s.setTimeout(3000, () => { console.error('timeout'); process.exit(1); });`]);
}

function plumbing(t: { after: (fn: () => Promise<void>) => void }, journal: Made[] = []): Plumbing {
  const p = new Plumbing({
    journal: { add: (m) => { journal.push(m); }, forget: (m) => { journal.splice(journal.indexOf(m), 1); } },
  });
  t.after(() => p.remove());
  return p;
}

test('a segment, two plugged namespaces and a wire carry packets; remove() leaves no namespace', async (t) => {
  requireRoot();
  const journal: Made[] = [];
  const p = plumbing(t, journal);
  const [seg, a, b, c] = ['pls', 'pla', 'plb', 'plc'].map(uniqueName) as [string, string, string, string];
  await p.segment(seg);
  await p.ns(a);
  await p.ns(b);
  await p.ns(c);
  await p.plug(a, seg, 'eth0', '10.9.0.1/24');
  await p.plug(b, seg, 'eth0', ['10.9.0.2/24', '10.9.0.3/24']);
  await p.wire(b, 'p2p', '10.8.0.1/30', c, 'p2p', '10.8.0.2/30');
  await p.route(c, '10.9.0.0/24', 'via', '10.8.0.1');
  await p.sysctl(b, { 'net.ipv4.ip_forward': '1' });

  await listen(t, b, 7001);
  await listen(t, c, 7001);
  await connect(a, '10.9.0.3', 7001);
  await connect(c, '10.9.0.2', 7001);
  await inNs(a, 'ip', ['route', 'add', '10.8.0.0/30', 'via', '10.9.0.2']);
  await connect(a, '10.8.0.2', 7001);
  assert.deepEqual(journal.map((m) => m.name), [seg, a, b, c]);

  await p.remove();
  const left = await listNamespaces();
  for (const name of [seg, a, b, c]) assert.ok(!left.includes(name), `${name} is still there`);
  assert.deepEqual(p.objects, []);
});

test('a namespace that exists already is refused, not recorded, and survives remove()', async (t) => {
  requireRoot();
  const foreign = uniqueName('plf');
  await sh('ip', ['netns', 'add', foreign]);
  t.after(() => execa('ip', ['netns', 'delete', foreign], { reject: false }).then(() => undefined));
  const journal: Made[] = [];
  const p = plumbing(t, journal);
  await assert.rejects(p.ns(foreign), /exists already; it is not this lab's/);
  assert.deepEqual(journal, []);
  await p.remove();
  assert.ok((await listNamespaces()).includes(foreign), 'the foreign namespace was removed');
});

test('removeMade takes what a journal lists after its maker is gone, and what is gone already is no error', async (t) => {
  requireRoot();
  const journal: Made[] = [];
  const p = new Plumbing({ journal: { add: (m) => { journal.push(m); }, forget: () => undefined } });
  const [a, b] = [uniqueName('plj'), uniqueName('plj')];
  t.after(() => removeMade([{ kind: 'netns', name: a }, { kind: 'netns', name: b }]).then(() => undefined));
  await p.ns(a);
  await p.segment(b);
  await p.plug(a, b, 'eth0', '10.7.0.1/24');
  await sh('ip', ['netns', 'delete', a]); // one gone already
  const failed = await removeMade([...journal].reverse());
  assert.deepEqual(failed, []);
  const left = await listNamespaces();
  assert.ok(!left.includes(a) && !left.includes(b), `left behind: ${left.filter((n) => n === a || n === b).join(', ')}`);
});

// `vipmesh lab` as a user runs it (SPEC §7), from the built CLI:
// - `lab demo` (and with --etcd) shows, from its own output, what seed article 003
//   shows with Docker. On a kernel without IPVS it runs inside the kernel-lane
//   guest (minutes under QEMU); the facts are read from its output either way.
// - `lab up` then `lab down` — also after `kill -9` of `lab up` mid-way — leaves no
//   namespace, root-namespace link, process, /etc/netns entry or run directory.
//   These run on this host whatever its kernel: an agent on a kernel without IPVS
//   still makes its passes (IPVS is reported as missing, everything else applies),
//   so `lab up` comes up; what needs IPVS is the demo's, above.
// The lab's namespace names are fixed by fixtures/lab.yaml: these tests never run
// side by side (npm test runs with --test-concurrency=1).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type TestContext } from 'node:test';
import { execa } from 'execa';
import { digAddresses } from '../../src/lab/facts.js';
import { markedProcesses } from '../../src/lab/processes.js';
import { LAB, VIP, catalog, cli, whoamiTasks } from '../helpers/lab-fixture.js';
import { requireRoot } from '../helpers/netns.js';
import { CLI, FIXTURES, ROOT } from '../helpers/paths.js';
import { requireTool } from '../helpers/tools.js';


/** A run directory of this test's own; whatever lab it holds is taken down after the test. */
function runDir(t: TestContext): string {
  const dir = join(tmpdir(), `vipmesh-lab-test-${randomBytes(4).toString('hex')}`);
  t.after(async () => {
    if (existsSync(dir)) await cli(['lab', 'down', '--run-dir', dir], 120_000);
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/** What the lab could leave behind, as seen from outside it. */
async function traces(dir: string): Promise<{ namespaces: string[]; links: string[]; processes: string[]; etcNetns: string[]; runDir: boolean }> {
  // Other tests on this machine make namespaces of their own meanwhile: only the lab's names count.
  const namespaces = (await execa('ip', ['netns', 'list'])).stdout.split('\n').map((l) => l.split(' ')[0]!).filter((n) => n.startsWith('vipmesh-lab-')).sort();
  // Link names only: counters and flags change by themselves. The lab makes none in the root namespace.
  const links = (await execa('ip', ['-o', 'link'])).stdout.split('\n').map((l) => l.split(/\s+/)[1] ?? '').sort();
  // The lab's processes by what they run (this checkout's whoami server, agents on the lab's
  // catalog or etcd, the lab's etcd), and by the marker every one of them carries.
  const ps = (await execa('ps', ['-eo', 'pid=,args='])).stdout.split('\n');
  const byArgs = ps.filter((l) => l.includes(join(ROOT, 'dist/src/lab/whoami.js')) || l.includes(`agent -c ${LAB}`) || l.includes('/vipmesh-lab --node') || l.includes('etcd --name lab --data-dir'));
  const marked = (await markedProcesses(dir)).map((p) => `${p.pid} (marked)`);
  const processes = [...byArgs.map((l) => l.trim()), ...marked];
  const etcNetns = existsSync('/etc/netns') ? readdirSync('/etc/netns').filter((n) => n.startsWith('vipmesh-lab-')).sort() : [];
  return { namespaces, links, processes, etcNetns, runDir: existsSync(dir) };
}

async function waitFor(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('lab up, then lab down, leaves nothing behind; the lab answers DNS and ARP as it should while up', { timeout: 10 * 60_000 }, async (t) => {
  requireRoot();
  await requireTool('dig');
  await requireTool('ebtables');
  const dir = runDir(t);
  const before = await traces(dir);
  assert.deepEqual(before.processes, [], 'no lab runs before the test');
  assert.deepEqual(before.namespaces, [], 'no lab namespace exists before the test');

  const up = await cli(['lab', 'up', '-c', LAB, '--run-dir', dir], 5 * 60_000);
  assert.equal(up.exitCode, 0, String(up.all));
  assert.match(String(up.all), /the lab is up/);
  const during = await traces(dir);
  assert.equal(during.namespaces.length, 16, during.namespaces.join(' '));
  assert.ok(during.etcNetns.length > 0, 'the agents wrote the tasks\' resolv.conf');
  assert.ok(during.processes.length >= 8, `6 whoami servers and 2 agents run:\n${during.processes.join('\n')}`);
  assert.deepEqual(before.links, during.links, 'the lab makes no link in the root namespace');

  // A second lab in the same run directory is refused, and so is one over the same namespaces.
  const again = await cli(['lab', 'up', '-c', LAB, '--run-dir', dir], 60_000);
  assert.equal(again.exitCode, 2, String(again.all));
  assert.match(String(again.all), /a lab is up already .*vipmesh lab down --run-dir/);
  const other = runDir(t);
  const clash = await cli(['lab', 'up', '-c', LAB, '--run-dir', other], 60_000);
  assert.equal(clash.exitCode, 2, String(clash.all));
  assert.match(String(clash.all), /exist already and are not this lab's to take over: vipmesh-lab-/);
  assert.ok(!existsSync(other), 'a refused lab makes no run directory');

  // The embedded DNS answers in the tasks (it needs no IPVS).
  const dig = (name: string) => execa('ip', ['netns', 'exec', 'vipmesh-lab-client', 'dig', '+short', '+tries=3', name]).then((r) => digAddresses(r.stdout.split('\n')).sort());
  assert.deepEqual(await dig('whoami'), [VIP]);
  assert.deepEqual(await dig('tasks.whoami'), whoamiTasks.map((x) => x.addresses['appnet']!).sort());
  assert.deepEqual(await dig('backend'), ['10.0.1.21', '10.0.1.22'], 'the dnsrr service\'s tasks passed their tcp probe');

  // ARP for the VIP, which both nodes' balancers hold, is answered by the asking task's own node's.
  const mac = async (ns: string) => JSON.parse((await execa('ip', ['-n', ns, '-j', 'link', 'show', 'eth0'])).stdout)[0].address as string;
  const arp = async (ns: string): Promise<string> => {
    await execa('ip', ['netns', 'exec', ns, process.execPath, '-e',
      `const s = require('net').connect(9, '${VIP}'); s.on('error', () => {}); setTimeout(() => process.exit(0), 1000)`]);
    const neigh = JSON.parse((await execa('ip', ['-n', ns, '-j', 'neigh', 'show', VIP])).stdout) as { lladdr?: string }[];
    return neigh[0]?.lladdr ?? 'none';
  };
  assert.equal(await arp('vipmesh-lab-client'), await mac('vipmesh-lab-lb-appnet-1'), 'a task on node-1 reaches node-1\'s balancer');
  assert.equal(await arp('vipmesh-lab-whoami-3'), await mac('vipmesh-lab-lb-appnet-2'), 'a task on node-2 reaches node-2\'s balancer');

  const down = await cli(['lab', 'down', '--run-dir', dir], 120_000);
  assert.equal(down.exitCode, 0, String(down.all));
  assert.match(String(down.all), /the lab is down: stopped \d+ processes, removed 16 namespaces/);
  assert.deepEqual(await traces(dir), before);
  const twice = await cli(['lab', 'down', '--run-dir', dir], 60_000);
  assert.equal(twice.exitCode, 0, String(twice.all));
  assert.match(String(twice.all), /no lab is up/);
});

test('lab down after kill -9 of lab up mid-way leaves nothing behind', { timeout: 10 * 60_000 }, async (t) => {
  requireRoot();
  const dir = runDir(t);
  const before = await traces(dir);
  const up = cli(['lab', 'up', '-c', LAB, '--run-dir', dir], 5 * 60_000);
  const journal = join(dir, 'journal.jsonl');
  // Killed once it has started processes: namespaces, /etc/netns records and servers exist by then.
  await waitFor('lab up to start its first processes', () => existsSync(journal) && readFileSync(journal, 'utf8').includes('"kind":"process"'), 120_000);
  up.kill('SIGKILL');
  const killed = await up;
  assert.equal(killed.signal, 'SIGKILL', String(killed.all));
  const left = await traces(dir);
  assert.ok(left.namespaces.length > 0, 'the killed lab left namespaces for down to remove');
  assert.ok(left.processes.length > 0, 'the killed lab left processes for down to stop');

  const down = await cli(['lab', 'down', '--run-dir', dir], 120_000);
  assert.equal(down.exitCode, 0, String(down.all));
  assert.deepEqual(await traces(dir), before);
});

test('lab up with an invalid catalog exits 2, says every problem and makes nothing', async (t) => {
  requireRoot();
  const dir = runDir(t);
  const before = await traces(dir);
  const result = await cli(['lab', 'up', '-c', join(FIXTURES, 'invalid', readdirSync(join(FIXTURES, 'invalid')).find((f) => f.endsWith('.yaml'))!), '--run-dir', dir], 60_000);
  assert.equal(result.exitCode, 2, String(result.all));
  assert.match(String(result.all), /is not a valid catalog .*nothing was made/);
  assert.deepEqual(await traces(dir), before);
});

test('lab up, down and demo without root say so and make nothing', async (t) => {
  requireRoot();
  const setpriv = await requireTool('setpriv');
  const dir = runDir(t);
  for (const verb of ['up', 'down', 'demo']) {
    const result = await execa(setpriv, ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, CLI, 'lab', verb, '--run-dir', dir], { reject: false, all: true, timeout: 60_000 });
    assert.equal(result.exitCode, 2, String(result.all));
    assert.match(String(result.all), new RegExp(`^vipmesh: lab ${verb} must run as root \\(.*\\); nothing was made$`));
  }
  assert.ok(!existsSync(dir));
});

// reconcile, diff and cleanup against this machine's kernel, in throwaway
// namespaces that also hold foreign rules. Where the kernel has IPVS (an ordinary
// Debian host, the kernel lane's guest, which runs this file too) vipmesh's services
// are written, read back and converge like its rules; where it lacks IPVS, reconcile
// names each namespace it could not fully program and still applies the rest.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import test from 'node:test';
import { loadCatalog } from '../../src/catalog/load.js';
import { createRunner } from '../../src/kernel/exec.js';
import { createKernel, detectBackend } from '../../src/kernel/index.js';
import { reconcileNode } from '../../src/reconcile/run.js';
import { EMPTY_STATE } from '../../src/state/store.js';
import { vipmesh } from '../helpers/cli.js';
import { type Cluster, addForeignRules, cluster, fakeAgentPorts, foreign, foreignIpvs, ipvsSave, ours, save } from '../helpers/cluster.js';
import { facts } from '../helpers/catalog.js';
import { inNetns, kernelHasIpvs, run } from '../helpers/netns.js';
import { expectedSaveLines, splitPlanText } from '../helpers/plan-text.js';

const appendLines = (lines: readonly string[]) => lines.filter((l) => l.startsWith('-A ')).sort();

async function cli(c: Cluster, verb: string) {
  return vipmesh([verb, '-c', c.catalog, '--node', 'node-1'], { VIPMESH_RUN_DIR: c.runDir });
}

interface Planned {
  readonly iptables: string[];
  readonly ipvs: string[];
}

/** Each namespace's vipmesh rules and IPVS services as plan prints them, keyed by namespace name. */
async function planned(c: Cluster): Promise<Map<string, Planned>> {
  const result = await cli(c, 'plan');
  assert.equal(result.exitCode, 0, result.stderr);
  const byPath = new Map(splitPlanText(result.stdout).map((s) => [s.key, s]));
  return new Map(Object.values(c.ns).map((name) => {
    const printed = byPath.get(c.path(name));
    const ipvs = (printed?.ipvs ?? '').split('\n').filter((l) => l !== '').sort();
    return [name, { iptables: printed ? expectedSaveLines(printed.iptables) : [], ipvs }];
  }));
}

/** Every namespace holds exactly its plan: rules, and IPVS services where the kernel has IPVS. */
async function assertAtPlan(c: Cluster, skipDns: boolean): Promise<void> {
  const ipvs = await kernelHasIpvs();
  for (const [name, plan] of await planned(c)) {
    const want = plan.iptables.filter((l) => !(skipDns && l.includes('VIPMESH-DNS-'))).sort();
    assert.deepEqual(appendLines(ours(await save(name))), want, `namespace ${name} holds exactly its planned rules`);
    if (ipvs) assert.deepEqual(await ipvsSave(name), plan.ipvs, `namespace ${name} holds exactly its planned IPVS services`);
  }
}

interface Before {
  readonly iptables: string[];
  readonly ipvs: string[] | undefined;
}

async function setUp(t: test.TestContext, withAgent: boolean): Promise<{ c: Cluster; before: Map<string, Before> }> {
  const c = await cluster(t);
  rmSync(c.runDir, { recursive: true, force: true });
  await run('mkdir', ['-p', c.runDir]);
  if (withAgent) fakeAgentPorts(c.runDir, [c.ns.web, c.ns.api, c.ns.client].map(c.path));
  const ipvs = await kernelHasIpvs();
  const before = new Map<string, Before>();
  for (const name of Object.values(c.ns)) {
    await addForeignRules(name, ipvs);
    before.set(name, { iptables: await save(name), ipvs: ipvs ? await foreignIpvs(name) : undefined });
  }
  return { c, before };
}

async function assertForeignIntact(before: Map<string, Before>, what: string): Promise<void> {
  for (const [name, was] of before) {
    assert.deepEqual(foreign(await save(name)), was.iptables, `foreign rules of ${name} are ${what}`);
    if (was.ipvs) assert.deepEqual(await foreignIpvs(name), was.ipvs, `foreign IPVS services of ${name} are ${what}`);
  }
}

test('reconcile installs the plan, keeps foreign state byte-identical, and converges', async (t) => {
  const { c, before } = await setUp(t, true);
  const ipvs = await kernelHasIpvs();
  t.diagnostic(ipvs ? 'this kernel has IPVS' : 'this kernel lacks IPVS');
  const plan = await planned(c);
  for (const name of [c.ns.sbox, c.ns.web, c.ns.api, c.ns.client]) assert.ok(plan.get(name)!.ipvs.length > 0, `${name} plans IPVS services`);
  assert.deepEqual(plan.get(c.ns.host)!.ipvs, [], 'the host plans no IPVS');

  const first = await cli(c, 'reconcile');
  if (ipvs) {
    assert.equal(first.exitCode, 0, first.stderr);
    assert.doesNotMatch(first.stderr, /IPVS/);
    assert.match(first.stdout, /\+ ipvs fwmark \d+ real server 10\.0\.1\.11:0 weight 1 \(web\.1\.aaaa\)/);
  } else {
    // Every namespace with virtual services is named, the rest converge.
    assert.equal(first.exitCode, 3, first.stderr);
    for (const name of [c.ns.sbox, c.ns.web, c.ns.api, c.ns.client]) {
      assert.match(first.stderr, new RegExp(`${c.path(name)}: IPVS state not written: the kernel lacks IPVS`));
    }
    assert.doesNotMatch(first.stderr, new RegExp(`${c.path(c.ns.host)}:`), 'the host holds no IPVS and does not fail');
  }
  assert.match(first.stdout, /\+ mangle VIPMESH-OUTPUT/);
  await assertAtPlan(c, false);
  await assertForeignIntact(before, 'untouched');

  const second = await cli(c, 'reconcile');
  assert.match(second.stdout, new RegExp(`reconcile: 5 namespaces, 0 changed, ${ipvs ? 0 : 4} failed`));
  const diff = await cli(c, 'diff');
  assert.equal(diff.exitCode, 0, `${diff.stdout}${diff.stderr}`);
  if (ipvs) assert.doesNotMatch(diff.stderr, /IPVS/);
  else assert.match(diff.stderr, /warning: IPVS state not compared: the kernel lacks IPVS/);
});

test('without an agent the DNS redirect is neither added nor removed, and reconcile says so', async (t) => {
  const { c } = await setUp(t, false);
  const result = await cli(c, 'reconcile');
  assert.equal(result.exitCode, (await kernelHasIpvs()) ? 0 : 3, result.stderr);
  assert.match(result.stdout, /no agent holds resolver ports/);
  await assertAtPlan(c, true);
  assert.ok(!(await save(c.ns.web)).some((l) => l.includes('VIPMESH-DNS-')), 'no DNS chain was added');

  // An agent programs the redirect; a later one-shot reconcile without it keeps it.
  fakeAgentPorts(c.runDir, [c.path(c.ns.web)]);
  await cli(c, 'reconcile');
  const withDns = ours(await save(c.ns.web)).filter((l) => l.includes('VIPMESH-DNS-'));
  assert.ok(withDns.length > 0);
  rmSync(`${c.runDir}/resolver.json`);
  await cli(c, 'reconcile');
  assert.deepEqual(ours(await save(c.ns.web)).filter((l) => l.includes('VIPMESH-DNS-')), withDns);
});

test('a chain, rule or real server deleted by hand is drift that diff names and reconcile repairs', async (t) => {
  const { c } = await setUp(t, true);
  const ipvs = await kernelHasIpvs();
  await cli(c, 'reconcile');
  const ipt = (name: string, ...args: string[]) => inNetns(name, 'iptables', args);
  await ipt(c.ns.web, '-t', 'mangle', '-D', 'OUTPUT', '-j', 'VIPMESH-OUTPUT');
  await ipt(c.ns.web, '-t', 'mangle', '-F', 'VIPMESH-OUTPUT');
  await ipt(c.ns.web, '-t', 'mangle', '-X', 'VIPMESH-OUTPUT');
  await ipt(c.ns.host, '-t', 'nat', '-D', 'VIPMESH-PORTS', '1');
  let mark = '';
  if (ipvs) {
    // The client's service for web's VIP loses its one real server, web.1 at 10.0.1.11.
    mark = /^-a -f (\d+) -r 10\.0\.1\.11:0 /m.exec((await ipvsSave(c.ns.client)).join('\n'))?.[1] ?? '';
    assert.notEqual(mark, '', 'the client balances web\'s VIP over web.1');
    await inNetns(c.ns.client, 'ipvsadm', ['-d', '-f', mark, '-r', '10.0.1.11:0']);
  }

  const diff = await cli(c, 'diff');
  assert.equal(diff.exitCode, 1, diff.stdout);
  assert.match(diff.stdout, new RegExp(`# netns ${c.path(c.ns.web)}\\n\\+ mangle VIPMESH-OUTPUT`));
  assert.match(diff.stdout, /\+ mangle jump OUTPUT -j VIPMESH-OUTPUT/);
  assert.match(diff.stdout, /~ nat VIPMESH-PORTS \(1 rules added, 0 removed\)/);
  if (ipvs) assert.match(diff.stdout, new RegExp(`\\+ ipvs fwmark ${mark} real server 10\\.0\\.1\\.11:0 weight 1`));
  assert.match(diff.stdout, /would change/);

  await cli(c, 'reconcile');
  await assertAtPlan(c, false);
  assert.equal((await cli(c, 'diff')).exitCode, 0);
});

test('removing a task or a service removes exactly its state; cleanup removes everything of ours', async (t) => {
  const { c, before } = await setUp(t, true);
  await cli(c, 'reconcile');
  // api.1 leaves the catalog and the api service goes with it.
  c.write((y) => y.replace(/^ {2}api:\n {4}vips: .*\n/m, '').replace(/^ {2}api\.1\.bbbb:.*\n/m, ''));
  const result = await cli(c, 'reconcile');
  assert.match(result.stdout, new RegExp(`# netns ${c.path(c.ns.api)}\\n`));
  assert.deepEqual(ours(await save(c.ns.api)).filter((l) => !l.includes('VIPMESH-DNS-')), [], 'the removed task namespace keeps no datapath state');
  await assertAtPlan(c, false);
  assert.ok(!ours(await save(c.ns.web)).some((l) => l.includes('api/appnet')), 'no namespace still marks the removed VIP');
  if (await kernelHasIpvs()) {
    assert.deepEqual(await ipvsSave(c.ns.api), [], 'the removed task namespace keeps no IPVS service');
    assert.ok(!(await ipvsSave(c.ns.client)).some((l) => l.includes('10.0.1.21:')), 'no namespace still balances to api.1');
  }

  const cleanup = await cli(c, 'cleanup');
  assert.equal(cleanup.exitCode, 0, cleanup.stderr);
  for (const [name, was] of before) {
    const now = await save(name);
    assert.deepEqual(ours(now), [], `no VIPMESH object is left in ${name}`);
    assert.deepEqual(now, was.iptables, `foreign state of ${name} is intact`);
    if (was.ipvs) assert.deepEqual(await ipvsSave(name), [], `no vipmesh IPVS service is left in ${name}`);
  }
  await assertForeignIntact(before, 'intact');
});

test('a namespace that vanishes between planning and applying is reported; the others converge', async (t) => {
  const { c } = await setUp(t, true);
  const loaded = await loadCatalog(c.catalog);
  assert.ok(loaded.ok);
  const runner = createRunner();
  const real = createKernel(runner, { backend: await detectBackend(runner) });
  let deleted = false;
  const kernel = {
    ...real,
    async restoreIptables(netns: string | null, family: 4 | 6, text: string) {
      if (netns === c.path(c.ns.api) && !deleted) {
        deleted = true;
        await run('ip', ['netns', 'delete', c.ns.api]);
      }
      return real.restoreIptables(netns, family, text);
    },
  };
  const result = await reconcileNode({
    catalog: loaded.catalog, node: 'node-1', kernel, facts: facts(), state: EMPTY_STATE, mode: 'apply', now: Date.now(),
  });
  assert.ok(deleted, 'the namespace was deleted after it had been observed');
  const api = result.namespaces.find((n) => n.key === c.path(c.ns.api))!;
  assert.match(api.errors.map((e) => e.message).join('\n'), /does not exist/);
  assert.ok(api.errors.some((e) => e.kind === 'namespace_gone'));
  const ipvs = await kernelHasIpvs();
  for (const name of [c.ns.host, c.ns.web, c.ns.client]) {
    const ns = result.namespaces.find((n) => n.key === c.path(name))!;
    // Without IPVS a namespace with virtual services still fails on them, and on nothing else.
    const unexpected = ns.errors.filter((e) => ipvs || e.kind !== 'no_ipvs');
    assert.deepEqual(unexpected, [], `${name} converged`);
    assert.ok(ours(await save(name)).length > 0);
    if (ipvs && name !== c.ns.host) assert.ok((await ipvsSave(name)).length > 0, `${name} holds its IPVS services`);
  }
});

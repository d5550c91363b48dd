// reconcile, diff and cleanup against this machine's kernel, in throwaway
// namespaces that also hold foreign rules. This kernel has no IPVS: the IPVS
// half is proven in the kernel lane; here it must fail loudly and alone.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import test from 'node:test';
import { loadCatalog } from '../../src/catalog/load.js';
import { createRunner } from '../../src/kernel/exec.js';
import { createKernel, detectBackend } from '../../src/kernel/index.js';
import { reconcileNode } from '../../src/reconcile/run.js';
import { EMPTY_STATE } from '../../src/state/store.js';
import { vipmesh } from '../helpers/cli.js';
import { type Cluster, addForeignRules, cluster, fakeAgentPorts, foreign, ours, save } from '../helpers/cluster.js';
import { facts } from '../helpers/catalog.js';
import { run } from '../helpers/netns.js';
import { expectedSaveLines, splitPlanText } from '../helpers/plan-text.js';

const appendLines = (lines: readonly string[]) => lines.filter((l) => l.startsWith('-A ')).sort();

async function cli(c: Cluster, verb: string) {
  return vipmesh([verb, '-c', c.catalog, '--node', 'node-1'], { VIPMESH_RUN_DIR: c.runDir });
}

/** Each namespace's vipmesh rules as plan prints them, keyed by namespace name. */
async function planned(c: Cluster): Promise<Map<string, string[]>> {
  const result = await cli(c, 'plan');
  assert.equal(result.exitCode, 0, result.stderr);
  const byPath = new Map(splitPlanText(result.stdout).map((s) => [s.key, expectedSaveLines(s.iptables)]));
  return new Map(Object.entries(c.ns).map(([, name]) => [name, byPath.get(c.path(name)) ?? []]));
}

async function assertAtPlan(c: Cluster, skipDns: boolean): Promise<void> {
  for (const [name, lines] of await planned(c)) {
    const want = lines.filter((l) => !(skipDns && l.includes('VIPMESH-DNS-'))).sort();
    assert.deepEqual(appendLines(ours(await save(name))), want, `namespace ${name} holds exactly its plan`);
  }
}

async function setUp(t: test.TestContext, withAgent: boolean): Promise<{ c: Cluster; before: Map<string, string[]> }> {
  const c = await cluster(t);
  rmSync(c.runDir, { recursive: true, force: true });
  await run('mkdir', ['-p', c.runDir]);
  if (withAgent) fakeAgentPorts(c.runDir, [c.ns.web, c.ns.api, c.ns.client].map(c.path));
  const before = new Map<string, string[]>();
  for (const name of Object.values(c.ns)) {
    await addForeignRules(name);
    before.set(name, await save(name));
  }
  return { c, before };
}

test('reconcile installs the plan, keeps foreign rules byte-identical, and converges', async (t) => {
  const { c, before } = await setUp(t, true);
  const first = await cli(c, 'reconcile');
  // No IPVS here: every namespace with virtual services is named, the rest converge.
  assert.equal(first.exitCode, 3, first.stderr);
  for (const name of [c.ns.sbox, c.ns.web, c.ns.api, c.ns.client]) {
    assert.match(first.stderr, new RegExp(`${c.path(name)}: IPVS state not written: the kernel lacks IPVS`));
  }
  assert.doesNotMatch(first.stderr, new RegExp(`${c.path(c.ns.host)}:`), 'the host holds no IPVS and does not fail');
  assert.match(first.stdout, /\+ mangle VIPMESH-OUTPUT/);
  await assertAtPlan(c, false);
  for (const [name, lines] of before) assert.deepEqual(foreign(await save(name)), lines, `foreign state of ${name} is untouched`);

  const second = await cli(c, 'reconcile');
  assert.match(second.stdout, /reconcile: 5 namespaces, 0 changed, 4 failed/);
  const diff = await cli(c, 'diff');
  assert.equal(diff.exitCode, 0, `${diff.stdout}${diff.stderr}`);
  assert.match(diff.stderr, /warning: IPVS state not compared: the kernel lacks IPVS/);
});

test('without an agent the DNS redirect is neither added nor removed, and reconcile says so', async (t) => {
  const { c } = await setUp(t, false);
  const result = await cli(c, 'reconcile');
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

test('a chain or rule deleted by hand is drift that diff names and reconcile repairs', async (t) => {
  const { c } = await setUp(t, true);
  await cli(c, 'reconcile');
  const ipt = (name: string, ...args: string[]) => run('ip', ['netns', 'exec', name, 'iptables', ...args]);
  await ipt(c.ns.web, '-t', 'mangle', '-D', 'OUTPUT', '-j', 'VIPMESH-OUTPUT');
  await ipt(c.ns.web, '-t', 'mangle', '-F', 'VIPMESH-OUTPUT');
  await ipt(c.ns.web, '-t', 'mangle', '-X', 'VIPMESH-OUTPUT');
  await ipt(c.ns.host, '-t', 'nat', '-D', 'VIPMESH-PORTS', '1');

  const diff = await cli(c, 'diff');
  assert.equal(diff.exitCode, 1, diff.stdout);
  assert.match(diff.stdout, new RegExp(`# netns ${c.path(c.ns.web)}\\n\\+ mangle VIPMESH-OUTPUT`));
  assert.match(diff.stdout, /\+ mangle jump OUTPUT -j VIPMESH-OUTPUT/);
  assert.match(diff.stdout, /~ nat VIPMESH-PORTS \(1 rules added, 0 removed\)/);
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

  const cleanup = await cli(c, 'cleanup');
  assert.ok(cleanup.exitCode === 0 || cleanup.exitCode === 3, cleanup.stderr);
  for (const [name, lines] of before) {
    const now = await save(name);
    assert.deepEqual(ours(now), [], `no VIPMESH object is left in ${name}`);
    assert.deepEqual(now, lines, `foreign state of ${name} is intact`);
  }
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
  for (const name of [c.ns.host, c.ns.web, c.ns.client]) {
    const ns = result.namespaces.find((n) => n.key === c.path(name))!;
    assert.ok(!ns.errors.some((e) => e.kind === 'iptables_rejected'), `${name} converged: ${ns.errors.map((e) => e.message).join('; ')}`);
    assert.ok(ours(await save(name)).length > 0);
  }
});

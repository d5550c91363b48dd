// The command line against real etcd members on loopback: `catalog push` and
// `catalog show`, and `plan`/`diff`/`reconcile`/`cleanup` reading the catalog
// from etcd as they read it from a file.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type TestContext } from 'node:test';
import { vipmesh } from '../helpers/cli.js';
import { cluster } from '../helpers/cluster.js';
import { type EtcdCluster, startEtcd } from '../helpers/etcd.js';
import { run } from '../helpers/netns.js';
import { FIXTURES } from '../helpers/paths.js';

const fixture = (name: string): string => join(FIXTURES, name);

function scratch(t: TestContext): (name: string, text: string) => string {
  const dir = mkdtempSync(join(tmpdir(), 'vipmesh-etcdcli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return (name, text) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };
}

/** The store's revision, as a range's header reports it (etcdctl 3.4 has no --count-only: read a key nobody writes). */
async function revision(etcd: EtcdCluster): Promise<number> {
  const out = JSON.parse(await etcd.etcdctl(['get', '-w', 'json', '/vipmesh-test-no-such-key'])) as { header: { revision: number | string } };
  return Number(out.header.revision);
}

/** key → mod revision of everything under a prefix. */
async function modRevisions(etcd: EtcdCluster, prefix: string): Promise<Map<string, number>> {
  const out = JSON.parse(await etcd.etcdctl(['get', '-w', 'json', '--prefix', prefix])) as { kvs?: { key: string; mod_revision: number }[] };
  return new Map((out.kvs ?? []).map((kv) => [Buffer.from(kv.key, 'base64').toString('utf8'), Number(kv.mod_revision)]));
}

async function push(file: string, source: string, extra: readonly string[] = []) {
  return vipmesh(['catalog', 'push', file, '--to', source, ...extra]);
}

test('plan from etcd prints the bytes plan from the file does; a second push writes nothing; one member down changes neither', { timeout: 120_000 }, async (t) => {
  const etcd = await startEtcd(t, { members: 3 });
  const cases = [
    { file: 'article-003-whoami.yaml', prefix: '/whoami', nodes: ['node-1', 'node-2', 'node-3'] },
    { file: 'features.yaml', prefix: '/features', nodes: ['node-a', 'node-b'] },
  ];
  // Every node in text, one node in JSON too; the CLI runs in parallel (each start costs a second or two here).
  const comparePlans = async (what: string) => {
    const runs = cases.flatMap((c) => c.nodes.flatMap((node, i) => (i === 0 ? ['text', 'json'] : ['text']).map(async (format) => {
      const args = ['plan', '--node', node, '--format', format];
      const [fromFile, fromEtcd] = await Promise.all([vipmesh([...args, '-c', fixture(c.file)]), vipmesh([...args, '-c', etcd.source(c.prefix)])]);
      assert.equal(fromFile.exitCode, 0, fromFile.stderr);
      assert.equal(fromEtcd.exitCode, 0, fromEtcd.stderr);
      assert.ok(fromFile.stdout.length > 0);
      assert.equal(fromEtcd.stdout, fromFile.stdout, `${what}: ${c.file} on ${node} as ${format}`);
    })));
    assert.equal(runs.length, 7);
    await Promise.all(runs);
  };

  for (const c of cases) {
    const first = await push(fixture(c.file), etcd.source(c.prefix));
    assert.equal(first.exitCode, 0, first.stderr);
    assert.match(first.stdout, new RegExp(`^pushed \\S+${c.file.replace('.', '\\.')} to etcd://\\S+${c.prefix}: \\d+ put, 0 deleted, 0 unchanged \\(revision \\d+\\)\\n$`));
  }
  await comparePlans('all members up');

  const before = await revision(etcd);
  const again = await push(fixture('article-003-whoami.yaml'), etcd.source('/whoami'));
  assert.equal(again.exitCode, 0, again.stderr);
  assert.match(again.stdout, /: 0 put, 0 deleted, 10 unchanged \(nothing written, revision \d+\)\n$/);
  assert.equal(await revision(etcd), before, 'the second push wrote nothing: the store revision did not move');

  // Quorum: two of three members still take a push and answer a plan.
  await etcd.stop(0);
  const edited = scratch(t)('whoami.yaml', readFileSync(fixture('article-003-whoami.yaml'), 'utf8').replace('published: 80', 'published: 8080'));
  const changed = await push(edited, etcd.source('/whoami'));
  assert.equal(changed.exitCode, 0, changed.stderr);
  assert.match(changed.stdout, /: 1 put, 0 deleted, 9 unchanged \(revision \d+\)\n$/);
  const fromFile = await vipmesh(['plan', '--node', 'node-1', '-c', edited]);
  const fromEtcd = await vipmesh(['plan', '--node', 'node-1', '-c', etcd.source('/whoami')]);
  assert.equal(fromEtcd.exitCode, 0, fromEtcd.stderr);
  assert.match(fromEtcd.stdout, /8080/);
  assert.equal(fromEtcd.stdout, fromFile.stdout);
  await etcd.start(0);
});

test('a push of an edited file moves only what changed; the agents\' keys and foreign keys survive; an invalid file writes nothing', { timeout: 60_000 }, async (t) => {
  const etcd = await startEtcd(t, { members: 1 });
  const source = etcd.source('/vm');
  const text = readFileSync(fixture('article-003-whoami.yaml'), 'utf8');
  assert.equal((await push(fixture('article-003-whoami.yaml'), source)).exitCode, 0);
  await etcd.etcdctl(['put', '/vm/v1/live/node-1', 'alive']);
  await etcd.etcdctl(['put', '/vm/v1/health/curl', '{"healthy":true}']);
  await etcd.etcdctl(['put', '/vm/v1/notes/x', 'kept']);
  await etcd.etcdctl(['put', '/vmx/v1/tasks/curl', 'another prefix']);
  const before = await modRevisions(etcd, '/vm');

  // The service's port changes, node-3's task vanishes, a new task appears.
  const edited = text
    .replace('published: 80', 'published: 8080')
    .replace(/ {2}whoami\.3\.d922d86eccc6:\n(?: {4}.*\n)+/, '')
    .replace('  curl:\n', '  extra:\n    node: node-2\n    netns: /run/netns/extra\n    addresses: { dig-default: 10.0.3.6 }\n  curl:\n');
  assert.notEqual(edited, text);
  const file = scratch(t)('edited.yaml', edited);
  const result = await push(file, source);
  assert.equal(result.exitCode, 0, result.stderr);
  assert.match(result.stdout, /: 2 put, 1 deleted, 8 unchanged \(revision (\d+)\)\n$/);
  const txnRevision = Number(/revision (\d+)/.exec(result.stdout)![1]);

  const after = await modRevisions(etcd, '/vm');
  const moved = [...after].filter(([key, rev]) => before.get(key) !== rev).map(([key]) => key).sort();
  assert.deepEqual(moved, ['/vm/v1/services/whoami', '/vm/v1/tasks/extra']);
  assert.ok(moved.every((key) => after.get(key) === txnRevision), 'one transaction wrote both');
  assert.deepEqual([...before.keys()].filter((key) => !after.has(key)), ['/vm/v1/tasks/whoami.3.d922d86eccc6']);
  for (const key of ['/vm/v1/live/node-1', '/vm/v1/health/curl', '/vm/v1/notes/x']) assert.equal(after.get(key), before.get(key), `${key} untouched`);
  assert.equal((await etcd.etcdctl(['get', '--print-value-only', '/vmx/v1/tasks/curl'])).trim(), 'another prefix');

  const plan = await vipmesh(['plan', '--node', 'node-2', '-c', source]);
  assert.equal(plan.stdout, (await vipmesh(['plan', '--node', 'node-2', '-c', file])).stdout);

  // Invalid: every problem, exit 2, nothing written.
  const stable = await revision(etcd);
  const invalid = await push(fixture('invalid/many-problems.yaml'), source);
  assert.equal(invalid.exitCode, 2);
  assert.equal(invalid.stdout, '');
  const fromFile = await vipmesh(['plan', '-c', fixture('invalid/many-problems.yaml')]);
  const problems = (stderr: string) => stderr.split('\n').slice(1).filter((line) => line !== '');
  assert.ok(problems(invalid.stderr).length > 1, invalid.stderr);
  assert.deepEqual(problems(invalid.stderr), problems(fromFile.stderr), 'the same problems as -c FILE reports');
  assert.match(invalid.stderr, /many-problems\.yaml is not a valid catalog \(\d+ problems\); nothing was written/);
  const missing = await push('/nonexistent/catalog.yaml', source);
  assert.equal(missing.exitCode, 2);
  assert.match(missing.stderr, /can't read the catalog \/nonexistent\/catalog\.yaml: no such file/);
  assert.equal(await revision(etcd), stable, 'no invalid push moved the store');
});

test('show prints what etcd holds: pushed back, it writes nothing; an invalid union is shown, then its problems, exit 2', { timeout: 60_000 }, async (t) => {
  const etcd = await startEtcd(t, { members: 1 });
  const source = etcd.source('/vm');
  const write = scratch(t);
  assert.equal((await push(fixture('features.yaml'), source)).exitCode, 0);
  const stable = await revision(etcd);
  for (const format of ['yaml', 'json']) {
    const shown = await vipmesh(['catalog', 'show', '--from', source, '--format', format]);
    assert.equal(shown.exitCode, 0, shown.stderr);
    assert.equal(shown.stderr, '');
    assert.equal((await vipmesh(['catalog', 'show', '--from', source, '--format', format])).stdout, shown.stdout, 'the same store prints the same bytes');
    const back = await push(write(`shown.${format}`, shown.stdout), source);
    assert.equal(back.exitCode, 0, back.stderr);
    assert.match(back.stdout, / 0 put, 0 deleted, \d+ unchanged \(nothing written/);
  }
  assert.equal(await revision(etcd), stable);
  assert.match((await vipmesh(['catalog', 'show', '--from', source])).stdout, /^version: 1\nnetworks:\n {2}backend:\n/);

  // An object put by hand that breaks the union: shown as it is, with the problems.
  await etcd.etcdctl(['put', '/vm/v1/services/broken', '{"vips":{"nowhere":"10.9.9.9"}}']);
  const broken = await vipmesh(['catalog', 'show', '--from', source, '--format', 'json']);
  assert.equal(broken.exitCode, 2);
  assert.deepEqual((JSON.parse(broken.stdout) as { services: Record<string, unknown> }).services['broken'], { vips: { nowhere: '10.9.9.9' } });
  assert.match(broken.stderr, /etcd:\/\/\S+\/vm is not a valid catalog \(1 problem\); what it holds is printed above:\n.*services\.broken.*nowhere/);
  const plan = await vipmesh(['plan', '--node', 'node-a', '-c', source]);
  assert.equal(plan.exitCode, 2);
  assert.equal(plan.stdout, '');
  assert.match(plan.stderr, /the catalog in etcd:\/\/\S+\/vm is not a valid catalog \(1 problem\); nothing was done:\n.*services\.broken/);

  // An empty prefix holds an empty catalog.
  const empty = await vipmesh(['catalog', 'show', '--from', etcd.source('/nothing')]);
  assert.equal(empty.stdout, 'version: 1\n');
});

test('etcds:// with the CA and a client certificate; a wrong CA or no etcd at all is one line naming the endpoints, exit 2', { timeout: 60_000 }, async (t) => {
  const etcd = await startEtcd(t, { members: 1, tls: true });
  const tls = etcd.tls!;
  const source = etcd.source('/vm');
  assert.match(source, /^etcds:\/\//);
  const flags = ['--etcd-ca', tls.ca, '--etcd-cert', tls.cert, '--etcd-key', tls.key];
  const pushed = await push(fixture('article-003-whoami.yaml'), source, flags);
  assert.equal(pushed.exitCode, 0, pushed.stderr);
  assert.equal(pushed.stderr, '', 'no warning noise from the TLS stack');
  const plan = await vipmesh(['plan', '--node', 'node-1', '-c', source, ...flags]);
  assert.equal(plan.exitCode, 0, plan.stderr);
  assert.equal(plan.stdout, (await vipmesh(['plan', '--node', 'node-1', '-c', fixture('article-003-whoami.yaml')])).stdout);
  assert.equal(plan.stderr, '');

  const stable = await revision(etcd);
  const endpoint = etcd.endpoints[0]!.replaceAll('.', '\\.');
  const wrongCa = ['--etcd-ca', tls.otherCa, '--etcd-cert', tls.cert, '--etcd-key', tls.key];
  for (const args of [['plan', '--node', 'node-1', '-c', source, ...wrongCa], ['catalog', 'push', fixture('article-003-whoami.yaml'), '--to', source, ...wrongCa], ['catalog', 'show', '--from', source, ...wrongCa]]) {
    const result = await vipmesh(args);
    assert.equal(result.exitCode, 2, `${args[0]}: ${result.stderr}`);
    assert.equal(result.stdout, '');
    assert.match(result.stderr, new RegExp(`^vipmesh: etcd at ${endpoint}: .*certificate.*--etcd-ca.*\\n$`), result.stderr);
  }
  const noClientCert = await vipmesh(['plan', '--node', 'node-1', '-c', source, '--etcd-ca', tls.ca]);
  assert.equal(noClientCert.exitCode, 2);
  assert.match(noClientCert.stderr, new RegExp(`^vipmesh: etcd at ${endpoint}: .*--etcd-cert.*\\n$`));
  const noCa = await vipmesh(['plan', '--node', 'node-1', '-c', source]);
  assert.equal(noCa.exitCode, 2);
  assert.match(noCa.stderr, /needs --etcd-ca/);
  assert.equal(await revision(etcd), stable);

  // No member listening at all.
  await etcd.stop(0);
  const down = await vipmesh(['plan', '--node', 'node-1', '-c', source, ...flags]);
  assert.equal(down.exitCode, 2);
  assert.match(down.stderr, new RegExp(`^vipmesh: etcd at ${endpoint}: no connection \\(.*ECONNREFUSED.*\\)\\n$`));
});

test('diff, reconcile and cleanup take the catalog from etcd as from the file', { timeout: 120_000 }, async (t) => {
  const etcd = await startEtcd(t, { members: 1 });
  const c = await cluster(t);
  await run('mkdir', ['-p', c.runDir]);
  const source = etcd.source('/ns');
  assert.equal((await push(c.catalog, source)).exitCode, 0);
  const env = { VIPMESH_RUN_DIR: c.runDir };
  const cli = (verb: string, catalog: string) => vipmesh([verb, '-c', catalog, '--node', 'node-1'], env);

  const fileDiff = await cli('diff', c.catalog);
  const etcdDiff = await cli('diff', source);
  assert.equal(fileDiff.exitCode, 1, fileDiff.stderr);
  assert.deepEqual(etcdDiff, fileDiff, 'the same drift, said the same way');

  const applied = await cli('reconcile', source);
  assert.match(applied.stdout, /\+ mangle VIPMESH-OUTPUT/);
  assert.ok([0, 3].includes(applied.exitCode), applied.stderr);
  assert.equal((await cli('diff', source)).exitCode, 0);
  assert.equal((await cli('diff', c.catalog)).exitCode, 0);

  const cleaned = await cli('cleanup', source);
  assert.ok([0, 3].includes(cleaned.exitCode), cleaned.stderr);
  const afterCleanup = await cli('diff', source);
  assert.equal(afterCleanup.exitCode, 1);
  // Cleanup leaves sysctls as they are (turning ip_forward off could cut more than vipmesh).
  const rules = (text: string) => text.split('\n').filter((line) => !line.startsWith('~ sysctl'));
  assert.deepEqual(rules(afterCleanup.stdout), rules(fileDiff.stdout), 'cleanup took back every rule reconcile wrote');
});

// `vipmesh plan` byte for byte against the golden files in test/golden/.
// UPDATE_GOLDEN=1 rewrites them; review the diff before committing.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import test from 'node:test';
import { loadCatalog } from '../../../src/catalog/load.js';
import { vipmesh } from '../../helpers/cli.js';
import { FIXTURES, GOLDEN } from '../../helpers/paths.js';

const KERNEL = ['--kernel-release', '6.1.0-28-cloud-amd64'];
const update = process.env['UPDATE_GOLDEN'] === '1';

function checkGolden(name: string, actual: string): void {
  const file = join(GOLDEN, name);
  if (update) {
    mkdirSync(join(file, '..'), { recursive: true });
    writeFileSync(file, actual);
  }
  assert.ok(existsSync(file), `golden file ${file} is missing (run with UPDATE_GOLDEN=1 to create it)`);
  assert.equal(actual, readFileSync(file, 'utf8'), `output differs from ${name}`);
}

const valid = readdirSync(FIXTURES).filter((f) => f.endsWith('.yaml')).sort();

test('the valid fixtures are present', () => {
  assert.ok(valid.length >= 5, 'the valid fixtures are present');
});

for (const fixture of valid) {
  const loaded = await loadCatalog(join(FIXTURES, fixture));
  assert.ok(loaded.ok, `${fixture} is valid`);
  for (const node of Object.keys(loaded.catalog.nodes).sort()) {
    test(`plan ${fixture} --node ${node} matches its golden, twice`, async () => {
      const args = ['plan', '-c', join(FIXTURES, fixture), '--node', node, ...KERNEL];
      const first = await vipmesh(args);
      assert.equal(first.exitCode, 0, first.stderr);
      const second = await vipmesh(args);
      assert.equal(second.stdout, first.stdout, 'the same catalog twice gives the same bytes');
      checkGolden(`${basename(fixture, '.yaml')}--${node}.txt`, first.stdout);
      if (first.stdout === '') assert.match(first.stderr, new RegExp(`nothing to program on node ${node}`));
    });
  }
}

test('plan --format json matches its golden', async () => {
  const result = await vipmesh(['plan', '-c', join(FIXTURES, 'article-001-myservice.yaml'), '--node', 'node-2', '--format', 'json', ...KERNEL]);
  assert.equal(result.exitCode, 0, result.stderr);
  JSON.parse(result.stdout);
  checkGolden('article-001-myservice--node-2.json', result.stdout);
});

test('plan --format json of a node in load-balancer mode matches its golden', async () => {
  const result = await vipmesh(['plan', '-c', join(FIXTURES, 'article-003-whoami-lb.yaml'), '--node', 'node-1', '--format', 'json', ...KERNEL]);
  assert.equal(result.exitCode, 0, result.stderr);
  const plan = JSON.parse(result.stdout) as { namespaces: { role: string; network?: string }[] };
  assert.deepEqual(plan.namespaces.map((ns) => ns.role), ['host', 'ingress-sandbox', 'load-balancer', 'task', 'task']);
  checkGolden('article-003-whoami-lb--node-1.json', result.stdout);
});

test('plan for a kernel before 5.9 adds conn_reuse_mode=0', async () => {
  const result = await vipmesh(['plan', '-c', join(FIXTURES, 'article-003-whoami.yaml'), '--node', 'node-1', '--kernel-release', '5.4.0-150-generic']);
  assert.equal(result.exitCode, 0, result.stderr);
  assert.match(result.stdout, /^# sysctl net\.ipv4\.vs\.conn_reuse_mode=0$/m);
  checkGolden('article-003-whoami--node-1--kernel-5.4.txt', result.stdout);
});

test('plan prints the ports a running agent holds instead of the tokens', async (t) => {
  const runDir = mkdtempSync(join(tmpdir(), 'vipmesh-run-'));
  t.after(() => rmSync(runDir, { recursive: true, force: true }));
  writeFileSync(join(runDir, 'resolver.json'), JSON.stringify({
    pid: process.pid,
    namespaces: { '/run/netns/svc1-1': { udp: 48233, tcp: 42439 } },
  }));
  const args = ['plan', '-c', join(FIXTURES, 'article-000-svc1-svc2.yaml'), '--node', 'docker-manager01', ...KERNEL];
  const result = await vipmesh(args, { VIPMESH_RUN_DIR: runDir });
  assert.equal(result.exitCode, 0, result.stderr);
  checkGolden('article-000-svc1-svc2--docker-manager01--agent.txt', result.stdout);
  assert.match(result.stdout, /--to-destination 127\.0\.0\.11:48233/);
  assert.match(result.stdout, /UDP_PORT/, 'the namespace the agent holds no ports for keeps the tokens');

  // A dead agent's ports are not trusted.
  writeFileSync(join(runDir, 'resolver.json'), JSON.stringify({ pid: 2 ** 22 + 1, namespaces: { '/run/netns/svc1-1': { udp: 1, tcp: 2 } } }));
  const stale = await vipmesh(args, { VIPMESH_RUN_DIR: runDir });
  assert.doesNotMatch(stale.stdout, /127\.0\.0\.11:1\b/);
});

test('plan rejects an unknown node and a missing catalog with exit 2', async () => {
  const unknown = await vipmesh(['plan', '-c', join(FIXTURES, 'article-000-svc1-svc2.yaml'), '--node', 'nope']);
  assert.equal(unknown.exitCode, 2);
  assert.equal(unknown.stdout, '');
  assert.match(unknown.stderr, /node nope is not in .*docker-manager01, docker-worker01/);
  const missing = await vipmesh(['plan', '-c', '/nonexistent/catalog.yaml', '--node', 'x']);
  assert.equal(missing.exitCode, 2);
  assert.match(missing.stderr, /\/nonexistent\/catalog\.yaml/);
  const badFormat = await vipmesh(['plan', '-c', join(FIXTURES, 'article-000-svc1-svc2.yaml'), '--format', 'xml']);
  assert.equal(badFormat.exitCode, 2);
});

const invalidDir = join(FIXTURES, 'invalid');
const invalid = existsSync(invalidDir) ? readdirSync(invalidDir).filter((f) => /\.(ya?ml|json)$/.test(f)).sort() : [];

test('there are invalid fixtures', () => {
  assert.ok(invalid.length >= 10, `expected one invalid fixture per class of error, found ${invalid.length}`);
});

for (const fixture of invalid) {
  test(`plan ${fixture} exits 2, prints every problem and nothing else`, async () => {
    const result = await vipmesh(['plan', '-c', join(invalidDir, fixture), '--node', 'node-1']);
    assert.equal(result.exitCode, 2);
    assert.equal(result.stdout, '', 'no plan is printed');
    checkGolden(join('invalid', `${fixture}.stderr`), result.stderr.replaceAll(invalidDir, '<fixtures>/invalid'));
  });
}

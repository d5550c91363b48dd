// The Vagrantfile and scripts/vagrant/: two real machines cannot boot here, so this
// checks what can be checked without them — the Vagrantfile's Ruby and every shell
// script as ruby and shellcheck read them, the Vagrantfile against the catalog,
// the systemd units as systemd reads them, and the two Node scripts the machines
// run (topology.mjs on the lab catalog, whoami.mjs answering a request).
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { execa } from 'execa';
import { ROOT } from '../helpers/paths.js';
import { PACKAGES, requireTool } from '../helpers/tools.js';

const VAGRANT = join(ROOT, 'scripts', 'vagrant');
const VAGRANTFILE = join(ROOT, 'Vagrantfile');
const CATALOG = join(VAGRANT, 'catalog.yaml');

/** The tool's path, or a failure saying how to get it (never a skip). */
async function tool(name: string): Promise<string> {
  try {
    return await requireTool(name);
  } catch {
    assert.fail(`${name} is missing: run scripts/install-system-deps.sh as root (it installs the Debian package ${PACKAGES[name] ?? name})`);
  }
}

async function shellScripts(): Promise<string[]> {
  const inDir = async (dir: string) => (await readdir(dir)).filter((f) => f.endsWith('.sh')).map((f) => join(dir, f));
  return [...(await inDir(join(ROOT, 'scripts'))), ...(await inDir(VAGRANT))].sort();
}

test('ruby -c accepts the Vagrantfile', async () => {
  const ruby = await tool('ruby');
  const result = await execa(ruby, ['-c', VAGRANTFILE], { reject: false });
  assert.equal(result.exitCode, 0, `${result.command}:\n${result.stdout}\n${result.stderr}`);
  assert.equal(result.stdout.trim(), 'Syntax OK');
});

test('shellcheck finds nothing in scripts/*.sh and scripts/vagrant/*.sh', async () => {
  const shellcheck = await tool('shellcheck');
  const scripts = await shellScripts();
  assert.ok(scripts.some((s) => s.endsWith('/install-system-deps.sh')), scripts.join(', '));
  assert.ok(scripts.filter((s) => s.startsWith(VAGRANT)).length >= 6, scripts.join(', '));
  const result = await execa(shellcheck, ['--external-sources', ...scripts], { reject: false, cwd: ROOT });
  assert.equal(result.exitCode, 0, `${result.command}:\n${result.stdout}\n${result.stderr}`);
});

test('the Vagrantfile gives the machines the catalog\'s node addresses, and runs scripts that exist', async () => {
  const text = await readFile(VAGRANTFILE, 'utf8');
  const machines = [...text.matchAll(/^\s*"([a-z]+)" => "(\d+\.\d+\.\d+\.\d+)",$/gm)].map((m) => [m[1]!, m[2]!] as const);
  assert.deepEqual(machines, [['manager', '192.168.56.11'], ['worker', '192.168.56.12']]);
  const catalog = await readFile(CATALOG, 'utf8');
  for (const [name, address] of machines) {
    assert.match(catalog, new RegExp(`^  ${name}:\\n    address: ${address.replaceAll('.', '\\.')}$`, 'm'), `${name} in ${CATALOG}`);
  }
  const paths = [...text.matchAll(/path: "([^"]+)"/g)].map((m) => m[1]!);
  assert.deepEqual(paths.map((p) => p.split('/').pop()), ['install.sh', 'etcd.sh', 'lab.sh', 'agent.sh', 'check-key.sh', 'check.sh']);
  const present = new Set(await readdir(VAGRANT));
  for (const path of paths) assert.ok(present.has(path.replace('scripts/vagrant/', '')), `${path} exists`);
  // check.sh's published port is whoami's in the catalog.
  const check = await readFile(join(VAGRANT, 'check.sh'), 'utf8');
  const published = /^PUBLISHED=(\d+) /m.exec(check)?.[1];
  assert.match(catalog, new RegExp(`published: ${published}, mode: ingress`), `check.sh's PUBLISHED=${published} in the catalog`);
});

test('topology.mjs prints each machine\'s plumbing and each service\'s expectations from the catalog', async () => {
  const topology = (...args: string[]) => execa(process.execPath, [join(VAGRANT, 'topology.mjs'), ...args], { reject: false });
  const manager = await topology('plumbing', ROOT, CATALOG, 'manager');
  assert.equal(manager.exitCode, 0, manager.stderr);
  assert.equal(manager.stdout, [
    'node 192.168.56.11',
    'peer 192.168.56.12',
    'network appnet 4096',
    'network ingress 4097',
    'sandbox ingress_sbox ingress 10.255.0.2/16',
    'lb appnet lb_appnet 10.0.1.250/24',
    'vip appnet 10.0.1.3',
    'vip appnet 10.0.1.2',
    'task api.1.h4n8c2p6w9jf api-1 appnet 10.0.1.41/24',
    'task client-manager client appnet 10.0.1.21/24',
    'task whoami-dnsrr.1.b6t1z4k8q2md whoami-dnsrr-1 appnet 10.0.1.31/24',
    'task whoami.1.k3v9q2m7x4pa whoami-1 appnet 10.0.1.11/24 ingress 10.255.0.11/16',
    'task whoami.3.f2j7c9h3s8yc whoami-3 appnet 10.0.1.13/24 ingress 10.255.0.13/16',
  ].join('\n'));
  const worker = await topology('plumbing', ROOT, CATALOG, 'worker');
  assert.equal(worker.exitCode, 0, worker.stderr);
  assert.match(worker.stdout, /^node 192\.168\.56\.12\npeer 192\.168\.56\.11\n/);
  assert.match(worker.stdout, /^sandbox ingress_sbox ingress 10\.255\.0\.3\/16$/m);
  assert.match(worker.stdout, /^task client-worker client appnet 10\.0\.1\.22\/24$/m);

  const whoami = await topology('service', ROOT, CATALOG, 'whoami');
  assert.equal(whoami.stdout, 'vip 10.0.1.2 10.0.1.11,10.0.1.12,10.0.1.13 whoami.1.k3v9q2m7x4pa,whoami.2.p8d4w6n1r5tb,whoami.3.f2j7c9h3s8yc');
  const dnsrr = await topology('service', ROOT, CATALOG, 'whoami-dnsrr');
  assert.match(dnsrr.stdout, /^dnsrr - 10\.0\.1\.31,10\.0\.1\.32 /);

  const unknown = await topology('plumbing', ROOT, CATALOG, 'node-9');
  assert.deepEqual([unknown.exitCode, unknown.stderr], [2, 'topology: no node node-9 in the catalog (nodes: manager, worker)']);
});

test('topology.mjs refuses an invalid catalog, and a network name too long for br-NAME', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vipmesh-vagrant-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const catalog = await readFile(CATALOG, 'utf8');
  const run = async (text: string) => {
    const file = join(dir, 'catalog.yaml');
    await writeFile(file, text);
    return execa(process.execPath, [join(VAGRANT, 'topology.mjs'), 'plumbing', ROOT, file, 'manager'], { reject: false });
  };
  const invalid = await run(catalog.replace('10.0.1.42 }', '10.0.1.41 }'));
  assert.equal(invalid.exitCode, 2);
  assert.match(invalid.stderr, /is not a valid catalog:\n.*10\.0\.1\.41 is already used by/);
  const long = await run(catalog.replaceAll('appnet', 'applicationnet'));
  assert.equal(long.exitCode, 2);
  assert.match(long.stderr, /networks\.applicationnet: the lab names its bridge br-applicationnet/);
});

test('whoami.mjs answers with the task name, the address it was reached on and the client\'s', async (t) => {
  const child = execa(process.execPath, [join(VAGRANT, 'whoami.mjs'), 'whoami.1.test', '0'], { reject: false });
  t.after(async () => {
    child.kill('SIGTERM');
    await child;
  });
  const port = await new Promise<number>((resolve, reject) => {
    let said = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      said += chunk.toString();
      const found = / on port (\d+)\n/.exec(said);
      if (found) resolve(Number(found[1]));
    });
    void child.then((result) => reject(new Error(`whoami.mjs exited before listening: ${result.stderr}`)));
  });
  const body = await new Promise<string>((resolve, reject) => {
    get({ host: '127.0.0.1', port, path: '/x', agent: false }, (response) => {
      let text = '';
      response.on('data', (chunk: Buffer) => { text += chunk.toString(); });
      response.on('end', () => resolve(text));
    }).on('error', reject);
  });
  const lines = body.split('\n');
  assert.equal(lines[0], 'Hostname: whoami.1.test');
  assert.equal(lines[1], 'IP: 127.0.0.1');
  assert.match(lines[2] ?? '', /^RemoteAddr: 127\.0\.0\.1:\d+$/);
  assert.equal(lines[3], 'GET /x HTTP/1.1');
});

test('systemd-analyze verify finds nothing to say about the lab\'s units', async (t) => {
  const analyze = await tool('systemd-analyze');
  const dir = await mkdtemp(join(tmpdir(), 'vipmesh-vagrant-units-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  // The programs they name live on the machines: point them at ones that exist here.
  const here = (text: string) => text
    .replaceAll('/usr/local/lib/vipmesh-lab/lab-net.sh', '/bin/true')
    .replaceAll('/usr/local/bin/node', process.execPath);
  await writeFile(join(dir, 'vipmesh-lab-net.service'), here(await readFile(join(VAGRANT, 'vipmesh-lab-net.service'), 'utf8')));
  // An instance of the template, as `systemctl enable vipmesh-lab-task@whoami-1` makes.
  await writeFile(join(dir, 'vipmesh-lab-task@whoami-1.service'), here(await readFile(join(VAGRANT, 'vipmesh-lab-task@.service'), 'utf8')));
  const result = await execa(analyze, ['verify', '--man=no', join(dir, 'vipmesh-lab-net.service'), join(dir, 'vipmesh-lab-task@whoami-1.service')], {
    reject: false,
    env: { SYSTEMD_UNIT_PATH: `${dir}:` },
  });
  assert.deepEqual(
    { exitCode: result.exitCode, output: (result.stdout + result.stderr).trim() },
    { exitCode: 0, output: '' },
    'verify prints warnings and still exits 0: its output must be empty',
  );
});

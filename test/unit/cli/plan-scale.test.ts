// `vipmesh plan` for a node whose plan is longer than the longest string V8 can
// hold: it could only have been printed a namespace at a time. (Before it was
// streamed, 1 000 VIP services seen from 3 000 local tasks died with
// `RangeError: Invalid string length`.) Each run takes seconds, not minutes.
import assert from 'node:assert/strict';
import { constants } from 'node:buffer';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'node:test';
import { NODE, syntheticCatalog } from '../../../bench/synthetic.js';
import { CLI } from '../../helpers/paths.js';

/** Counts a marker in a stream too long to keep, across chunk boundaries. */
class Counter {
  count = 0;
  bytes = 0;
  head = '';
  /** The last characters seen. */
  last = '';
  private tail = '';
  constructor(private readonly marker: string) {}
  feed(chunk: string): void {
    if (this.head.length < 200) this.head += chunk.slice(0, 200 - this.head.length);
    this.bytes += chunk.length;
    const text = this.tail + chunk;
    for (let at = text.indexOf(this.marker); at !== -1; at = text.indexOf(this.marker, at + 1)) this.count++;
    this.tail = text.slice(Math.max(0, text.length - this.marker.length + 1));
    this.last = (this.last + chunk).slice(-200);
  }
}

async function planAtScale(localTasks: number, format: 'text' | 'json', marker: string) {
  const dir = mkdtempSync(join(tmpdir(), 'vipmesh-scale-'));
  try {
    // One network, so every local task sees all 500 VIPs and their 20 real servers each.
    const file = join(dir, 'catalog.json');
    writeFileSync(file, JSON.stringify(syntheticCatalog({ services: 500, tasksPerService: 20, networks: 1, localTasks })));
    const child = spawn(
      process.execPath,
      [CLI, 'plan', '-c', file, '--node', NODE, '--format', format, '--kernel-release', '6.1.0-28-cloud-amd64'],
      { env: { ...process.env, VIPMESH_RUN_DIR: join(dir, 'run') }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const out = new Counter(marker);
    let stderr = '';
    child.stdout.setEncoding('latin1').on('data', (chunk: string) => out.feed(chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    // Only catches a hang: a run takes seconds.
    const hang = setTimeout(() => child.kill('SIGKILL'), 300_000);
    const exitCode = await new Promise<number | null>((resolve) => child.on('close', resolve));
    clearTimeout(hang);
    return { exitCode, stderr, out };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// The node's host namespace and its ingress sandbox (every tenth service publishes a port), then its tasks.
const namespaces = (localTasks: number) => 2 + localTasks;

test('plan --format text of a plan longer than any string prints every namespace', async () => {
  const local = 1100;
  const { exitCode, stderr, out } = await planAtScale(local, 'text', '# netns ');
  assert.equal(stderr, '');
  assert.equal(exitCode, 0);
  assert.ok(out.bytes > constants.MAX_STRING_LENGTH,
    `the plan is ${out.bytes} bytes, no longer above V8's ${constants.MAX_STRING_LENGTH}: grow the catalog`);
  assert.match(out.head, /^# netns host\n\*nat\n/);
  assert.equal(out.count, namespaces(local), 'one # netns section per namespace');
  assert.match(out.last, /\n# sysctl net\.ipv4\.vs\.[a-z_]+=1\n$/);
});

test('plan --format json of a plan longer than any string prints every namespace', async () => {
  const local = 300;
  const { exitCode, stderr, out } = await planAtScale(local, 'json', '\n    {\n      "key": ');
  assert.equal(stderr, '');
  assert.equal(exitCode, 0);
  assert.ok(out.bytes > constants.MAX_STRING_LENGTH,
    `the plan is ${out.bytes} bytes, no longer above V8's ${constants.MAX_STRING_LENGTH}: grow the catalog`);
  assert.match(out.head, /^\{\n {2}"node": "node-0",\n {2}"namespaces": \[\n {4}\{\n {6}"key": "host",\n/);
  assert.equal(out.count, namespaces(local), 'one object per namespace');
  assert.match(out.last, /\n {4}\}\n {2}\]\n\}\n$/);
});

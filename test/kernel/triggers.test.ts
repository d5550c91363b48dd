// The triggers against the real kernel: inotify on a throwaway directory, named
// namespaces made with `ip netns`, veths in the host namespace seen through
// rtnetlink, a real SIGHUP, and a child process that must exit by itself once
// its triggers are closed (any watcher, socket or timer left open keeps it alive).
//
// Other tests run beside these and make namespaces and links of their own, so
// every assertion looks only at the unique names made here. Addresses put on the
// host namespace's veths come from 198.18.0.0/15 and 2001:db8:7e57::/48, which no
// other test uses, so no other test's traffic is routed to them.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { execa } from 'execa';
import { systemClock } from '../../src/agent/clock.js';
import {
  createCatalogTrigger,
  createNetnsTrigger,
  createRtnetlinkTrigger,
  createSighupTrigger,
  type RtnetlinkEvent,
  type Trigger,
  type TriggerReason,
} from '../../src/agent/triggers.js';
import { watchRtnetlink } from '../../src/kernel/rtnetlink.js';
import { plumbing, requireRoot, run, uniqueName } from '../helpers/netns.js';
import { requireTool } from '../helpers/tools.js';

// Only catches a hang: an event that never comes.
const HANG_MS = 20_000;
// How long to keep listening before saying nothing more came: many times the
// debounce, so that a second request for the same burst would have arrived.
const QUIET_MS = 600;

/** Requests as they come, and a way to wait for one that matches. */
class Recorder {
  readonly reasons: TriggerReason[] = [];
  readonly errors: string[] = [];
  private waiters: (() => void)[] = [];

  readonly request = (reason: TriggerReason): void => {
    this.reasons.push(reason);
    for (const wake of this.waiters) wake();
  };

  readonly onError = (message: string): void => {
    this.errors.push(message);
  };

  count(pick: (reason: TriggerReason) => boolean): number {
    return this.reasons.filter(pick).length;
  }

  /** Resolves once `count` requests match; fails naming what did come if none does before HANG_MS. */
  async until(what: string, pick: (reason: TriggerReason) => boolean, count = 1): Promise<void> {
    const deadline = Date.now() + HANG_MS;
    while (this.count(pick) < count) {
      const left = deadline - Date.now();
      if (left <= 0) {
        assert.fail(`no ${what} after ${HANG_MS} ms; requests: ${JSON.stringify(this.reasons)}; errors: ${JSON.stringify(this.errors)}`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      this.waiters = [];
    }
  }
}

const isCatalog = (reason: TriggerReason): boolean => reason.trigger === 'catalog';

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'vipmesh-triggers-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function closing<T extends Trigger>(t: TestContext, trigger: T): T {
  t.after(() => trigger.close());
  return trigger;
}

/**
 * A catalog trigger on `path`. The fallback poll is pushed out of reach, so
 * that what these tests see is inotify's doing (the poll has its unit tests).
 */
async function catalogTrigger(t: TestContext, path: string): Promise<Recorder> {
  const recorder = new Recorder();
  const trigger = closing(t, createCatalogTrigger({ path, clock: systemClock, request: recorder.request, onError: recorder.onError, pollMs: 3_600_000 }));
  await trigger.ready;
  return recorder;
}

test('a catalog written in place makes a request', async (t) => {
  const path = join(tempDir(t), 'catalog.yaml');
  writeFileSync(path, 'version: 1\n');
  const recorder = await catalogTrigger(t, path);
  writeFileSync(path, 'version: 1\nnetworks: []\n');
  await recorder.until('request after a write', isCatalog);
  assert.deepEqual(recorder.reasons[0], { trigger: 'catalog', path });
});

test('a burst of five writes in a few milliseconds makes one request, not five', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'catalog.yaml');
  writeFileSync(path, 'version: 1\n');
  const recorder = await catalogTrigger(t, path);
  // Each write goes through a temporary file, as editors and deploy tools do:
  // identical back-to-back events are merged by inotify itself, these are not.
  for (let i = 0; i < 5; i++) {
    writeFileSync(join(dir, `.catalog.yaml.${i}`), `version: 1\n# write ${i}\n`);
    renameSync(join(dir, `.catalog.yaml.${i}`), path);
  }
  await recorder.until('request after the burst', isCatalog);
  await delay(QUIET_MS);
  assert.equal(recorder.count(isCatalog), 1, JSON.stringify(recorder.reasons));
});

test('a new file moved over the catalog makes a request; so does a write to the new file', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'catalog.yaml');
  writeFileSync(path, 'version: 1\n');
  const recorder = await catalogTrigger(t, path);
  writeFileSync(join(dir, '.catalog.yaml.tmp'), 'version: 1\n# new\n');
  renameSync(join(dir, '.catalog.yaml.tmp'), path);
  await recorder.until('request after mv', isCatalog);
  await delay(QUIET_MS);
  writeFileSync(path, 'version: 1\n# newer\n');
  await recorder.until('request after writing the moved-in file', isCatalog, 2);
});

test('a catalog deleted and created again makes a request each time', async (t) => {
  const path = join(tempDir(t), 'catalog.yaml');
  writeFileSync(path, 'version: 1\n');
  const recorder = await catalogTrigger(t, path);
  unlinkSync(path);
  await recorder.until('request after the delete', isCatalog);
  await delay(QUIET_MS);
  writeFileSync(path, 'version: 1\n# back\n');
  await recorder.until('request after creating it again', isCatalog, 2);
  await delay(QUIET_MS);
  writeFileSync(path, 'version: 1\n# and again\n');
  await recorder.until('request after writing the re-created file', isCatalog, 3);
});

test('the catalog directory replaced by another: a request, and the new directory is watched', async (t) => {
  const root = tempDir(t);
  const dir = join(root, 'vipmesh');
  const path = join(dir, 'catalog.yaml');
  mkdirSync(dir);
  writeFileSync(path, 'version: 1\n');
  const recorder = await catalogTrigger(t, path);
  const next = join(root, 'vipmesh.new');
  mkdirSync(next);
  writeFileSync(join(next, 'catalog.yaml'), 'version: 1\n# deployed\n');
  renameSync(dir, join(root, 'vipmesh.old'));
  renameSync(next, dir);
  await recorder.until('request after the directory swap', isCatalog);
  await delay(QUIET_MS);
  writeFileSync(path, 'version: 1\n# edited in the new directory\n');
  await recorder.until('request after a write in the new directory', isCatalog, 2);
});

test('a ConfigMap-style symlink swap makes a request, and the new target is watched', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'catalog.yaml');
  mkdirSync(join(dir, '..v1'));
  writeFileSync(join(dir, '..v1', 'catalog.yaml'), 'version: 1\n');
  symlinkSync('..v1', join(dir, '..data'));
  symlinkSync('..data/catalog.yaml', path);
  const recorder = await catalogTrigger(t, path);
  // What the kubelet does: a new timestamped directory, a new ..data link
  // renamed over the old; it removes the old directory later, so the rename
  // alone must be seen.
  mkdirSync(join(dir, '..v2'));
  writeFileSync(join(dir, '..v2', 'catalog.yaml'), 'version: 1\n# v2\n');
  symlinkSync('..v2', join(dir, '..data_tmp'));
  renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  await recorder.until('request after the swap', isCatalog);
  await delay(QUIET_MS);
  writeFileSync(join(dir, '..v2', 'catalog.yaml'), 'version: 1\n# v2, edited\n');
  await recorder.until('request after a write to the new target', isCatalog, 2);
});

test('a catalog directory that does not exist yet is waited for', async (t) => {
  const root = tempDir(t);
  const dir = join(root, 'etc', 'vipmesh');
  const path = join(dir, 'catalog.yaml');
  const recorder = await catalogTrigger(t, path);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path, 'version: 1\n');
  await recorder.until('request once the catalog exists', isCatalog);
  await delay(QUIET_MS);
  writeFileSync(path, 'version: 1\n# edited\n');
  await recorder.until('request after a write in the new directory', isCatalog, 2);
});

test('a named namespace added and deleted makes a request naming it each time', async (t) => {
  requireRoot();
  await requireTool('ip');
  const recorder = new Recorder();
  const trigger = closing(t, createNetnsTrigger({ clock: systemClock, request: recorder.request, onError: recorder.onError }));
  await trigger.ready;
  const name = uniqueName('vmtrg');
  await plumbing(t).ns(name);
  const is = (change: string) => (r: TriggerReason) => r.trigger === 'netns' && r.name === name && r.change === change;
  await recorder.until(`netns ${name} appeared`, is('appeared'));
  await run('ip', ['netns', 'delete', name]);
  await recorder.until(`netns ${name} vanished`, is('vanished'));
  assert.equal(recorder.count(is('appeared')), 1);
  assert.equal(recorder.count(is('vanished')), 1);
});

/**
 * A veth pair in this (the host) namespace, deleted when the test ends: the
 * rtnetlink trigger listens here. Not the lab's plumbing, which never makes a
 * link outside the namespaces it made.
 */
async function vethPair(t: TestContext): Promise<[string, string]> {
  const a = uniqueName('vta');
  const b = uniqueName('vtb');
  t.after(() => execa('ip', ['link', 'delete', a], { reject: false }));
  await run('ip', ['link', 'add', a, 'type', 'veth', 'peer', 'name', b]);
  return [a, b];
}

const rtEvent = (pick: (event: RtnetlinkEvent) => boolean) => (reason: TriggerReason): boolean =>
  reason.trigger === 'rtnetlink' && pick(reason.event);

test('veths added, addressed and deleted in the host namespace make link and address events', async (t) => {
  requireRoot();
  await requireTool('ip');
  const recorder = new Recorder();
  const a = uniqueName('vta');
  const b = uniqueName('vtb');
  const trigger = closing(
    t,
    createRtnetlinkTrigger({
      request: recorder.request,
      onError: recorder.onError,
      filter: (event) => event.ifname === a || event.ifname === b,
    }),
  );
  await trigger.ready;
  t.after(() => execa('ip', ['link', 'delete', a], { reject: false }));
  await run('ip', ['link', 'add', a, 'type', 'veth', 'peer', 'name', b]);
  await recorder.until(`link ${a} new`, rtEvent((e) => e.kind === 'link' && e.op === 'new' && e.ifname === a));
  await recorder.until(`link ${b} new`, rtEvent((e) => e.kind === 'link' && e.op === 'new' && e.ifname === b));

  const address = `198.18.${randomInt(256)}.${randomInt(1, 255)}`;
  await run('ip', ['address', 'add', `${address}/32`, 'dev', a]);
  await recorder.until(
    `address ${address} new on ${a}`,
    rtEvent((e) => e.kind === 'address' && e.op === 'new' && e.ifname === a && e.address === address),
  );

  await run('ip', ['link', 'delete', a]);
  await recorder.until(`link ${a} del`, rtEvent((e) => e.kind === 'link' && e.op === 'del' && e.ifname === a));
  await recorder.until(`link ${b} del`, rtEvent((e) => e.kind === 'link' && e.op === 'del' && e.ifname === b));
  assert.ok(
    recorder.reasons.every((r) => r.trigger !== 'rtnetlink' || r.event.ifname === a || r.event.ifname === b),
    'the filter kept only our links',
  );
});

test('an IPv6 address on a link that existed before the trigger is named after the link', async (t) => {
  requireRoot();
  await requireTool('ip');
  const [a] = await vethPair(t);
  const recorder = new Recorder();
  const trigger = closing(
    t,
    createRtnetlinkTrigger({ request: recorder.request, onError: recorder.onError, filter: (event) => event.ifname === a }),
  );
  await trigger.ready;
  const address = `2001:db8:7e57::${randomInt(1, 0xffff).toString(16)}`;
  await run('ip', ['-6', 'address', 'add', `${address}/128`, 'dev', a, 'nodad']);
  await recorder.until(
    `address ${address} new on ${a}`,
    rtEvent((e) => e.kind === 'address' && e.op === 'new' && e.address === address),
  );
  assert.deepEqual(recorder.errors, []);
});

/** This process's children whose command line mentions `word`. */
function childrenRunning(word: string): number[] {
  const pids = readdirSync('/proc/self/task').flatMap((task) =>
    readFileSync(`/proc/self/task/${task}/children`, 'utf8').split(' ').filter((pid) => pid !== ''),
  );
  return pids.map(Number).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(word);
    } catch {
      return false; // gone meanwhile
    }
  });
}

test('an rtnetlink listener that dies is reported as lost events and started again', async (t) => {
  requireRoot();
  await requireTool('ip');
  const recorder = new Recorder();
  const [a, b] = [uniqueName('vta'), uniqueName('vtb')];
  // Listeners of earlier tests may still be on their way out.
  const earlier = new Set(childrenRunning('rtnetlink-child'));
  const ours = (): number[] => childrenRunning('rtnetlink-child').filter((pid) => !earlier.has(pid));
  const trigger = closing(
    t,
    createRtnetlinkTrigger({
      request: recorder.request,
      onError: recorder.onError,
      filter: (event) => event.ifname === a,
      watch: (handlers) => watchRtnetlink(handlers, { restartMs: 50 }),
    }),
  );
  await trigger.ready;
  const [listener, ...more] = ours();
  assert.ok(listener !== undefined && more.length === 0, `one listener process, not ${ours().length}`);
  // What the netlink package does when its socket overflows: abort.
  process.kill(listener, 'SIGABRT');
  await recorder.until('lost events after the listener died', (r) => r.trigger === 'rtnetlink-lost');
  assert.match(recorder.errors.join('\n'), /killed by SIGABRT/);

  // Started again: changes to a veth made now are seen. The new listener joins
  // its groups a moment after it starts, so the link is changed until one is.
  t.after(() => execa('ip', ['link', 'delete', a], { reject: false }));
  await run('ip', ['link', 'add', a, 'type', 'veth', 'peer', 'name', b]);
  const seen = rtEvent((e) => e.kind === 'link' && e.ifname === a);
  const deadline = Date.now() + HANG_MS;
  for (let mtu = 1400; recorder.count(seen) === 0; mtu = mtu === 1400 ? 1401 : 1400) {
    assert.ok(Date.now() < deadline, `no event for ${a} from a restarted listener; errors: ${recorder.errors.join('; ')}`);
    await run('ip', ['link', 'set', a, 'mtu', String(mtu)]);
    await delay(100);
  }
  trigger.close();
  while (ours().length > 0 && Date.now() < deadline) await delay(20);
  assert.deepEqual(ours(), [], 'close() ends the listener process');
});

test('SIGHUP to the process makes a request; close() gives the signal back', async (t) => {
  const before = process.listenerCount('SIGHUP');
  const recorder = new Recorder();
  const trigger = closing(t, createSighupTrigger({ request: recorder.request, onError: recorder.onError }));
  process.kill(process.pid, 'SIGHUP');
  await recorder.until('request after SIGHUP', (r) => r.trigger === 'sighup');
  trigger.close();
  assert.equal(process.listenerCount('SIGHUP'), before);
});

test('after close() no trigger requests anything', async (t) => {
  requireRoot();
  await requireTool('ip');
  const dir = tempDir(t);
  const path = join(dir, 'catalog.yaml');
  writeFileSync(path, 'version: 1\n');
  const recorder = new Recorder();
  const { request, onError } = recorder;
  const triggers = [
    createCatalogTrigger({ path, clock: systemClock, request, onError, pollMs: 50 }),
    createNetnsTrigger({ clock: systemClock, request, onError }),
    createRtnetlinkTrigger({ request, onError, filter: () => true }),
    createSighupTrigger({ request, onError }),
  ];
  t.after(() => triggers.forEach((trigger) => trigger.close()));
  await Promise.all(triggers.map((trigger) => trigger.ready));
  for (const trigger of triggers) trigger.close();
  // Something else must take SIGHUP now, or it would end the test process.
  const keepAlive = (): void => {};
  process.on('SIGHUP', keepAlive);
  t.after(() => process.off('SIGHUP', keepAlive));

  writeFileSync(path, 'version: 1\n# after close\n');
  await plumbing(t).ns(uniqueName('vmtrg'));
  await vethPair(t);
  process.kill(process.pid, 'SIGHUP');
  await delay(QUIET_MS);
  assert.deepEqual(recorder.reasons, []);
});

// The child starts every trigger, prints each request as a JSON line, and on
// "close" closes them all and lets go of stdin: from then on nothing of its own
// keeps it alive, so it must exit by itself.
const TRIGGERS = new URL('../../src/agent/triggers.js', import.meta.url).href;
const CLOCK = new URL('../../src/agent/clock.js', import.meta.url).href;
const CHILD = `
const T = await import(${JSON.stringify(TRIGGERS)});
const { systemClock: clock } = await import(${JSON.stringify(CLOCK)});
const path = process.argv[1];
const request = (reason) => console.log(JSON.stringify(reason));
const onError = (message) => console.error(message);
const triggers = [
  T.createCatalogTrigger({ path, clock, request, onError }),
  T.createNetnsTrigger({ clock, request, onError }),
  T.createRtnetlinkTrigger({ request, onError, filter: () => false }),
  T.createSighupTrigger({ request, onError }),
];
await Promise.all(triggers.map((t) => t.ready));
console.log('ready');
process.stdin.setEncoding('utf8');
process.stdin.on('data', (text) => {
  if (!text.includes('close')) return;
  for (const t of triggers) t.close();
  process.stdin.destroy();
  console.log('closed');
});
`;

test('a process whose triggers are closed exits by itself: nothing is left open', async (t) => {
  requireRoot();
  const path = join(tempDir(t), 'catalog.yaml');
  writeFileSync(path, 'version: 1\n');
  const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD, path], { stdio: ['pipe', 'pipe', 'pipe'] });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const printed = async (line: string): Promise<void> => {
    const deadline = Date.now() + HANG_MS;
    while (!stdout.split('\n').includes(line)) {
      if (child.exitCode !== null || child.signalCode !== null) assert.fail(`child exited before printing ${line}: ${stdout} ${stderr}`);
      if (Date.now() > deadline) assert.fail(`child did not print ${line} within ${HANG_MS} ms: ${stdout} ${stderr}`);
      await delay(20);
    }
  };

  await printed('ready');
  writeFileSync(path, 'version: 1\n# the child is listening\n');
  await printed(JSON.stringify({ trigger: 'catalog', path }));
  child.stdin.write('close\n');
  await printed('closed');
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<'hang'>((resolve) => (timer = setTimeout(() => resolve('hang'), HANG_MS)));
  const outcome = await Promise.race([exited, hang]);
  clearTimeout(timer);
  assert.notEqual(outcome, 'hang', `the child was still running ${HANG_MS} ms after closing its triggers: a handle was left open`);
  assert.deepEqual(outcome, { code: 0, signal: null }, stderr);
  assert.equal(stderr, '');
});

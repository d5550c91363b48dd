// The triggers' logic over a fake clock and fake watchers: debouncing, which
// names count on the way to a symlinked catalog, the fallback poll, namespaces
// settling, the rtnetlink filter and decoding. The real file system, /run/netns,
// rtnetlink and signals are exercised in test/kernel/triggers.test.ts.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import test from 'node:test';
import { AttrStream, rt } from 'netlink';
import type { RtnetlinkHandlers } from '../../../src/kernel/rtnetlink.js';
import { decodeRtnetlink, isRtnetlinkEvent, type RtnetlinkEvent } from '../../../src/kernel/rtnetlink-decode.js';
import {
  createRtnetlinkTrigger,
  createSighupTrigger,
  passKindFor,
  type TriggerReason,
} from '../../../src/agent/triggers.js';
import { createDebounce } from '../../../src/agent/watch-debounce.js';
import type { DirWatchHandlers, WatchDir } from '../../../src/agent/watch-dir.js';
import { watchedNames, watchFile } from '../../../src/agent/watch-file.js';
import { watchNetns } from '../../../src/agent/watch-netns.js';
import { FakeClock } from './fake-clock.js';

// ---- debounce ------------------------------------------------------------

test('a burst of pokes fires once, a quiet period after the last', async () => {
  const clock = new FakeClock();
  const fired: number[] = [];
  const debounce = createDebounce(clock, 100, 1000, () => fired.push(clock.now()));
  for (let i = 0; i < 5; i++) {
    debounce.poke();
    await clock.advance(2);
  }
  assert.equal(debounce.pending, true);
  await clock.advance(97); // the last poke was at 8 ms; now it is 107 ms
  assert.deepEqual(fired, [], 'nothing before the burst has been quiet for 100 ms');
  await clock.advance(1);
  assert.deepEqual(fired, [108]);
  await clock.advance(5000);
  assert.deepEqual(fired, [108]);
  assert.equal(debounce.pending, false);
  assert.equal(clock.pending, 0);
});

test('pokes that never stop still fire, every maxWait', async () => {
  const clock = new FakeClock();
  const fired: number[] = [];
  const debounce = createDebounce(clock, 100, 1000, () => fired.push(clock.now()));
  for (let t = 0; t < 2500; t += 50) {
    debounce.poke();
    await clock.advance(50);
  }
  assert.deepEqual(fired, [1000, 2000]);
});

test('a cancelled debounce fires nothing and leaves no timer', async () => {
  const clock = new FakeClock();
  let fired = 0;
  const debounce = createDebounce(clock, 100, 1000, () => fired++);
  debounce.poke();
  debounce.cancel();
  await clock.advance(2000);
  assert.equal(fired, 0);
  assert.equal(clock.pending, 0);
  assert.throws(() => createDebounce(clock, 100, 50, () => {}), /maxWaitMs/);
});

// ---- which names count ------------------------------------------------------

const links = (table: Record<string, string>) => (path: string) => table[path];
const plain = (map: Map<string, Set<string>>) => Object.fromEntries([...map].map(([dir, names]) => [dir, [...names].sort()]));

test('a plain file: its own directory, its own name', () => {
  assert.deepEqual(plain(watchedNames('/etc/vipmesh/catalog.yaml', links({}))), { '/etc/vipmesh': ['catalog.yaml'] });
  assert.deepEqual(plain(watchedNames('/etc/vipmesh/../vipmesh/./catalog.yaml', links({}))), { '/etc/vipmesh': ['catalog.yaml'] });
});

test('a ConfigMap volume: the file, the ..data link swapped over it, and the timestamped target', () => {
  const names = watchedNames(
    '/etc/config/catalog.yaml',
    links({ '/etc/config/catalog.yaml': '..data/catalog.yaml', '/etc/config/..data': '..2024_01_01' }),
  );
  assert.deepEqual(plain(names), {
    '/etc/config': ['..data', 'catalog.yaml'],
    '/etc/config/..2024_01_01': ['catalog.yaml'],
  });
});

test('absolute links through a linked directory are followed to the end', () => {
  const names = watchedNames(
    '/etc/vipmesh/catalog.yaml',
    links({ '/etc/vipmesh/catalog.yaml': '/srv/current/catalog.yaml', '/srv/current': 'releases/42' }),
  );
  assert.deepEqual(plain(names), {
    '/etc/vipmesh': ['catalog.yaml'],
    '/srv': ['current'],
    '/srv/releases/42': ['catalog.yaml'],
  });
});

test('a loop of links ends instead of spinning', () => {
  const names = watchedNames('/a/x', links({ '/a/x': 'y', '/a/y': 'x' }));
  assert.deepEqual([...(names.get('/a') ?? [])].sort(), ['x', 'y']);
});

// ---- the file watch ----------------------------------------------------------

function fakeDirs() {
  const open = new Map<string, { readonly handlers: DirWatchHandlers; rechecks: number }>();
  let closes = 0;
  const watchDir: WatchDir = (path, handlers) => {
    assert.equal(open.has(path), false, `${path} watched twice`);
    const watched = { handlers, rechecks: 0 };
    open.set(path, watched);
    return {
      recheck: () => void watched.rechecks++,
      close() {
        closes++;
        open.delete(path);
      },
    };
  };
  const handlers = (dir: string): DirWatchHandlers => {
    const watched = open.get(dir);
    assert.ok(watched, `${dir} is not watched; watched: ${[...open.keys()].join(', ')}`);
    return watched.handlers;
  };
  return { open, watchDir, handlers, closes: () => closes };
}

function fileSetup(table: Record<string, string> = {}) {
  const clock = new FakeClock();
  const dirs = fakeDirs();
  const state = { signature: 'v1', table, changes: 0, errors: [] as string[] };
  const watch = watchFile({
    path: '/etc/vipmesh/catalog.yaml',
    clock,
    onChange: () => state.changes++,
    onError: (message) => state.errors.push(message),
    quietMs: 100,
    maxWaitMs: 1000,
    pollMs: 2000,
    watchDir: dirs.watchDir,
    readlink: (path) => state.table[path],
    signature: () => Promise.resolve(state.signature),
  });
  return { clock, dirs, state, watch };
}

test('events for the catalog, in a burst, make one change; other names none', async () => {
  const { clock, dirs, state, watch } = fileSetup();
  await watch.ready;
  const dir = dirs.handlers('/etc/vipmesh');
  dir.onEntry('.catalog.yaml.swp');
  dir.onEntry('4913');
  await clock.advance(500);
  assert.equal(state.changes, 0);
  for (let i = 0; i < 5; i++) dir.onEntry('catalog.yaml');
  state.signature = 'v2';
  await clock.advance(99);
  assert.equal(state.changes, 0);
  await clock.advance(1);
  assert.equal(state.changes, 1);
  // The poll compares with the state noted before that change: nothing more to see.
  await clock.advance(10_000);
  assert.equal(state.changes, 1);
  watch.close();
});

test('the directory appearing, vanishing or being replaced counts as a change', async () => {
  const { clock, dirs, state, watch } = fileSetup();
  await watch.ready;
  dirs.handlers('/etc/vipmesh').onReset();
  await clock.advance(100);
  assert.equal(state.changes, 1);
  watch.close();
});

test('a change no event reported is found by the poll, once', async () => {
  const { clock, dirs, state, watch } = fileSetup();
  await watch.ready;
  state.signature = 'written over NFS';
  await clock.advance(1999);
  assert.equal(state.changes, 0);
  await clock.advance(1 + 100);
  assert.equal(state.changes, 1);
  await clock.advance(20_000);
  assert.equal(state.changes, 1);
  assert.ok((dirs.open.get('/etc/vipmesh')?.rechecks ?? 0) >= 1, 'the poll also re-checks the directory watch');
  watch.close();
});

test('a poll during a burst waits for it: one change, not two', async () => {
  const { clock, dirs, state, watch } = fileSetup();
  await watch.ready;
  await clock.advance(1950);
  dirs.handlers('/etc/vipmesh').onEntry('catalog.yaml');
  state.signature = 'v2';
  await clock.advance(5000);
  assert.equal(state.changes, 1);
  watch.close();
});

test('after a ConfigMap-style swap the new target directory is watched and the old one dropped', async () => {
  const { clock, dirs, state, watch } = fileSetup({
    '/etc/vipmesh/catalog.yaml': '..data/catalog.yaml',
    '/etc/vipmesh/..data': '..v1',
  });
  await watch.ready;
  assert.deepEqual([...dirs.open.keys()].sort(), ['/etc/vipmesh', '/etc/vipmesh/..v1']);
  state.table['/etc/vipmesh/..data'] = '..v2';
  dirs.handlers('/etc/vipmesh').onEntry('..data');
  await clock.advance(100);
  assert.equal(state.changes, 1);
  assert.deepEqual([...dirs.open.keys()].sort(), ['/etc/vipmesh', '/etc/vipmesh/..v2']);
  dirs.handlers('/etc/vipmesh/..v2').onEntry('catalog.yaml');
  await clock.advance(100);
  assert.equal(state.changes, 2);
  watch.close();
});

test('a poll stuck on a hung mount is not joined by more; the change is seen once it answers', async () => {
  const clock = new FakeClock();
  const dirs = fakeDirs();
  let calls = 0;
  let answer: ((signature: string) => void) | undefined;
  let changes = 0;
  const watch = watchFile({
    path: '/mnt/nfs/catalog.yaml',
    clock,
    onChange: () => changes++,
    onError: assert.fail,
    pollMs: 2000,
    watchDir: dirs.watchDir,
    readlink: () => undefined,
    signature: () => {
      calls++;
      if (calls === 1) return Promise.resolve('v1');
      return answer === undefined ? new Promise((resolve) => (answer = resolve)) : Promise.resolve('v2');
    },
  });
  await watch.ready;
  await clock.advance(20_000);
  assert.equal(calls, 2, 'one stat in flight, no more queued behind it');
  answer?.('v2');
  await clock.advance(100);
  assert.equal(changes, 1);
  watch.close();
});

test('after close nothing is called and nothing is left: no timer, no watch', async () => {
  const { clock, dirs, state, watch } = fileSetup();
  await watch.ready;
  dirs.handlers('/etc/vipmesh').onEntry('catalog.yaml');
  state.signature = 'v2';
  watch.close();
  await clock.advance(10_000);
  assert.equal(state.changes, 0);
  assert.equal(clock.pending, 0);
  assert.equal(dirs.open.size, 0);
});

test('an onChange that throws is logged and the watch goes on', async () => {
  const clock = new FakeClock();
  const dirs = fakeDirs();
  const errors: string[] = [];
  let calls = 0;
  const watch = watchFile({
    path: '/c/catalog.yaml',
    clock,
    onChange: () => {
      calls++;
      throw new Error('boom');
    },
    onError: (message) => errors.push(message),
    watchDir: dirs.watchDir,
    readlink: () => undefined,
    signature: () => Promise.resolve('same'),
  });
  await watch.ready;
  dirs.handlers('/c').onEntry('catalog.yaml');
  await clock.advance(100);
  dirs.handlers('/c').onEntry('catalog.yaml');
  await clock.advance(100);
  assert.equal(calls, 2);
  assert.equal(errors.length, 2);
  assert.match(errors[0] ?? '', /boom/);
  watch.close();
});

// ---- /run/netns ------------------------------------------------------------

function netnsSetup(initial: string[]) {
  const clock = new FakeClock();
  const dirs = fakeDirs();
  const entries = new Set(initial);
  const mounted = new Set(initial);
  const changes: string[] = [];
  const watch = watchNetns({
    dir: '/run/netns',
    clock,
    onChange: ({ change, name }) => changes.push(`${change} ${name}`),
    onError: (message) => assert.fail(message),
    watchDir: dirs.watchDir,
    list: () => Promise.resolve([...entries]),
    isNamespace: (path) => Promise.resolve(mounted.has(path.slice('/run/netns/'.length))),
  });
  const poke = async (name: string): Promise<void> => {
    dirs.handlers('/run/netns').onEntry(name);
    await clock.advance(0);
  };
  return { clock, entries, mounted, changes, watch, poke };
}

test('namespaces already there are not news; one added or deleted is, by name', async () => {
  const s = netnsSetup(['old']);
  await s.watch.ready;
  assert.deepEqual(s.changes, []);
  s.entries.add('web.1');
  s.mounted.add('web.1');
  await s.poke('web.1');
  s.entries.delete('old');
  s.mounted.delete('old');
  await s.poke('old');
  assert.deepEqual(s.changes, ['appeared web.1', 'vanished old']);
  s.watch.close();
});

test('a file still waiting for its namespace is reported once ip has mounted it', async () => {
  const s = netnsSetup([]);
  await s.watch.ready;
  s.entries.add('web.2');
  await s.poke('web.2');
  assert.deepEqual(s.changes, [], 'not a namespace yet: nothing to program');
  s.mounted.add('web.2');
  await s.clock.advance(50);
  assert.deepEqual(s.changes, ['appeared web.2']);
  assert.equal(s.clock.pending, 0, 'nothing left waiting: no more re-checks');
  s.watch.close();
});

test('a namespace created and deleted before it was mounted is never reported', async () => {
  const s = netnsSetup([]);
  await s.watch.ready;
  s.entries.add('brief');
  await s.poke('brief');
  s.entries.delete('brief');
  await s.clock.advance(50);
  assert.deepEqual(s.changes, []);
  s.watch.close();
});

test('closing the namespace watch cancels its re-checks and reports nothing more', async () => {
  const s = netnsSetup([]);
  await s.watch.ready;
  s.entries.add('slow');
  await s.poke('slow');
  assert.equal(s.clock.pending, 1);
  s.watch.close();
  s.mounted.add('slow');
  await s.clock.advance(10_000);
  assert.deepEqual(s.changes, []);
  assert.equal(s.clock.pending, 0);
});

// ---- SIGHUP ----------------------------------------------------------------

test('SIGHUP requests a full pass until the trigger is closed', () => {
  const signals = new EventEmitter();
  const reasons: TriggerReason[] = [];
  const trigger = createSighupTrigger({ request: (r) => reasons.push(r), onError: assert.fail, signals });
  signals.emit('SIGHUP');
  assert.deepEqual(reasons, [{ trigger: 'sighup' }]);
  assert.equal(passKindFor({ trigger: 'sighup' }), 'full');
  trigger.close();
  trigger.close();
  assert.equal(signals.listenerCount('SIGHUP'), 0);
  signals.emit('SIGHUP');
  assert.equal(reasons.length, 1);
});

test('a request callback that throws is logged, not thrown into the signal handler', () => {
  const signals = new EventEmitter();
  const errors: string[] = [];
  const trigger = createSighupTrigger({
    request: () => {
      throw new Error('runner gone');
    },
    onError: (message) => errors.push(message),
    signals,
  });
  assert.doesNotThrow(() => signals.emit('SIGHUP'));
  assert.match(errors[0] ?? '', /sighup: runner gone/);
  trigger.close();
});

// ---- rtnetlink -------------------------------------------------------------

function rtnetlinkSetup(filter: (event: RtnetlinkEvent) => boolean) {
  let handlers: RtnetlinkHandlers | undefined;
  let closed = false;
  const reasons: TriggerReason[] = [];
  const errors: string[] = [];
  const trigger = createRtnetlinkTrigger({
    request: (r) => reasons.push(r),
    onError: (message) => errors.push(message),
    filter,
    watch: (h) => {
      handlers = h;
      return { ready: Promise.resolve(), close: () => void (closed = true) };
    },
  });
  assert.ok(handlers);
  return { handlers, reasons, errors, trigger, closed: () => closed };
}

test('the filter keeps the events that belong to the node; lost events always count', () => {
  const s = rtnetlinkSetup((event) => event.ifname?.startsWith('veth') === true);
  s.handlers.onEvent({ kind: 'link', op: 'new', ifindex: 7, ifname: 'veth1' });
  s.handlers.onEvent({ kind: 'link', op: 'new', ifindex: 8, ifname: 'wlan0' });
  s.handlers.onEvent({ kind: 'address', op: 'del', ifindex: 7, ifname: 'veth1', address: '10.0.0.2' });
  s.handlers.onLost();
  assert.deepEqual(s.reasons, [
    { trigger: 'rtnetlink', event: { kind: 'link', op: 'new', ifindex: 7, ifname: 'veth1' } },
    { trigger: 'rtnetlink', event: { kind: 'address', op: 'del', ifindex: 7, ifname: 'veth1', address: '10.0.0.2' } },
    { trigger: 'rtnetlink-lost' },
  ]);
  assert.deepEqual(s.reasons.map(passKindFor), ['full', 'full', 'full']);
  s.trigger.close();
  assert.equal(s.closed(), true);
});

test('a filter that throws keeps the event and says so', () => {
  const s = rtnetlinkSetup(() => {
    throw new Error('no catalog yet');
  });
  s.handlers.onEvent({ kind: 'link', op: 'del', ifindex: 9 });
  assert.equal(s.reasons.length, 1);
  assert.match(s.errors[0] ?? '', /filter failed on a link event for index 9: no catalog yet/);
});

test('only a new catalog asks for a changed-only pass', () => {
  assert.equal(passKindFor({ trigger: 'catalog', path: '/etc/vipmesh/catalog.yaml' }), 'changed');
  assert.equal(passKindFor({ trigger: 'netns', change: 'appeared', name: 'x' }), 'full');
});

// Messages built with the package's own encoder, as the kernel would send them.
function encode(message: rt.LinkMessage | rt.AddressMessage): Buffer {
  const out = new AttrStream();
  if (message.kind === 'link') rt.formatLinkMessage(message, out);
  else rt.formatAddressMessage(message, out);
  return Buffer.concat(out.bufs);
}

test('decoding: new and deleted, links named, addresses spelled, IPv6 named from the link table', () => {
  const names = new Map<number, string>();
  const link = encode({ kind: 'link', data: { index: 12 }, attrs: { ifname: 'vethA' } });
  assert.deepEqual(decodeRtnetlink(16, link, names), { kind: 'link', op: 'new', ifindex: 12, ifname: 'vethA' });
  const v6 = encode({
    kind: 'address',
    data: { family: 10, prefixlen: 64, index: 12 },
    attrs: { address: Buffer.from('20010db8000000000000000000000001', 'hex') },
  });
  assert.deepEqual(decodeRtnetlink(20, v6, names), { kind: 'address', op: 'new', ifindex: 12, ifname: 'vethA', address: '2001:db8::1' });
  const alias = encode({
    kind: 'address',
    data: { family: 2, prefixlen: 24, index: 3 },
    attrs: { local: Buffer.from([192, 0, 2, 7]), address: Buffer.from([192, 0, 2, 7]), label: 'eth0:1' },
  });
  assert.deepEqual(decodeRtnetlink(21, alias, names), { kind: 'address', op: 'del', ifindex: 3, ifname: 'eth0', address: '192.0.2.7' });
  assert.deepEqual(decodeRtnetlink(17, link, names), { kind: 'link', op: 'del', ifindex: 12, ifname: 'vethA' });
  assert.equal(names.has(12), false, 'a deleted link is forgotten');
  assert.equal(decodeRtnetlink(24, Buffer.alloc(12), names), undefined, 'routes are not ours');
});

test('decoding: a veth into another namespace is marked, on its NEWLINK and, remembered, on its DELLINK', () => {
  const names = new Map<number, string>();
  const peers = new Map<number, number>();
  const added = encode({ kind: 'link', data: { index: 40 }, attrs: { ifname: 'vethT', linkNetnsid: 3 } });
  assert.deepEqual(decodeRtnetlink(16, added, names, peers), { kind: 'link', op: 'new', ifindex: 40, ifname: 'vethT', peerNetnsid: 3 });
  // The kernel's DELLINK of a veth no longer carries the peer's namespace.
  const deleted = encode({ kind: 'link', data: { index: 40 }, attrs: { ifname: 'vethT' } });
  assert.deepEqual(decodeRtnetlink(17, deleted, names, peers), { kind: 'link', op: 'del', ifindex: 40, ifname: 'vethT', peerNetnsid: 3 });
  assert.equal(peers.has(40), false, 'a deleted link is forgotten');
  const local = encode({ kind: 'link', data: { index: 41 }, attrs: { ifname: 'br0' } });
  assert.deepEqual(decodeRtnetlink(16, local, names, peers), { kind: 'link', op: 'new', ifindex: 41, ifname: 'br0' });
});

test('events coming back from the listener process are checked, not trusted', () => {
  assert.equal(isRtnetlinkEvent({ kind: 'link', op: 'new', ifindex: 3, ifname: 'veth0' }), true);
  assert.equal(isRtnetlinkEvent({ kind: 'address', op: 'del', ifindex: 3, address: '10.0.0.1' }), true);
  assert.equal(isRtnetlinkEvent({ kind: 'link', op: 'new', ifindex: 3, address: '10.0.0.1' }), false);
  assert.equal(isRtnetlinkEvent({ kind: 'route', op: 'new', ifindex: 3 }), false);
  assert.equal(isRtnetlinkEvent({ kind: 'link', op: 'changed', ifindex: 3 }), false);
  assert.equal(isRtnetlinkEvent({ kind: 'link', op: 'new', ifindex: '3' }), false);
  assert.equal(isRtnetlinkEvent(null), false);
});

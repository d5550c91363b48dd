// The agent's watch and liveness lease against real etcd (src/cluster/watch.ts,
// membership.ts): a watch that starts behind a compaction lists again, a cluster
// that goes away is reported down and the watch converges once it is back, and
// a lease that is revoked or runs out takes its keys along.
import assert from 'node:assert/strict';
import test, { type TestContext } from 'node:test';
import type { Etcd3 } from 'etcd3';
import { connectEtcd } from '../../src/cluster/connect.js';
import { healthKey, liveKey, objectKey } from '../../src/cluster/layout.js';
import { joinCluster, type MembershipEvent } from '../../src/cluster/membership.js';
import { parseSource } from '../../src/cluster/source.js';
import { type ClusterSnapshot, type RelistReason, type SourceState, listCluster, watchCluster } from '../../src/cluster/watch.js';
import { eventually } from '../helpers/agent.js';
import { type EtcdCluster, startEtcd } from '../helpers/etcd.js';

const P = '/w';

async function client(t: TestContext, etcd: EtcdCluster): Promise<Etcd3> {
  const parsed = parseSource(etcd.source(P));
  if (!parsed.ok || parsed.source.kind !== 'etcd') throw new Error('not an etcd source');
  const c = await connectEtcd(parsed.source);
  t.after(() => c.close());
  return c;
}

interface Seen {
  snapshots: ClusterSnapshot[];
  sources: SourceState[];
  relists: RelistReason[];
  latest(): ClusterSnapshot;
}

function watch(t: TestContext, c: Etcd3, initial?: ClusterSnapshot): Seen {
  const seen: Seen = {
    snapshots: [], sources: [], relists: [],
    latest() {
      const last = this.snapshots.at(-1);
      if (last === undefined) throw new Error('no snapshot yet');
      return last;
    },
  };
  const w = watchCluster({
    client: c, prefix: P, ...(initial === undefined ? {} : { initial }),
    onSnapshot: (s) => seen.snapshots.push(s),
    onSource: (s) => seen.sources.push(s),
    onRelist: (reason) => seen.relists.push(reason),
    backoff: { initialMs: 100, maxMs: 500 },
  });
  t.after(() => w.stop());
  return seen;
}

const value = (s: ClusterSnapshot, key: string): string | undefined => s.view.objects.get(key);

test('a watch that starts behind a compaction lists again and ends at the newest value', async (t) => {
  const etcd = await startEtcd(t, { members: 1 });
  const c = await client(t, etcd);
  const key = objectKey(P, 'services', 'web');
  await c.put(key).value('{"n":0}');
  const old = await listCluster(c, P);
  for (let i = 1; i <= 5; i++) await c.put(key).value(`{"n":${i}}`);
  const revision = (await c.get(key).exec()).header.revision;
  await etcd.etcdctl(['compact', revision]);

  const seen = watch(t, c, old);
  await eventually('the watch to list again and see the last put', async () => {
    assert.deepEqual(seen.relists, ['compacted']);
    assert.equal(value(seen.latest(), key), '{"n":5}');
  });
  assert.ok(seen.latest().changed.has('catalog'));
  assert.equal(seen.sources.length, 0, 'the source never went down');
  // And it watches on from there.
  await c.put(key).value('{"n":6}');
  await eventually('the next put', async () => assert.equal(value(seen.latest(), key), '{"n":6}'));
});

test('a cluster that goes away is down; back, the watch lists again and converges', async (t) => {
  const etcd = await startEtcd(t, { members: 3 });
  const c = await client(t, etcd);
  const key = objectKey(P, 'tasks', 't');
  const seen = watch(t, c);
  await eventually('the first listing', async () => assert.equal(seen.snapshots.length, 1));
  await c.put(key).value('"a"');
  await eventually('a put, through the watch', async () => assert.equal(value(seen.latest(), key), '"a"'));

  await etcd.stop(0);
  await c.put(key).value('"b"');
  await eventually('a put with one member of three stopped', async () => assert.equal(value(seen.latest(), key), '"b"'));

  await etcd.stop(1);
  await etcd.stop(2);
  await eventually('the source to be down', async () => assert.equal(seen.sources.at(-1)?.state, 'down'));
  const down = seen.sources.at(-1);
  assert.ok(down?.state === 'down' && down.error !== '', 'down says why');

  for (const i of [0, 1, 2]) await etcd.start(i);
  await eventually('the source to be up again', async () => assert.equal(seen.sources.at(-1)?.state, 'up'));
  await etcd.etcdctl(['put', key, '"c"']);
  await eventually('a put after the outage', async () => assert.equal(value(seen.latest(), key), '"c"'));
  assert.ok(seen.relists.length >= 1);
});

test('the live key and published verdicts live as long as the lease; a lost lease is replaced and everything put again', async (t) => {
  const etcd = await startEtcd(t, { members: 1 });
  const c = await client(t, etcd);
  const events: MembershipEvent[] = [];
  const member = joinCluster({ client: c, prefix: P, node: 'n1', ttlSeconds: 2, onEvent: (e) => events.push(e) });
  t.after(() => member.stop());
  member.publish(new Map([['t1', { node: 'n1', state: 'healthy', since: '2025-01-01T00:00:00.000Z' }]]));
  const get = (key: string): Promise<string | null> => c.get(key).string();
  await eventually('the live key and the verdict', async () => {
    assert.notEqual(await get(liveKey(P, 'n1')), null);
    assert.match((await get(healthKey(P, 't1'))) ?? '', /"state":"healthy"/);
  });
  const held = events.find((e) => e.kind === 'held');
  assert.ok(held?.kind === 'held');

  // Longer than the TTL: the keepalive keeps it.
  await new Promise((resolve) => setTimeout(resolve, 3_000));
  assert.notEqual(await get(liveKey(P, 'n1')), null, 'kept alive past its TTL');

  // A task gone: its verdict goes too.
  member.publish(new Map());
  await eventually('the verdict deleted', async () => assert.equal(await get(healthKey(P, 't1')), null));
  member.publish(new Map([['t2', { node: 'n1', state: 'unhealthy', since: '2025-01-01T00:00:00.000Z', reason: 'refused' }]]));

  // Revoked behind its back (as if it had expired): the next keepalive hears so, and a new lease holds every key again.
  await etcd.etcdctl(['lease', 'revoke', BigInt(held.lease).toString(16)]);
  await eventually('a new lease with every key', async () => {
    assert.ok(events.some((e) => e.kind === 'lost'));
    assert.equal(events.filter((e) => e.kind === 'held').length, 2);
    assert.notEqual(await get(liveKey(P, 'n1')), null);
    assert.match((await get(healthKey(P, 't2'))) ?? '', /"reason":"refused"/);
  });

  // Stopped: no more keepalives, and the keys go with the TTL.
  member.stop();
  await eventually('the keys to expire', async () => {
    assert.equal(await get(liveKey(P, 'n1')), null);
    assert.equal(await get(healthKey(P, 't2')), null);
  });
});

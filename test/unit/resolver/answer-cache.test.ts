// The reply cache in front of the answering chain: a cached reply is the reply
// the chain builds for the same query bytes, ID and all; a swapped snapshot is
// never answered from the old one; the cache stays within its bound.
import assert from 'node:assert/strict';
import test from 'node:test';
import { createAnswerCache } from '../../../src/resolver/answer-cache.js';
import { createResolver } from '../../../src/resolver/answer.js';
import { buildRecords } from '../../../src/resolver/records.js';
import type { Reply, Transport } from '../../../src/resolver/types.js';
import { catalogOf } from '../../helpers/catalog.js';
import { addressesOf, type Ask, CLIENT, CLUSTER, decode, NODE, queryBytes } from './helpers.js';

const records = buildRecords(catalogOf(CLUSTER), NODE, new Map());

const NAMES = [
  'web', 'WeB', 'www', 'db', 'tasks.web', 'tasks.www', 'peers', 'tasks.peers', 'checked', 'idle', 'hidden', 'big', 'tasks.big',
  'web.backend', 'Web.AppNet', 'web.1.a', 'loner', 'LONER', 'client', 'nosuch', 'web.nosuch',
  '2.1.0.10.in-addr.arpa', '11.1.0.10.in-addr.arpa', '61.0.255.10.in-addr.arpa', '99.9.9.10.in-addr.arpa',
];
const TYPES: NonNullable<Ask['type']>[] = ['A', 'AAAA', 'PTR', 'ANY', 'MX', 'TXT'];
const NAMESPACES = [CLIENT, '/run/netns/web1', '/run/netns/db1', '/run/netns/edge', '/run/netns/loner', '/run/netns/unknown'];

function* queries(): Generator<{ ask: Ask; netns: string; transport: Transport }> {
  for (const name of NAMES) {
    for (const type of TYPES) {
      for (const netns of NAMESPACES) {
        for (const transport of ['udp', 'tcp'] as const) {
          for (const edns of [undefined, 512, 1232, 4096]) {
            for (const rd of [true, false]) yield { ask: { name, type, rd, ...(edns === undefined ? {} : { edns }) }, netns, transport };
          }
        }
      }
    }
  }
}

/** Replies are synchronous here (no upstreams: unknown names SERVFAIL at once, through a promise). */
async function bytesOf(reply: Reply | Promise<Reply>): Promise<{ bytes: string | null; outcome: string }> {
  const r = await reply;
  return { bytes: r.bytes === null ? null : Buffer.from(r.bytes).toString('hex'), outcome: r.outcome };
}

test('a cached reply is byte for byte the uncached reply, with the asking query ID', async () => {
  // Pinned random: a multi-record answer's order is the same on both sides.
  const cached = createResolver({ records, upstreams: [], random: () => 0 });
  const uncached = createResolver({ records, upstreams: [], random: () => 0, answerCache: false });
  let id = 1;
  let compared = 0;
  for (const { ask, netns, transport } of queries()) {
    // First ask fills the cache; the second, under another ID, may come from it.
    await cached.answer({ bytes: queryBytes({ ...ask, id: id++ & 0xffff }), transport, netns });
    const bytes = queryBytes({ ...ask, id: (id++ * 7919) & 0xffff });
    const fromCache = await bytesOf(cached.answer({ bytes, transport, netns }));
    const built = await bytesOf(uncached.answer({ bytes, transport, netns }));
    assert.deepEqual(fromCache, built, `${ask.name} ${ask.type} ${netns} ${transport} edns ${ask.edns} rd ${ask.rd}`);
    compared++;
  }
  assert.ok(compared > 10_000);
  assert.ok(cached.cachedReplies > 1000, `the cache was used (${cached.cachedReplies} kept)`);
  assert.equal(uncached.cachedReplies, 0);
  // Asked twice on the cached side: every outcome counted twice, hits included.
  const doubled = Object.fromEntries(Object.entries(uncached.counters).map(([k, v]) => [k, 2 * v]));
  assert.deepEqual({ ...cached.counters }, doubled, 'the same outcomes counted');
});

test('multi-record answers are not kept: each query still gets a fresh order', async () => {
  const resolver = createResolver({ records, upstreams: [] });
  const orders = new Set<string>();
  for (let i = 0; i < 64; i++) {
    const reply = await resolver.answer({ bytes: queryBytes({ name: 'tasks.web', id: i }), transport: 'udp', netns: CLIENT });
    orders.add(addressesOf(decode(reply.bytes)).join(','));
  }
  assert.equal(resolver.cachedReplies, 0);
  assert.equal(orders.size, 2, 'both orders of the two addresses seen');
});

test('after a snapshot swap the old answer is not served', async () => {
  const resolver = createResolver({ records, upstreams: [] });
  const ask = (id: number) => resolver.answer({ bytes: queryBytes({ name: 'web', id }), transport: 'udp', netns: CLIENT });
  assert.deepEqual(addressesOf(decode((await ask(1)).bytes)), ['10.0.1.2']);
  assert.deepEqual(addressesOf(decode((await ask(2)).bytes)), ['10.0.1.2']);
  assert.equal(resolver.cachedReplies, 1);
  const moved = CLUSTER.replace('vips: { appnet: 10.0.1.2,', 'vips: { appnet: 10.0.1.9,');
  assert.notEqual(moved, CLUSTER);
  resolver.setRecords(buildRecords(catalogOf(moved), NODE, new Map()));
  assert.equal(resolver.cachedReplies, 0);
  const after = decode((await ask(3)).bytes);
  assert.equal(after.id, 3);
  assert.deepEqual(addressesOf(after), ['10.0.1.9']);
  // A namespace whose task is gone from the new snapshot is dropped, not answered from the old one.
  const gone = CLUSTER.replace(/ {2}client: \{[^\n]*\n/, '');
  assert.notEqual(gone, CLUSTER);
  resolver.setRecords(buildRecords(catalogOf(gone), NODE, new Map()));
  assert.equal((await ask(4)).outcome, 'dropped');
});

test('the cache keeps at most its bound, and copies: a kept reply is not changed by a hit', () => {
  const cache = createAnswerCache(4);
  const reply = (n: number): Reply => ({ bytes: Buffer.from([0, 0, 0x81, 0x80, n]), outcome: 'answered' });
  const query = (n: number, id = 0) => ({ bytes: Buffer.from([id, id, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, n]), transport: 'udp' as const, netns: CLIENT });
  for (let n = 0; n < 10; n++) {
    cache.put(query(n), reply(n));
    assert.ok(cache.size <= 4, `size ${cache.size}`);
  }
  const hit = cache.get(query(9, 0xab));
  assert.deepEqual([...hit!.bytes!], [0xab, 0xab, 0x81, 0x80, 9]);
  assert.deepEqual([...cache.get(query(9, 0x01))!.bytes!], [0x01, 0x01, 0x81, 0x80, 9]);
  assert.equal(cache.get({ ...query(9), transport: 'tcp' }), undefined, 'the transport is part of the key');
  assert.equal(cache.get({ ...query(9), netns: '/run/netns/other' }), undefined, 'so is the namespace');
  cache.clear();
  assert.equal(cache.get(query(9)), undefined);
});

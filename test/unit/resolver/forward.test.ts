// Forwarding against fake upstream servers on real loopback sockets (port 0).
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';
import test from 'node:test';
import { createResolver, type Resolver } from '../../../src/resolver/answer.js';
import { buildRecords } from '../../../src/resolver/records.js';
import type { Upstream } from '../../../src/resolver/types.js';
import { catalogOf } from '../../helpers/catalog.js';
import {
  addressesOf,
  ask,
  CLUSTER,
  decode,
  fakeTcpUpstream,
  fakeUdpUpstream,
  NODE,
  queryBytes,
  type FakeUpstream,
  type Mode,
} from './helpers.js';

const records = buildRecords(catalogOf(CLUSTER), NODE, new Map());

async function withUpstreams(
  transport: 'udp' | 'tcp',
  modes: readonly Mode[],
  run: (fakes: FakeUpstream[], upstreams: Upstream[]) => Promise<void>,
): Promise<void> {
  const fakes = await Promise.all(modes.map((m) => (transport === 'udp' ? fakeUdpUpstream(m) : fakeTcpUpstream(m))));
  try {
    await run(fakes, fakes.map((f) => ({ address: '127.0.0.1', port: f.port })));
  } finally {
    await Promise.all(fakes.map((f) => f.close()));
  }
}

function resolverFor(upstreams: Upstream[], extra: { upstreamTimeoutMs?: number; maxConcurrentForwards?: number } = {}): Resolver {
  return createResolver({ records, upstreams, upstreamTimeoutMs: extra.upstreamTimeoutMs ?? 2000, ...extra });
}

for (const transport of ['udp', 'tcp'] as const) {
  test(`${transport}: an unknown name is answered by the upstream, with the client's ID and question`, async () => {
    await withUpstreams(transport, ['answer'], async ([fake], upstreams) => {
      const { packet, outcome } = await ask(resolverFor(upstreams), { name: 'Example.ORG', id: 0x5151, transport });
      assert.equal(outcome, 'forwarded');
      assert.equal(packet.id, 0x5151);
      assert.equal(packet.questions?.[0]?.name, 'Example.ORG');
      assert.deepEqual(addressesOf(packet), ['192.0.2.1']);
      assert.equal(fake!.received.length, 1);
      assert.equal(fake!.received[0]!.questions?.[0]?.name, 'Example.ORG', 'forwarded as asked');
    });
  });

  test(`${transport}: NXDOMAIN passes through verbatim, and does not try the next server`, async () => {
    await withUpstreams(transport, ['nxdomain', 'answer'], async ([first, second], upstreams) => {
      const { packet, outcome } = await ask(resolverFor(upstreams), { name: 'nothere.example', transport });
      assert.equal(outcome, 'forwarded');
      assert.equal(packet.rcode, 'NXDOMAIN');
      assert.equal(first!.received.length, 1);
      assert.equal(second!.received.length, 0);
    });
  });

  test(`${transport}: SERVFAIL and REFUSED move on to the next server, which answers`, async () => {
    await withUpstreams(transport, ['servfail', 'refused', 'answer'], async (fakes, upstreams) => {
      const { packet, outcome } = await ask(resolverFor(upstreams), { name: 'example.org', transport });
      assert.equal(outcome, 'forwarded');
      assert.deepEqual(addressesOf(packet), ['192.0.2.1']);
      assert.deepEqual(fakes.map((f) => f.received.length), [1, 1, 1]);
    });
  });

  test(`${transport}: a silent server times out and the next one answers`, async () => {
    await withUpstreams(transport, ['silent', 'answer'], async (fakes, upstreams) => {
      const { packet } = await ask(resolverFor(upstreams, { upstreamTimeoutMs: 150 }), { name: 'example.org', transport });
      assert.deepEqual(addressesOf(packet), ['192.0.2.1']);
      assert.deepEqual(fakes.map((f) => f.received.length), [1, 1]);
    });
  });

  test(`${transport}: every server failing gives SERVFAIL, echoing the question`, async () => {
    await withUpstreams(transport, ['servfail', 'silent', 'servfail'], async (fakes, upstreams) => {
      const r = resolverFor(upstreams, { upstreamTimeoutMs: 100 });
      const { packet, outcome } = await ask(r, { name: 'Example.org', id: 77, transport });
      assert.equal(outcome, 'servfail');
      assert.equal(packet.rcode, 'SERVFAIL');
      assert.equal(packet.id, 77);
      assert.equal(packet.questions?.[0]?.name, 'Example.org');
      assert.equal(packet.flag_ra, true);
      assert.deepEqual(fakes.map((f) => f.received.length), [1, 1, 1]);
      assert.equal(r.counters.servfail, 1);
    });
  });

  test(`${transport}: an upstream's REFUSED is passed on when no server answers better`, async () => {
    await withUpstreams(transport, ['servfail', 'refused', 'silent'], async (fakes, upstreams) => {
      const r = resolverFor(upstreams, { upstreamTimeoutMs: 100 });
      const { packet, outcome } = await ask(r, { name: 'Private.example', id: 78, transport });
      assert.equal(packet.rcode, 'REFUSED');
      assert.equal(packet.id, 78, "the client's ID, not the one sent upstream");
      assert.equal(packet.questions?.[0]?.name, 'Private.example');
      assert.equal(outcome, 'forwarded', "the upstream's own reply");
      assert.deepEqual(fakes.map((f) => f.received.length), [1, 1, 1], 'the servers after it were still tried');
    });
  });
}

test('at most 3 servers are tried', async () => {
  await withUpstreams('udp', ['servfail', 'servfail', 'servfail', 'answer'], async (fakes, upstreams) => {
    const { outcome } = await ask(resolverFor(upstreams), { name: 'example.org' });
    assert.equal(outcome, 'servfail');
    assert.deepEqual(fakes.map((f) => f.received.length), [1, 1, 1, 0]);
  });
});

// The upstream timeout is longer than the test's own: only acting on the ICMP
// error (not waiting the timeout out) finishes in time. A bound on a hang, not a timing.
test('a closed port fails at once (ICMP unreachable) and the next server answers', { timeout: 20_000 }, async () => {
  const closed = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => closed.bind(0, '127.0.0.1', resolve));
  const port = (closed.address() as AddressInfo).port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  await withUpstreams('udp', ['answer'], async (_fakes, upstreams) => {
    const r = resolverFor([{ address: '127.0.0.1', port }, ...upstreams], { upstreamTimeoutMs: 60_000 });
    const { packet } = await ask(r, { name: 'example.org' });
    assert.deepEqual(addressesOf(packet), ['192.0.2.1']);
  });
});

test('stray replies (wrong ID, wrong question) are ignored', async () => {
  for (const transport of ['udp', 'tcp'] as const) {
    await withUpstreams(transport, ['stray-first'], async (_fakes, upstreams) => {
      const { packet } = await ask(resolverFor(upstreams), { name: 'example.org', transport });
      assert.equal(packet.rcode, 'NOERROR', transport);
      assert.deepEqual(addressesOf(packet), ['192.0.2.1'], transport);
    });
  }
});

test('an upstream reply larger than a UDP client accepts is cut to whole records with TC', async () => {
  await withUpstreams('udp', ['big'], async (_fakes, upstreams) => {
    const { bytes, packet, outcome } = await ask(resolverFor(upstreams), { name: 'many.example' });
    assert.equal(outcome, 'forwarded');
    assert.ok(bytes.length <= 512, `${bytes.length} bytes`);
    assert.equal(packet.flag_tc, true);
    const answers = addressesOf(packet);
    assert.ok(answers.length > 0 && answers.length < 60);
    assert.deepEqual(answers, answers.map((_, i) => `192.0.2.${i + 1}`), 'a prefix, in the upstream\'s order');
  });
  await withUpstreams('tcp', ['big'], async (_fakes, upstreams) => {
    const { packet } = await ask(resolverFor(upstreams), { name: 'many.example', transport: 'tcp' });
    assert.equal(packet.flag_tc, false);
    assert.equal(addressesOf(packet).length, 60, 'TCP passes it whole');
  });
});

test('no upstreams: SERVFAIL at once; setUpstreams takes effect for the next query', async () => {
  const r = createResolver({ records, upstreams: [] });
  assert.equal((await ask(r, { name: 'example.org' })).outcome, 'servfail');
  await withUpstreams('udp', ['answer'], async (_fakes, upstreams) => {
    r.setUpstreams(upstreams);
    assert.equal((await ask(r, { name: 'example.org' })).outcome, 'forwarded');
  });
});

test('more forwards in flight than the bound: REFUSED at once; local names are not limited', async () => {
  await withUpstreams('udp', ['silent'], async (_fakes, upstreams) => {
    const r = resolverFor(upstreams, { maxConcurrentForwards: 2, upstreamTimeoutMs: 400 });
    const slow = [1, 2].map((id) => r.answer({ bytes: queryBytes({ name: `slow${id}.example`, id }), transport: 'udp', netns: '/run/netns/client' }));
    assert.equal(r.forwardsInFlight, 2);
    const { packet, outcome } = await ask(r, { name: 'third.example', id: 3 });
    assert.equal(outcome, 'refused');
    assert.equal(packet.rcode, 'REFUSED');
    assert.equal(packet.id, 3);
    assert.equal(r.forwardsInFlight, 2, 'refused while both slow forwards still wait: it did not queue behind them');
    assert.equal((await ask(r, { name: 'web' })).outcome, 'answered');
    const done = await Promise.all(slow);
    assert.deepEqual(done.map((d) => d.outcome), ['servfail', 'servfail']);
    assert.equal(decode(done[0]!.bytes).rcode, 'SERVFAIL');
    assert.equal(r.forwardsInFlight, 0);
    assert.equal((await ask(r, { name: 'again.example', id: 4 })).outcome, 'servfail', 'slots are given back');
  });
});

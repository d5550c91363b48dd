// The answering chain through a recording approach: queries in, reply bytes out,
// every reply decoded with dns-packet. No sockets (no upstreams: unknown names
// get SERVFAIL at once); forwarding has its own tests.
import assert from 'node:assert/strict';
import test from 'node:test';
import dnsPacket from 'dns-packet';
import { createResolver } from '../../../src/resolver/answer.js';
import { buildRecords } from '../../../src/resolver/records.js';
import { catalogOf } from '../../helpers/catalog.js';
import { addressesOf, ask, decode, BULK, CLIENT, CLUSTER, NODE, optRecord, queryBytes, rcodeOf, sorted } from './helpers.js';

const records = buildRecords(catalogOf(CLUSTER), NODE, new Map());
const resolver = () => createResolver({ records, upstreams: [] });

async function raw(bytes: Uint8Array, transport: 'udp' | 'tcp' = 'udp', netns = CLIENT) {
  return resolver().answer({ bytes, transport, netns });
}

const bigQuestionLength = 'tasks.big'.length + 2 + 4;

test('the question is echoed byte for byte, mixed case kept; answers point at it', async () => {
  const query = queryBytes({ name: 'TaSkS.wEb', id: 0xbeef });
  const reply = await raw(query);
  assert.equal(reply.outcome, 'answered');
  const bytes = Buffer.from(reply.bytes!);
  const questionEnd = 12 + 'TaSkS.wEb'.length + 2 + 4;
  assert.deepEqual(bytes.subarray(12, questionEnd), query.subarray(12, questionEnd));
  const packet = decode(bytes);
  assert.equal(packet.id, 0xbeef);
  assert.equal(packet.questions?.[0]?.name, 'TaSkS.wEb');
  assert.ok(packet.answers?.every((a) => a.name === 'TaSkS.wEb'));
  assert.deepEqual(sorted(addressesOf(packet)), ['10.0.1.11', '10.0.1.12']);
});

test('<name>.<network> and tasks.<alias> answer with the question echoed as sent', async () => {
  const { packet, outcome } = await ask(resolver(), { name: 'Web.BackEnd' });
  assert.equal(outcome, 'answered');
  assert.equal(packet.questions?.[0]?.name, 'Web.BackEnd');
  assert.ok(packet.answers?.every((a) => a.name === 'Web.BackEnd'));
  assert.deepEqual(addressesOf(packet), ['10.0.2.2']);
  assert.deepEqual(sorted(addressesOf((await ask(resolver(), { name: 'tasks.www' })).packet)), ['10.0.1.11', '10.0.1.12']);
  const nodata = await ask(resolver(), { name: 'web.backend', type: 'AAAA' });
  assert.equal(nodata.outcome, 'nodata');
  assert.equal(nodata.packet.rcode, 'NOERROR');
});

test('flags: QR and RA set, RD echoed, not authoritative, rcode NOERROR', async () => {
  for (const rd of [true, false]) {
    const { packet } = await ask(resolver(), { name: 'web', rd });
    assert.equal(packet.flag_qr, true);
    assert.equal(packet.flag_ra, true);
    assert.equal(packet.flag_rd, rd);
    assert.equal(packet.flag_aa, false);
    assert.equal(packet.flag_tc, false);
    assert.equal(packet.rcode, 'NOERROR');
  }
});

test('TTL 600 and class IN on every local answer', async () => {
  for (const q of [{ name: 'web' }, { name: 'peers', type: 'AAAA' as const }, { name: '11.1.0.10.in-addr.arpa', type: 'PTR' as const }]) {
    const { packet } = await ask(resolver(), q);
    assert.ok((packet.answers ?? []).length > 0, q.name);
    for (const a of packet.answers ?? []) {
      assert.equal((a as { ttl?: number }).ttl, 600);
      assert.equal((a as { class?: string }).class, 'IN');
    }
  }
});

test('AAAA of an IPv4-only name, MX, TXT: NOERROR with no answers (NODATA), not NXDOMAIN', async () => {
  for (const type of ['AAAA', 'MX', 'TXT', 'SRV'] as const) {
    const { packet, outcome } = await ask(resolver(), { name: 'Web', type });
    assert.equal(packet.rcode, 'NOERROR', type);
    assert.equal(packet.answers?.length, 0, type);
    assert.equal(outcome, 'nodata', type);
  }
});

test('AAAA and PTR answer', async () => {
  const v6 = await ask(resolver(), { name: 'peers.1.a', type: 'AAAA' });
  assert.deepEqual(addressesOf(v6.packet), ['fd00:1::31']);
  const ptr = await ask(resolver(), { name: '2.1.0.10.in-addr.arpa', type: 'PTR' });
  assert.deepEqual(addressesOf(ptr.packet), ['web.appnet']);
});

test('ANY answers the A and AAAA records', async () => {
  const { packet, outcome } = await ask(resolver(), { name: 'peers', type: 'ANY' });
  assert.equal(outcome, 'answered');
  assert.deepEqual(sorted(addressesOf(packet)), ['10.0.1.31', '10.0.1.32', 'fd00:1::31', 'fd00:1::32']);
});

test('multi-address answers are shuffled: the same set, in varying order', async () => {
  const r = resolver();
  const orders = new Set<string>();
  let set: string | undefined;
  for (let i = 0; i < 50; i++) {
    const { packet } = await ask(r, { name: 'peers', transport: 'tcp' });
    const addresses = addressesOf(packet);
    const key = sorted(addresses).join(',');
    set ??= key;
    assert.equal(key, set, 'always the same set');
    orders.add(addresses.join(','));
  }
  assert.ok(orders.size > 1, 'the order varies');
  // and with a pinned random source the order is the one Fisher–Yates gives
  const pinned = createResolver({ records, upstreams: [], random: () => 0 });
  const first = addressesOf((await ask(pinned, { name: 'peers' })).packet);
  const second = addressesOf((await ask(pinned, { name: 'peers' })).packet);
  assert.deepEqual(first, second);
});

test('UDP without EDNS: cut to 512 bytes, whole records, TC set; a shuffled subset', async () => {
  const r = resolver();
  const seen = new Set<string>();
  const fit = Math.floor((512 - 12 - bigQuestionLength) / 16);
  for (let i = 0; i < 20; i++) {
    const { bytes, packet } = await ask(r, { name: 'tasks.big' });
    assert.ok(bytes.length <= 512, `${bytes.length} bytes`);
    assert.equal(packet.flag_tc, true);
    assert.equal(packet.answers?.length, fit);
    assert.equal(bytes.length, 12 + bigQuestionLength + fit * 16, 'nothing but whole records');
    assert.equal(packet.additionals?.length, 0, 'no OPT when the query had none');
    for (const a of addressesOf(packet)) seen.add(a);
  }
  assert.ok(seen.size > fit, 'shuffled before truncating: different subsets');
});

test('UDP with EDNS 1232: cut to 1232 bytes with an OPT record, TC set', async () => {
  const { bytes, packet } = await ask(resolver(), { name: 'tasks.big', edns: 1232 });
  const fit = Math.floor((1232 - 12 - bigQuestionLength - 11) / 16);
  assert.ok(bytes.length <= 1232);
  assert.equal(packet.flag_tc, true);
  assert.equal(packet.answers?.length, fit);
  const opt = packet.additionals?.[0] as dnsPacket.OptAnswer | undefined;
  assert.equal(opt?.type, 'OPT');
  assert.equal(opt?.udpPayloadSize, 1232, 'we advertise 1232');
});

test('an EDNS size under 512 counts as 512; a reply that fits is not truncated', async () => {
  const small = await ask(resolver(), { name: 'tasks.big', edns: 100 });
  assert.equal(small.packet.answers?.length, Math.floor((512 - 12 - bigQuestionLength - 11) / 16));
  const fits = await ask(resolver(), { name: 'tasks.web', edns: 1232 });
  assert.equal(fits.packet.flag_tc, false);
  assert.equal(fits.packet.additionals?.length, 1);
});

test('TCP: every record, no truncation', async () => {
  const { packet } = await ask(resolver(), { name: 'tasks.big', transport: 'tcp' });
  assert.equal(packet.flag_tc, false);
  assert.equal(packet.answers?.length, BULK);
  assert.ok(BULK >= 60);
});

test('EDNS DO bit is copied; an EDNS version other than 0 gets BADVERS', async () => {
  const doQuery = dnsPacket.encode({
    type: 'query', id: 7, flags: 0, questions: [{ type: 'A', name: 'web' }],
    additionals: [{ ...optRecord(1232), flags: dnsPacket.DNSSEC_OK } as dnsPacket.Answer],
  });
  const reply = decode((await raw(doQuery)).bytes);
  assert.equal((reply.additionals?.[0] as dnsPacket.OptAnswer).flag_do, true);

  const v1 = dnsPacket.encode({ type: 'query', id: 8, questions: [{ type: 'A', name: 'web' }], additionals: [optRecord(1232, { ednsVersion: 1 })] });
  const bad = await raw(v1);
  const decoded = decode(bad.bytes);
  assert.equal(decoded.id, 8);
  assert.equal((decoded.additionals?.[0] as dnsPacket.OptAnswer).extendedRcode, 1, 'BADVERS = 16: extended rcode 1');
  assert.equal(rcodeOf(bad.bytes!), 0);
  assert.equal(decoded.answers?.length, 0);
});

test('an OPT with options (a cookie) is read on the fast path and answered with OPT', async () => {
  const q = dnsPacket.encode({
    type: 'query', id: 9, questions: [{ type: 'A', name: 'web' }],
    additionals: [optRecord(4096, { options: [{ code: 10, data: Buffer.alloc(8, 1) } as unknown as dnsPacket.PacketOpt] })],
  });
  const { bytes } = await raw(q);
  const packet = decode(bytes);
  assert.deepEqual(addressesOf(packet), ['10.0.1.2']);
  assert.equal(packet.additionals?.[0]?.type, 'OPT');
});

test('unusual but well-formed shapes go through dns-packet and are answered', async () => {
  // trailing bytes after the message, and an extra additional record next to the OPT
  const trailing = Buffer.concat([queryBytes({ name: 'web' }), Buffer.from([1, 2, 3])]);
  assert.deepEqual(addressesOf(decode((await raw(trailing)).bytes)), ['10.0.1.2']);
  const extra = dnsPacket.encode({
    type: 'query', id: 10, questions: [{ type: 'A', name: 'web' }],
    additionals: [{ type: 'A', name: 'x', ttl: 1, data: '192.0.2.9' }, optRecord(1400)],
  });
  const reply = decode((await raw(extra)).bytes);
  assert.deepEqual(addressesOf(reply), ['10.0.1.2']);
  assert.equal(reply.additionals?.[0]?.type, 'OPT', 'the OPT was found among several additionals');
});

test('two OPT records: FORMERR', async () => {
  const two = dnsPacket.encode({ type: 'query', id: 11, questions: [{ type: 'A', name: 'web' }], additionals: [optRecord(1232), optRecord(1232)] });
  const reply = await raw(two);
  assert.equal(rcodeOf(reply.bytes!), 1);
  assert.equal(reply.outcome, 'formerr');
});

test('malformed queries: FORMERR echoing the ID, and the question when it parses', async () => {
  const good = queryBytes({ name: 'web', id: 0x4242 });
  // two questions
  const two = dnsPacket.encode({ type: 'query', id: 0x4243, questions: [{ type: 'A', name: 'web' }, { type: 'A', name: 'www' }] });
  let reply = await raw(two);
  let packet = decode(reply.bytes);
  assert.equal(packet.rcode, 'FORMERR');
  assert.equal(packet.id, 0x4243);
  assert.equal(packet.questions?.length, 1, 'the first question echoed');
  assert.equal(reply.outcome, 'formerr');
  // no question
  const none = Buffer.from(good);
  none.writeUInt16BE(0, 4);
  reply = await raw(none.subarray(0, 12));
  packet = decode(reply.bytes);
  assert.equal(packet.rcode, 'FORMERR');
  assert.equal(packet.questions?.length, 0);
  // a question cut short
  reply = await raw(good.subarray(0, good.length - 3));
  packet = decode(reply.bytes);
  assert.equal(packet.rcode, 'FORMERR');
  assert.equal(packet.id, 0x4242);
  assert.equal(packet.questions?.length, 0);
  // a compression pointer in the question (pointing at itself)
  const loop = Buffer.concat([good.subarray(0, 12), Buffer.from([0xc0, 0x0c, 0, 1, 0, 1])]);
  packet = decode((await raw(loop)).bytes);
  assert.equal(packet.rcode, 'FORMERR');
  // an answer count the message doesn't hold
  const lying = Buffer.from(good);
  lying.writeUInt16BE(3, 6);
  packet = decode((await raw(lying)).bytes);
  assert.equal(packet.rcode, 'FORMERR');
  assert.equal(packet.questions?.[0]?.name, 'web');
});

test('no header, or a response: dropped without a reply', async () => {
  for (const bytes of [Buffer.alloc(0), Buffer.alloc(11, 0xff)]) {
    const reply = await raw(bytes);
    assert.equal(reply.bytes, null);
    assert.equal(reply.outcome, 'dropped');
  }
  const response = Buffer.from(queryBytes({ name: 'web' }));
  response[2]! |= 0x80;
  const reply = await raw(response);
  assert.equal(reply.bytes, null);
  assert.equal(reply.outcome, 'dropped');
});

test('opcodes other than QUERY: NOTIMP', async () => {
  for (const opcode of [1, 2, 4, 5, 15]) {
    const q = Buffer.from(queryBytes({ name: 'web', id: opcode }));
    q[2] = (q[2]! & 0x87) | (opcode << 3);
    const reply = await raw(q);
    const packet = decode(reply.bytes);
    assert.equal(packet.rcode, 'NOTIMP', `opcode ${opcode}`);
    assert.equal(packet.id, opcode);
    assert.equal((reply.bytes![2]! >> 3) & 0xf, opcode, 'the opcode is echoed');
    assert.equal(packet.answers?.length, 0);
  }
});

test('a query from a namespace without a view is dropped', async () => {
  const reply = await raw(queryBytes({ name: 'web' }), 'udp', '/run/netns/nobody');
  assert.equal(reply.bytes, null);
  assert.equal(reply.outcome, 'dropped');
  const malformed = await raw(queryBytes({ name: 'web' }).subarray(0, 14), 'udp', '/run/netns/nobody');
  assert.equal(malformed.bytes, null);
});

test('unknown names, and names of other classes, go upstream: with none, SERVFAIL', async () => {
  for (const q of [{ name: 'example.org' }, { name: 'hidden' }, { name: 'web', klass: 'CH' as const }]) {
    const { packet, outcome } = await ask(resolver(), q);
    assert.equal(packet.rcode, 'SERVFAIL', q.name);
    assert.equal(outcome, 'servfail');
    assert.equal(packet.questions?.[0]?.name, q.name);
  }
});

test('zone transfers (AXFR, IXFR) are REFUSED, for our names and others alike, over UDP and TCP', async () => {
  for (const type of ['AXFR', 'IXFR'] as const) {
    for (const transport of ['udp', 'tcp'] as const) {
      for (const name of ['web', 'tasks.web', 'example.org']) {
        const r = resolver();
        const { packet, outcome } = await ask(r, { name, type, transport });
        assert.equal(packet.rcode, 'REFUSED', `${type} ${name} over ${transport}`);
        assert.equal(outcome, 'refused');
        assert.deepEqual(packet.answers, []);
        assert.equal(packet.questions?.[0]?.type, type);
        assert.equal(r.counters.servfail, 0, 'not forwarded (no upstream here would give SERVFAIL)');
      }
    }
  }
});

test('counters count every reply by outcome; setRecords swaps the snapshot whole', async () => {
  const r = resolver();
  await ask(r, { name: 'web' });
  await ask(r, { name: 'web', type: 'AAAA' });
  await r.answer({ bytes: Buffer.alloc(3), transport: 'udp', netns: CLIENT });
  await ask(r, { name: 'nowhere.example' });
  assert.deepEqual(r.counters, { answered: 1, nodata: 1, forwarded: 0, servfail: 1, refused: 0, formerr: 0, dropped: 1 });

  const moved = catalogOf(CLUSTER.replace('appnet: 10.0.1.2,', 'appnet: 10.0.1.9,'));
  r.setRecords(buildRecords(moved, NODE, new Map()));
  assert.deepEqual(addressesOf((await ask(r, { name: 'web' })).packet), ['10.0.1.9']);
});

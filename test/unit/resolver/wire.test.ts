import assert from 'node:assert/strict';
import test from 'node:test';
import dnsPacket from 'dns-packet';
import {
  addressBytes,
  encodeAddressRecord,
  encodeName,
  parseQuery,
  replyLimit,
  reverseName,
  truncateReply,
} from '../../../src/resolver/wire.js';
import { decode, optRecord, queryBytes } from './helpers.js';

test('addresses to bytes: IPv4, IPv6 compressed, full and with a dotted tail; junk is null', () => {
  assert.deepEqual([...addressBytes('10.0.1.2')!], [10, 0, 1, 2]);
  assert.deepEqual([...addressBytes('fd00:1::31')!], [0xfd, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x31]);
  assert.deepEqual([...addressBytes('::')!], new Array(16).fill(0));
  assert.deepEqual([...addressBytes('::ffff:192.0.2.1')!], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1]);
  assert.deepEqual([...addressBytes('1:2:3:4:5:6:7:8')!], [0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8]);
  for (const bad of ['10.0.1', '10.0.1.256', '010.0.1.2', '1::2::3', '1:2:3:4:5:6:7:8:9', 'x', '', '1.2.3.4.5']) {
    assert.equal(addressBytes(bad), null, bad);
  }
});

test('address records decode with dns-packet', () => {
  const rr = encodeAddressRecord('fd00:1::31')!;
  const message = Buffer.concat([queryBytes({ name: 'x', type: 'AAAA' }), rr]);
  message.writeUInt16BE(1, 6);
  message[2]! |= 0x80;
  const packet = decode(message);
  assert.equal((packet.answers?.[0] as { data: string }).data, 'fd00:1::31');
  assert.equal(encodeAddressRecord('nope'), null);
});

test('reverse names', () => {
  assert.equal(reverseName(addressBytes('10.0.1.2')!), '2.1.0.10.in-addr.arpa');
  assert.equal(reverseName(addressBytes('fd00:1::31')!), '1.3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.0.0.d.f.ip6.arpa');
});

test('names encode as labels', () => {
  assert.deepEqual([...encodeName('web.1.a.appnet')], [3, 119, 101, 98, 1, 49, 1, 97, 6, 97, 112, 112, 110, 101, 116, 0]);
});

test('parseQuery: name lower-cased, type, class, EDNS size, question end', () => {
  const parsed = parseQuery(queryBytes({ name: 'TaSkS.WeB', type: 'AAAA', edns: 1400 }));
  assert.equal(parsed.kind, 'query');
  if (parsed.kind !== 'query') return;
  assert.equal(parsed.query.name, 'tasks.web');
  assert.equal(parsed.query.qtype, 28);
  assert.equal(parsed.query.qclass, 1);
  assert.equal(parsed.query.edns?.udpSize, 1400);
  assert.equal(parsed.query.questionEnd, 12 + 11 + 4);
  assert.equal(replyLimit('udp', parsed.query.edns), 1400);
  assert.equal(replyLimit('udp', null), 512);
  assert.equal(replyLimit('tcp', null), 65535);
  assert.equal(replyLimit('udp', { udpSize: 65535, version: 0, dnssecOk: false }), 65507);
});

test('parseQuery: a label holding a dot byte can never be one of our names', () => {
  const q = queryBytes({ name: 'tasksXweb' });
  q[12 + 1 + 5] = 0x2e; // "tasks.web" as one label
  const parsed = parseQuery(q);
  assert.equal(parsed.kind, 'query');
  assert.equal(parsed.kind === 'query' ? parsed.query.name : 'x', null);
});

test('parseQuery: root, 63-byte labels and 255-byte names are fine; longer is FORMERR', () => {
  const root = parseQuery(queryBytes({ name: '.', type: 'NS' }));
  assert.equal(root.kind === 'query' ? root.query.name : undefined, '');
  const longest = `${'a'.repeat(63)}.${'a'.repeat(63)}.${'a'.repeat(63)}.${'a'.repeat(61)}`; // 255 bytes on the wire
  assert.equal(parseQuery(queryBytes({ name: longest })).kind, 'query');
  assert.equal(parseQuery(queryBytes({ name: `${longest}a` })).kind, 'error', '256 bytes on the wire');
  assert.equal(parseQuery(queryBytes({ name: 'a'.repeat(63) })).kind, 'query');
  const tooLongLabel = queryBytes({ name: 'ab' });
  const header = tooLongLabel.subarray(0, 12);
  const label = Buffer.concat([header, Buffer.from([64]), Buffer.alloc(64, 0x61), Buffer.from([0, 0, 1, 0, 1])]);
  assert.equal(parseQuery(label).kind, 'error');
  const tooLong = Buffer.concat([header, ...Array.from({ length: 5 }, () => Buffer.concat([Buffer.from([60]), Buffer.alloc(60, 0x61)])), Buffer.from([0, 0, 1, 0, 1])]);
  assert.equal(parseQuery(tooLong).kind, 'error');
});

function bigResponse(withOpt: boolean, count = 60): Buffer {
  return dnsPacket.encode({
    type: 'response',
    id: 1,
    flags: dnsPacket.RECURSION_AVAILABLE,
    questions: [{ type: 'A', name: 'many.example' }],
    answers: Array.from({ length: count }, (_, i) => ({ type: 'A' as const, name: 'many.example', ttl: 5, data: `192.0.2.${i + 1}` })),
    authorities: [{ type: 'NS', name: 'example', ttl: 5, data: 'ns.example' }],
    additionals: withOpt ? [optRecord(4096)] : [],
  });
}

test('truncateReply: fits untouched; otherwise a prefix of whole records with TC, OPT kept at the end', () => {
  const small = bigResponse(false, 3);
  assert.equal(truncateReply(small, 512), small);
  for (const withOpt of [false, true]) {
    const cut = truncateReply(bigResponse(withOpt), 512);
    assert.ok(cut.length <= 512);
    const packet = decode(cut);
    assert.equal(packet.flag_tc, true);
    const addresses = (packet.answers ?? []).map((a) => (a as { data: string }).data);
    assert.ok(addresses.length > 5 && addresses.length < 60);
    assert.deepEqual(addresses, addresses.map((_, i) => `192.0.2.${i + 1}`));
    assert.equal(packet.authorities?.length, 0);
    assert.equal(packet.additionals?.length, withOpt ? 1 : 0);
    if (withOpt) assert.equal(packet.additionals?.[0]?.type, 'OPT');
  }
});

test('truncateReply: dropping only additional records does not set TC (RFC 2181 §9)', () => {
  const reply = dnsPacket.encode({
    type: 'response',
    id: 2,
    questions: [{ type: 'A', name: 'x.example' }],
    answers: [{ type: 'A', name: 'x.example', ttl: 5, data: '192.0.2.1' }],
    additionals: Array.from({ length: 40 }, (_, i) => ({ type: 'A' as const, name: `glue${i}.example`, ttl: 5, data: '192.0.2.2' })),
  });
  const packet = decode(truncateReply(reply, 512));
  assert.equal(packet.flag_tc, false);
  assert.equal(packet.answers?.length, 1);
  assert.ok((packet.additionals?.length ?? 0) < 40);
});

test('truncateReply: a reply that can\'t be walked shrinks to header + question + TC', () => {
  const reply = bigResponse(false);
  reply.writeUInt16BE(200, 6); // claims more answers than it holds
  const packet = decode(truncateReply(reply, 512));
  assert.equal(packet.flag_tc, true);
  assert.equal(packet.answers?.length, 0);
  assert.equal(packet.questions?.[0]?.name, 'many.example');
});

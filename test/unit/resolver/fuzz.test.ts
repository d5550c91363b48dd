// Malformed packets never crash the resolver: 100k+ random and mutated packets,
// every reply decodable by dns-packet (or a clean drop). Seeded, so a failure
// reproduces: VIPMESH_FUZZ_SEED=<n> picks another sequence.
import assert from 'node:assert/strict';
import test from 'node:test';
import dnsPacket from 'dns-packet';
import { createResolver } from '../../../src/resolver/answer.js';
import { buildRecords } from '../../../src/resolver/records.js';
import type { Outcome } from '../../../src/resolver/types.js';
import { truncateReply } from '../../../src/resolver/wire.js';
import { catalogOf } from '../../helpers/catalog.js';
import { prng } from '../../helpers/prng.js';
import { CLIENT, CLUSTER, NODE, optRecord, queryBytes } from './helpers.js';

const SEED = Number(process.env['VIPMESH_FUZZ_SEED'] ?? 0x5eed);

const records = buildRecords(catalogOf(CLUSTER), NODE, new Map());

function seeds(): Buffer[] {
  const names = [
    'web', 'TaSkS.big', 'peers', 'example.org', '11.1.0.10.in-addr.arpa', 'hidden', 'a.b.c.d.e.f.g', '.',
    // at the limits: a 63-byte label, a 253-character name (255 bytes on the wire)
    `${'a'.repeat(63)}.bb.example`, `${'c'.repeat(63)}.${'c'.repeat(63)}.${'c'.repeat(63)}.${'c'.repeat(61)}`,
  ];
  const types = ['A', 'AAAA', 'PTR', 'MX', 'TXT', 'ANY'] as const;
  const out: Buffer[] = [];
  for (const name of names) {
    for (const type of types) {
      out.push(queryBytes({ name, type: type as 'A' }));
      out.push(queryBytes({ name, type: type as 'A', edns: 1232 }));
    }
  }
  out.push(dnsPacket.encode({
    type: 'query', id: 1, questions: [{ type: 'A', name: 'web' }],
    answers: [{ type: 'A', name: 'web', ttl: 1, data: '192.0.2.1' }],
    authorities: [{ type: 'NS', name: 'web', ttl: 1, data: 'ns.web' }],
    additionals: [{ type: 'TXT', name: 'web', ttl: 1, data: 'x' }, optRecord(4096, { options: [{ code: 10, data: Buffer.alloc(8) } as unknown as dnsPacket.PacketOpt] })],
  }));
  return out;
}

type Mutation = (bytes: Buffer, rand: () => number) => Buffer;

const int = (rand: () => number, n: number): number => Math.floor(rand() * n);

const mutations: Mutation[] = [
  // random bytes of a random length
  (_b, rand) => Buffer.from(Array.from({ length: int(rand, 600) }, () => int(rand, 256))),
  // bit flips
  (b, rand) => {
    const out = Buffer.from(b);
    for (let i = 0, n = 1 + int(rand, 8); i < n; i++) out[int(rand, out.length)]! ^= 1 << int(rand, 8);
    return out;
  },
  // truncation
  (b, rand) => Buffer.from(b.subarray(0, int(rand, b.length + 1))),
  // random bytes appended
  (b, rand) => Buffer.concat([b, Buffer.from(Array.from({ length: 1 + int(rand, 300) }, () => int(rand, 256)))]),
  // random section counts
  (b, rand) => {
    const out = Buffer.from(b);
    if (out.length >= 12) out.writeUInt16BE(int(rand, 4) === 0 ? int(rand, 65536) : int(rand, 4), 4 + 2 * int(rand, 4));
    return out;
  },
  // a label length byte set to anything: too long, reserved label types, pointers
  (b, rand) => {
    const out = Buffer.from(b);
    if (out.length > 12) out[12 + int(rand, Math.min(out.length - 12, 20))] = [64, 0x80, 0xc0 | int(rand, 64), int(rand, 256), 63][int(rand, 5)]!;
    return out;
  },
  // compression pointer loops: in the question, and in an additional record's owner
  (b, rand) => {
    const header = Buffer.alloc(12);
    b.copy(header, 0, 0, Math.min(12, b.length));
    header.writeUInt16BE(1, 4);
    const self = Buffer.from([0xc0, 12]);
    const mutual = Buffer.from([0xc0, 14, 0xc0, 12]);
    if (int(rand, 2) === 0) return Buffer.concat([header, int(rand, 2) === 0 ? self : mutual, Buffer.from([0, 1, 0, 1])]);
    const question = queryBytes({ name: 'web' }).subarray(12);
    header.writeUInt16BE(1, 10);
    const at = 12 + question.length;
    const owner = int(rand, 2) === 0 ? Buffer.from([0xc0 | (at >> 8), at & 0xff]) : Buffer.from([0xc0, 0xff]);
    return Buffer.concat([header, question, owner, Buffer.from([0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 0])]);
  },
  // one label one byte longer: past 63, or the name past 255 bytes
  (b, rand) => {
    let off = 12;
    for (let skip = int(rand, 6); skip > 0 && off < b.length && b[off]! > 0 && b[off]! < 64; skip--) off += 1 + b[off]!;
    if (off >= b.length || b[off] === 0) return b;
    const out = Buffer.concat([b.subarray(0, off + 1), Buffer.from([0x61]), b.subarray(off + 1)]);
    out[off] = (out[off]! + 1) & 0xff;
    return out;
  },
  // random flags: opcodes, QR, rcode bits
  (b, rand) => {
    const out = Buffer.from(b);
    if (out.length >= 4) {
      out[2] = int(rand, 256);
      out[3] = int(rand, 256);
    }
    return out;
  },
  // random qtype / qclass
  (b, rand) => {
    const out = Buffer.from(b);
    if (out.length >= 16) out.writeUInt32BE(int(rand, 2 ** 32), out.length - 4 - (int(rand, 2) === 0 ? 0 : 11 < out.length - 16 ? 11 : 0));
    return out;
  },
];

test('100 000 random and mutated packets: no throw, every reply decodes or is a clean drop', async () => {
  const rand = prng(SEED);
  const resolver = createResolver({ records, upstreams: [], random: rand });
  const corpus = seeds();
  const outcomes: Record<string, number> = {};
  const total = 100_000;
  for (let i = 0; i < total; i++) {
    let bytes = corpus[int(rand, corpus.length)]!;
    for (let m = 0, n = 1 + int(rand, 3); m < n; m++) bytes = mutations[int(rand, mutations.length)]!(bytes, rand);
    const transport = int(rand, 4) === 0 ? 'tcp' : 'udp';
    const netns = int(rand, 20) === 0 ? '/run/netns/nobody' : CLIENT;
    const context = `packet #${i} (seed ${SEED}) ${bytes.toString('hex')}`;
    let reply;
    try {
      reply = await resolver.answer({ bytes, transport, netns });
    } catch (e) {
      assert.fail(`answer() threw ${String(e)} on ${context}`);
    }
    outcomes[reply.outcome] = (outcomes[reply.outcome] ?? 0) + 1;
    if (reply.bytes === null) continue;
    assert.ok(reply.outcome !== 'dropped', context);
    const out = Buffer.from(reply.bytes);
    try {
      dnsPacket.decode(out);
    } catch (e) {
      assert.fail(`reply doesn't decode (${String(e)}): ${context} → ${out.toString('hex')}`);
    }
    assert.ok(out.length >= 12, context);
    assert.equal(out.readUInt16BE(0), bytes.readUInt16BE(0), `the ID is echoed: ${context}`);
    assert.ok((out[2]! & 0x80) !== 0, `QR set: ${context}`);
    const arcount = bytes.readUInt16BE(10);
    const limit = transport === 'tcp' ? 65535 : arcount === 0 ? 512 : 65507;
    assert.ok(out.length <= limit, `${out.length} bytes within ${limit}: ${context}`);
  }
  const counted = Object.values(resolver.counters).reduce((a, b) => a + b, 0);
  assert.equal(counted, total, 'every query counted once');
  // the mutations reach every branch worth reaching
  for (const outcome of ['answered', 'nodata', 'servfail', 'formerr', 'dropped'] satisfies Outcome[]) {
    assert.ok((outcomes[outcome] ?? 0) > 100, `${outcome}: ${outcomes[outcome] ?? 0}`);
  }
});

test('20 000 mutated upstream replies cut for a UDP client always decode', () => {
  const rand = prng(SEED + 1);
  const base = dnsPacket.encode({
    type: 'response', id: 1, flags: dnsPacket.RECURSION_AVAILABLE,
    questions: [{ type: 'A', name: 'many.example' }],
    answers: Array.from({ length: 50 }, (_, i) => ({ type: 'A' as const, name: 'many.example', ttl: 5, data: `192.0.2.${i + 1}` })),
    authorities: [{ type: 'NS', name: 'example', ttl: 5, data: 'ns.example' }],
    additionals: [{ type: 'A', name: 'ns.example', ttl: 5, data: '192.0.2.53' }, optRecord(4096)],
  });
  let cut = 0;
  for (let i = 0; i < 20_000; i++) {
    let bytes = base;
    for (let m = 0, n = 1 + int(rand, 2); m < n; m++) bytes = mutations[1 + int(rand, mutations.length - 1)]!(bytes, rand);
    if (bytes.length < 12) continue;
    try {
      dnsPacket.decode(bytes);
    } catch {
      continue; // forward() only passes on replies dns-packet decodes
    }
    const limit = 512 + int(rand, 800);
    const out = truncateReply(bytes, limit);
    if (out !== bytes) cut++;
    const context = `seed ${SEED + 1} #${i} limit ${limit}: ${bytes.toString('hex')}`;
    assert.ok(out.length <= Math.max(limit, 12 + 260), context);
    assert.doesNotThrow(() => dnsPacket.decode(Buffer.from(out)), context);
  }
  assert.ok(cut > 1000, `${cut} replies were cut`);
});

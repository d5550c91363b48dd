// Does the hand-written wire path pay? µs/query for answering a local A query
// with dns-packet end to end (decode, look up, encode) against the resolver's
// own path (parse the question by hand, copy header + question, append
// pre-encoded records), plus the whole answer() call, and how long a record
// snapshot of 10k services takes to build. No sockets: Node's dgram recv+send
// costs ~7.5–8 µs/query on its own (shared/research/dns.md §2), so these
// numbers are the part the resolver controls.
//
//   npm run build && node dist/bench/dns-codec.js
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import dnsPacket from 'dns-packet';
import { validateCatalog } from '../src/catalog/validate.js';
import type { Catalog } from '../src/catalog/types.js';
import { createResolver } from '../src/resolver/answer.js';
import { buildRecords, type Records } from '../src/resolver/records.js';
import { buildReply, parseQuery, replyLimit, RCODE_NOERROR } from '../src/resolver/wire.js';
import { median } from './lab.js';
import { syntheticCatalog } from './synthetic.js';

const COMMAND = 'npm run build && node dist/bench/dns-codec.js';

interface Case {
  readonly label: string;
  readonly query: Buffer;
}

function validated(raw: unknown): Catalog {
  const result = validateCatalog(raw);
  if (!result.ok) throw new Error(`bench catalog is invalid: ${result.problems[0]?.message ?? '?'}`);
  return result.catalog;
}

function query(name: string, edns: boolean): Buffer {
  return dnsPacket.encode({
    type: 'query',
    id: 0x2b2b,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type: 'A', name }],
    additionals: edns ? [{ type: 'OPT', name: '.', udpPayloadSize: 1232 } as unknown as dnsPacket.Answer] : [],
  });
}

/** dns-packet end to end, as a resolver built on it alone would answer (and without truncating). */
function viaDnsPacket(records: Records, netns: string, bytes: Buffer): Buffer {
  const q = dnsPacket.decode(bytes);
  const question = q.questions?.[0];
  if (question === undefined) throw new Error('no question');
  const found = records.lookup(netns, question.name, 1);
  const answers = found.kind === 'answer'
    ? found.records.map((r) => ({ type: 'A' as const, name: question.name, ttl: 600, data: r.data }))
    : [];
  const opt = (q.additionals ?? []).find((a) => a.type === 'OPT');
  return dnsPacket.encode({
    id: q.id ?? 0,
    type: 'response',
    flags: dnsPacket.RECURSION_AVAILABLE | ((q.flags ?? 0) & dnsPacket.RECURSION_DESIRED),
    questions: q.questions ?? [],
    answers,
    additionals: opt === undefined ? [] : [{ type: 'OPT', name: '.', udpPayloadSize: 1232 } as unknown as dnsPacket.Answer],
  });
}

/** The resolver's own synchronous path, without the shuffle and the promise. */
function viaHand(records: Records, netns: string, bytes: Buffer): Uint8Array {
  const parsed = parseQuery(bytes);
  if (parsed.kind !== 'query' || parsed.query.name === null) throw new Error('not a query');
  const found = records.lookup(netns, parsed.query.name, parsed.query.qtype);
  const wires = found.kind === 'answer' ? found.records.map((r) => r.wire) : [];
  return buildReply(bytes, parsed.query, RCODE_NOERROR, wires, replyLimit('udp', parsed.query.edns));
}

/** µs per call: the median of `rounds` timed rounds of `n` calls, after a warm-up round. */
function timeSync(n: number, rounds: number, fn: () => unknown): number {
  for (let i = 0; i < n; i++) fn();
  const samples: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const started = performance.now();
    for (let i = 0; i < n; i++) fn();
    samples.push(((performance.now() - started) * 1000) / n);
  }
  return median(samples);
}

export interface DnsCodecBenchOptions {
  readonly iterations?: number;
  readonly rounds?: number;
}

export async function runDnsCodecBench(options: DnsCodecBenchOptions = {}): Promise<{ markdown: string }> {
  const n = options.iterations ?? 100_000;
  const rounds = options.rounds ?? 5;
  const load = loadavg()[0]!;

  const catalog = validated(syntheticCatalog({ services: 1000, tasksPerService: 10, networks: 1, localTasks: 10 }));
  const records = buildRecords(catalog, 'node-0', new Map());
  const netns = records.namespaces[0]!;
  const resolver = createResolver({ records, upstreams: [] });
  const cases: Case[] = [
    { label: '`svc-00001` A, 1 address, no EDNS', query: query('svc-00001', false) },
    { label: '`tasks.svc-00001` A, 10 addresses, EDNS 1232', query: query('tasks.svc-00001', true) },
    // Docker's <name>.<network> form: one more map lookup, no string split.
    { label: '`svc-00001.net-0` A, the `<name>.<network>` form', query: query('svc-00001.net-0', false) },
  ];

  const rows: string[] = [
    '| query | dns-packet decode+encode (µs) | hand path (µs) | speed-up | whole `answer()` (µs) | reply bytes dns-packet / hand |',
    '|---|---:|---:|---:|---:|---:|',
  ];
  for (const c of cases) {
    const packet = timeSync(n, rounds, () => viaDnsPacket(records, netns, c.query));
    const hand = timeSync(n, rounds, () => viaHand(records, netns, c.query));
    const whole = timeSync(n, rounds, () => resolver.answer({ bytes: c.query, transport: 'udp', netns }));
    const sizes = `${viaDnsPacket(records, netns, c.query).length} / ${viaHand(records, netns, c.query).length}`;
    rows.push(`| ${c.label} | ${packet.toFixed(2)} | ${hand.toFixed(2)} | ${(packet / hand).toFixed(1)}× | ${whole.toFixed(2)} | ${sizes} |`);
  }

  const big = validated(syntheticCatalog({ services: 10_000, tasksPerService: 3, networks: 20, localTasks: 200 }));
  const builds: number[] = [];
  let stats = buildRecords(big, 'node-0', new Map()).stats;
  for (let i = 0; i < 5; i++) {
    const started = performance.now();
    stats = buildRecords(big, 'node-0', new Map()).stats;
    builds.push(performance.now() - started);
  }

  const markdown = [
    `### DNS codec: dns-packet vs the hand-written path (${n.toLocaleString('en')} queries × ${rounds} rounds, median)`,
    '',
    ...rows,
    '',
    `Record snapshot for 10,000 services × 3 tasks over 20 networks, 200 local tasks ` +
      `(${stats.views} views, ${stats.networks} network tables, ${stats.names.toLocaleString('en')} names): ` +
      `**${median(builds).toFixed(0)} ms** to build (median of 5; min ${Math.min(...builds).toFixed(0)}, max ${Math.max(...builds).toFixed(0)}).`,
    '',
    `The dns-packet column doesn't truncate and doesn't compress (the reply is larger); the hand path does both. ` +
      `\`answer()\` adds the shuffle, counters and a promise. Node's dgram receive+send adds ~7.5–8 µs/query on top of every column. ` +
      `Load average at start: ${load.toFixed(2)}. Command: \`${COMMAND}\`.`,
  ].join('\n');
  return { markdown };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { markdown } = await runDnsCodecBench();
  process.stdout.write(markdown + '\n');
}

// Shared by the resolver tests: a cluster catalog, query building and reply
// decoding with dns-packet (an independent codec, so the tests don't check the
// hand-written wire code against itself), and fake upstream servers on real
// loopback sockets.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import dnsPacket from 'dns-packet';
import type { Answerer, Transport } from '../../../src/resolver/types.js';

// Test address plan: TEST-NET for nodes and upstream answers, 10.x for overlays.
export const BULK = 100; // tasks of the dnsrr service "big": more than 1232 bytes of A records

function bulkTasks(): string {
  const lines: string[] = [];
  for (let i = 0; i < BULK; i++) {
    lines.push(`  big.${i + 1}.x: { service: big, node: node-2, netns: /run/netns/big${i}, addresses: { bulk: 10.0.3.${10 + i} } }`);
  }
  return lines.join('\n');
}

export const CLUSTER = `
version: 1
networks:
  appnet: { subnet: 10.0.1.0/24 }
  backend: { subnet: 10.0.2.0/24 }
  bulk: { subnet: 10.0.3.0/24 }
  v6net: { subnet: "fd00:1::/64" }
  zeta: { subnet: 10.0.9.0/24 }
  ingress: { subnet: 10.255.0.0/16, ingress: true }
nodes:
  node-1: { address: 192.0.2.11, ingressSandbox: { netns: /run/netns/sbox1, address: 10.255.0.2 } }
  node-2: { address: 192.0.2.12, ingressSandbox: { netns: /run/netns/sbox2, address: 10.255.0.4 } }
services:
  web:
    vips: { appnet: 10.0.1.2, backend: 10.0.2.2, ingress: 10.255.0.3 }
    aliases: [www]
    ports: [{ target: 80, published: 8080 }]
  db: { vips: { backend: 10.0.2.3 } }
  peers: { endpointMode: dnsrr, networks: [appnet, v6net] }
  checked: { vips: { appnet: 10.0.1.4 }, healthcheck: { tcp: 80 } }
  hidden: { vips: { zeta: 10.0.9.2 } }
  big: { endpointMode: dnsrr, networks: [bulk] }
  idle: { vips: { appnet: 10.0.1.5 } }
tasks:
  web.1.a: { service: web, node: node-1, netns: /run/netns/web1, addresses: { appnet: 10.0.1.11, backend: 10.0.2.11, ingress: 10.255.0.11 } }
  web.2.b: { service: web, node: node-2, netns: /run/netns/web2, addresses: { appnet: 10.0.1.12, backend: 10.0.2.12, ingress: 10.255.0.12 } }
  web.3.c: { service: web, node: node-2, netns: /run/netns/web3, addresses: { appnet: 10.0.1.13, backend: 10.0.2.13, ingress: 10.255.0.13 }, health: unhealthy }
  web.4.d: { service: web, node: node-1, netns: /run/netns/web4, addresses: { appnet: 10.0.1.14, backend: 10.0.2.14, ingress: 10.255.0.14 }, state: shutdown }
  db.1.a: { service: db, node: node-1, netns: /run/netns/db1, addresses: { backend: 10.0.2.21 } }
  peers.1.a: { service: peers, node: node-1, netns: /run/netns/peers1, addresses: { appnet: 10.0.1.31, v6net: "fd00:1::31" } }
  peers.2.b: { service: peers, node: node-2, netns: /run/netns/peers2, addresses: { appnet: 10.0.1.32, v6net: "fd00:1::32" } }
  checked.1.a: { service: checked, node: node-1, netns: /run/netns/checked1, addresses: { appnet: 10.0.1.41 } }
  checked.2.b: { service: checked, node: node-2, netns: /run/netns/checked2, addresses: { appnet: 10.0.1.42 } }
  hidden.1.a: { service: hidden, node: node-2, netns: /run/netns/hidden1, addresses: { zeta: 10.0.9.11 } }
  Loner: { node: node-1, netns: /run/netns/loner, addresses: { appnet: 10.0.1.51 } }
  client: { node: node-1, netns: /run/netns/client, addresses: { appnet: 10.0.1.61, backend: 10.0.2.61, bulk: 10.0.3.254, v6net: "fd00:1::61", ingress: 10.255.0.61 } }
  edge: { node: node-1, netns: /run/netns/edge, addresses: { ingress: 10.255.0.71 } }
${bulkTasks()}
`;

export const NODE = 'node-1';
/** A standalone task on every non-ingress network but zeta. */
export const CLIENT = '/run/netns/client';

export interface Ask {
  readonly name: string;
  readonly type?: dnsPacket.RecordType | 'ANY';
  readonly id?: number;
  readonly rd?: boolean;
  /** EDNS UDP size; omit for a query without OPT. */
  readonly edns?: number;
  readonly klass?: dnsPacket.RecordClass;
}

/** dns-packet's types want every OPT field; its encoder fills the rest with zeros. */
export function optRecord(udpPayloadSize: number, extra: { ednsVersion?: number; options?: dnsPacket.PacketOpt[] } = {}): dnsPacket.Answer {
  return { type: 'OPT', name: '.', udpPayloadSize, ...extra } as unknown as dnsPacket.Answer;
}

export function queryBytes(ask: Ask): Buffer {
  return dnsPacket.encode({
    type: 'query',
    id: ask.id ?? 0x1234,
    flags: ask.rd === false ? 0 : dnsPacket.RECURSION_DESIRED,
    questions: [{ type: (ask.type ?? 'A') as dnsPacket.RecordType, name: ask.name, class: ask.klass ?? 'IN' }],
    additionals: ask.edns === undefined ? [] : [optRecord(ask.edns)],
  });
}

/** dns-packet decodes the rcode too; its types leave it out. */
export type Decoded = dnsPacket.DecodedPacket & { readonly rcode: string };

export function decode(bytes: Uint8Array | null): Decoded {
  assert.ok(bytes !== null, 'a reply');
  return dnsPacket.decode(Buffer.from(bytes)) as Decoded;
}

export interface Answered {
  readonly bytes: Buffer;
  readonly packet: Decoded;
  readonly outcome: string;
}

export async function ask(
  answerer: Answerer,
  q: Ask & { readonly netns?: string; readonly transport?: Transport },
): Promise<Answered> {
  const reply = await answerer.answer({ bytes: queryBytes(q), transport: q.transport ?? 'udp', netns: q.netns ?? CLIENT });
  if (reply.bytes === null) throw new Error(`no reply (${reply.outcome}) for ${q.name}`);
  const bytes = Buffer.from(reply.bytes);
  return { bytes, packet: decode(bytes), outcome: reply.outcome };
}

export function rcodeOf(bytes: Uint8Array): number {
  return bytes[3]! & 0x0f;
}

export function addressesOf(packet: dnsPacket.DecodedPacket): string[] {
  return (packet.answers ?? []).map((a) => String((a as { data: unknown }).data));
}

export function sorted(values: readonly string[]): string[] {
  return [...values].sort();
}

// ---- fake upstream servers ----

export type Mode =
  | 'answer'       // one A record, 192.0.2.1
  | 'nxdomain'
  | 'servfail'
  | 'refused'
  | 'silent'       // never replies
  | 'big'          // 60 A records, whatever the client's size
  | 'stray-first'; // a reply with a wrong ID and one with a wrong question, then the real one

export interface FakeUpstream {
  readonly port: number;
  /** Queries received, decoded. */
  readonly received: dnsPacket.DecodedPacket[];
  close(): Promise<void>;
}

export function upstreamReply(query: dnsPacket.DecodedPacket, mode: Mode): Buffer {
  const base = {
    id: query.id ?? 0,
    type: 'response' as const,
    flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE,
    questions: query.questions ?? [],
  };
  const name = query.questions?.[0]?.name ?? '.';
  switch (mode) {
    // dns-packet encodes the rcode only as the low bits of `flags`
    case 'nxdomain':
      return dnsPacket.encode({ ...base, flags: base.flags | 3 });
    case 'servfail':
      return dnsPacket.encode({ ...base, flags: base.flags | 2 });
    case 'refused':
      return dnsPacket.encode({ ...base, flags: base.flags | 5 });
    case 'big': {
      const answers = Array.from({ length: 60 }, (_, i) => ({ type: 'A' as const, name, ttl: 30, data: `192.0.2.${i + 1}` }));
      return dnsPacket.encode({ ...base, answers });
    }
    default:
      return dnsPacket.encode({ ...base, answers: [{ type: 'A', name, ttl: 30, data: '192.0.2.1' }] });
  }
}

function replies(query: dnsPacket.DecodedPacket, mode: Mode): Buffer[] {
  if (mode === 'silent') return [];
  if (mode !== 'stray-first') return [upstreamReply(query, mode)];
  const wrongId = upstreamReply({ ...query, id: ((query.id ?? 0) + 1) & 0xffff }, 'nxdomain');
  const wrongQuestion = upstreamReply({ ...query, questions: [{ type: 'A', name: 'elsewhere.example' }] }, 'nxdomain');
  return [wrongId, wrongQuestion, upstreamReply(query, 'answer')];
}

export async function fakeUdpUpstream(mode: Mode): Promise<FakeUpstream> {
  const socket = dgram.createSocket('udp4');
  const received: dnsPacket.DecodedPacket[] = [];
  socket.on('message', (msg, peer) => {
    const query = dnsPacket.decode(msg);
    received.push(query);
    for (const reply of replies(query, mode)) socket.send(reply, peer.port, peer.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return {
    port: (socket.address() as AddressInfo).port,
    received,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}

export async function fakeTcpUpstream(mode: Mode): Promise<FakeUpstream> {
  const received: dnsPacket.DecodedPacket[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let pending: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
        const query = dnsPacket.decode(pending.subarray(2, 2 + pending.readUInt16BE(0)));
        pending = pending.subarray(2 + pending.readUInt16BE(0));
        received.push(query);
        for (const reply of replies(query, mode)) {
          const framed = Buffer.alloc(2 + reply.length);
          framed.writeUInt16BE(reply.length, 0);
          reply.copy(framed, 2);
          socket.write(framed);
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

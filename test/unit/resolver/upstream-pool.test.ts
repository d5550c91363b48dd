// The pooled UDP exchange against a real loopback server that echoes each query
// back as its reply and notes the port it came from.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';
import test from 'node:test';
import { createUpstreamPool } from '../../../src/resolver/upstream-pool.js';

async function echoServer(t: test.TestContext, delayMs = 0): Promise<{ port: number; ports: Set<number> }> {
  const socket = dgram.createSocket('udp4');
  const ports = new Set<number>();
  socket.on('message', (msg, peer) => {
    ports.add(peer.port);
    msg[2] = msg[2]! | 0x80; // QR
    setTimeout(() => socket.send(msg, peer.port, peer.address), delayMs);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => socket.close(() => resolve())));
  return { port: (socket.address() as AddressInfo).port, ports };
}

const query = (payload: number) => {
  const b = Buffer.alloc(14);
  b.writeUInt16BE(0x4242, 0); // the same ID every time: the pool must tell them apart
  b.writeUInt16BE(payload, 12);
  return b;
};
const isReply = (r: Buffer) => (r[2]! & 0x80) !== 0;

test('concurrent queries share a few sockets and each gets its own reply', async (t) => {
  const server = await echoServer(t, 5);
  const pool = createUpstreamPool({ sockets: 4 });
  t.after(() => pool.close());
  const upstream = { address: '127.0.0.1', port: server.port };
  const replies = await Promise.all(Array.from({ length: 50 }, (_, i) => pool.exchange(query(i), upstream, 2000, isReply)));
  assert.deepEqual(replies.map((r) => r?.readUInt16BE(12)), Array.from({ length: 50 }, (_, i) => i));
  assert.ok(server.ports.size <= 4, `at most 4 source ports, saw ${server.ports.size}`);
  assert.equal(pool.open(), 4);
});

test('a socket is replaced after maxUses queries, so the source port moves on', async (t) => {
  const server = await echoServer(t);
  const pool = createUpstreamPool({ sockets: 1, maxUses: 3 });
  t.after(() => pool.close());
  for (let i = 0; i < 7; i++) assert.ok(await pool.exchange(query(i), { address: '127.0.0.1', port: server.port }, 2000, isReply));
  assert.equal(server.ports.size, 3, 'queries 1-3, 4-6 and 7 each from a new port');
  assert.equal(pool.open(), 1, 'retired sockets are closed');
});

// The exchange's timeout is longer than the test's own: only acting on the ICMP
// error finishes in time. A bound on a hang, not a timing.
test('a closed port fails at once, not after the timeout; close() ends what is in flight', { timeout: 20_000 }, async (t) => {
  const pool = createUpstreamPool();
  const closed = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => closed.bind(0, '127.0.0.1', resolve));
  const port = (closed.address() as AddressInfo).port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  assert.equal(await pool.exchange(query(1), { address: '127.0.0.1', port }, 60_000, isReply), null);

  const silent = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => silent.bind(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => silent.close(() => resolve())));
  const pending = pool.exchange(query(2), { address: '127.0.0.1', port: (silent.address() as AddressInfo).port }, 60_000, isReply);
  await new Promise((r) => setTimeout(r, 50));
  pool.close();
  assert.equal(await pending, null);
  assert.equal(pool.open(), 0);
});

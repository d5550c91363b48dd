// The socket side of the resolver over real loopback sockets, with a stub
// answerer: UDP one-for-one, TCP framing (split, pipelined, out of order,
// half-closed), and the bounds (oversize frames, idle connections, connection
// count, UDP queries in flight). The answering chain itself is tested elsewhere.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import test, { type TestContext } from 'node:test';
import { type ServeLimits, type Served, serveNamespace } from '../../../src/resolver/serve.js';
import type { Answerer, Query } from '../../../src/resolver/types.js';

const NETNS = '/run/netns/unit';

/**
 * Replies `re:` + the query. Queries starting `slow<ms>:` answer after that long,
 * `drop` gets no reply, `throw` breaks the answerer's contract.
 */
function stub(): Answerer & { seen: Query[] } {
  const seen: Query[] = [];
  return {
    seen,
    async answer(query) {
      seen.push(query);
      const text = Buffer.from(query.bytes).toString('latin1');
      const slow = /^slow(\d+):/.exec(text);
      if (slow !== null) await sleep(Number(slow[1]));
      if (text === 'drop') return { bytes: null, outcome: 'dropped' };
      if (text === 'throw') throw new Error('stub broke its contract');
      if (text === 'big') return { bytes: Buffer.alloc(60_000, 0x62), outcome: 'answered' };
      return { bytes: Buffer.concat([Buffer.from('re:'), query.bytes]), outcome: 'answered' };
    },
  };
}

interface Setup {
  served: Served;
  answerer: ReturnType<typeof stub>;
  udpPort: number;
  tcpPort: number;
}

async function setUp(t: TestContext, limits: Partial<ServeLimits> = {}): Promise<Setup> {
  const udp = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
  const tcp = net.createServer();
  await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
  const answerer = stub();
  const served = serveNamespace({ udp, tcp }, { netns: NETNS, answerer, limits });
  t.after(() => served.close());
  return { served, answerer, udpPort: udp.address().port, tcpPort: (tcp.address() as net.AddressInfo).port };
}

function frame(text: string): Buffer {
  const body = Buffer.from(text, 'latin1');
  const header = Buffer.alloc(2);
  header.writeUInt16BE(body.length);
  return Buffer.concat([header, body]);
}

/**
 * A TCP client that collects framed replies. With `stubborn` it never closes its
 * side, not even after the server's FIN (as a misbehaving client may).
 */
async function client(port: number, options: { stubborn?: boolean } = {}): Promise<{
  socket: net.Socket;
  replies: string[];
  closed: Promise<void>;
  ended: Promise<void>;
  next: (count: number, timeoutMs?: number) => Promise<string[]>;
}> {
  const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: options.stubborn === true });
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  socket.on('error', () => {});
  const replies: string[] = [];
  let buffer = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    buffer = Buffer.concat([buffer, chunk]);
    while (buffer.length >= 2 && buffer.length >= 2 + buffer.readUInt16BE(0)) {
      const length = buffer.readUInt16BE(0);
      replies.push(buffer.subarray(2, 2 + length).toString('latin1'));
      buffer = buffer.subarray(2 + length);
    }
  });
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const ended = new Promise<void>((resolve) => socket.once('end', () => resolve()));
  const next = async (count: number, timeoutMs = 2000) => {
    const deadline = Date.now() + timeoutMs;
    while (replies.length < count && Date.now() < deadline) await sleep(5);
    return [...replies];
  };
  return { socket, replies, closed, ended, next };
}

async function udpAsk(port: number, texts: readonly string[], waitMs = 300): Promise<string[]> {
  const socket = dgram.createSocket('udp4');
  const replies: string[] = [];
  socket.on('message', (message) => replies.push(message.toString('latin1')));
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  for (const text of texts) socket.send(Buffer.from(text, 'latin1'), port, '127.0.0.1');
  await sleep(waitMs);
  socket.close();
  return replies;
}

test('UDP: one reply per query to its sender; a drop sends nothing; a throwing answerer harms no one', async (t) => {
  const { udpPort, answerer, served } = await setUp(t);
  assert.deepEqual(await udpAsk(udpPort, ['q1']), ['re:q1']);
  assert.deepEqual(await udpAsk(udpPort, ['drop']), []);
  assert.deepEqual(await udpAsk(udpPort, ['throw', 'q2']), ['re:q2']);
  assert.equal(answerer.seen.at(-1)?.transport, 'udp');
  assert.equal(answerer.seen.at(-1)?.netns, NETNS);
  assert.equal(served.counters.queries.udp, 4);
  assert.equal(served.counters.outcomes.dropped, 2);
});

test('UDP: beyond the bound on queries in flight, new queries are dropped, not queued', async (t) => {
  const { udpPort, served } = await setUp(t, { maxUdpInFlight: 2 });
  const replies = await udpAsk(udpPort, Array.from({ length: 10 }, (_, i) => `slow100:${i}`), 400);
  assert.equal(replies.length, 2);
  assert.equal(served.counters.udpOverload, 8);
  assert.deepEqual(await udpAsk(udpPort, ['after']), ['re:after'], 'serving resumes once they are answered');
});

test('TCP: pipelined queries on one connection, replies as they complete', async (t) => {
  const { tcpPort } = await setUp(t);
  const c = await client(tcpPort);
  c.socket.write(Buffer.concat([frame('slow150:first'), frame('second'), frame('third')]));
  const replies = await c.next(3);
  assert.deepEqual(replies, ['re:second', 're:third', 're:slow150:first'], 'the slow answer does not hold up the others');
  c.socket.write(frame('again'));
  assert.deepEqual((await c.next(4)).at(-1), 're:again', 'the connection stays open for more');
  c.socket.destroy();
});

test('TCP: a frame split across segments, even byte by byte, is reassembled', async (t) => {
  const { tcpPort } = await setUp(t);
  const c = await client(tcpPort);
  c.socket.setNoDelay(true);
  const bytes = Buffer.concat([frame('split-query'), frame('x'.repeat(3000))]);
  for (let i = 0; i < 20; i++) {
    c.socket.write(bytes.subarray(i, i + 1));
    await sleep(2);
  }
  c.socket.write(bytes.subarray(20));
  const replies = await c.next(2);
  assert.deepEqual(replies, ['re:split-query', `re:${'x'.repeat(3000)}`]);
  c.socket.destroy();
});

test('TCP: a client that half-closes after its queries still gets every reply, then the server closes', { timeout: 5000 }, async (t) => {
  const { tcpPort } = await setUp(t, { tcpIdleTimeoutMs: 60_000 });
  const c = await client(tcpPort);
  c.socket.end(Buffer.concat([frame('slow100:a'), frame('b')]));
  await c.closed;
  assert.deepEqual([...c.replies].sort(), ['re:b', 're:slow100:a']);
});

// The idle timeout is set far beyond the test's own timeout: a FIN lost behind the
// backlog would leave the connection open until the idle timer, and fail the test
// (a bound that catches that hang, not a timing check).
test('TCP: a half-close behind a paused backlog still gets every reply, and the server closes at once', { timeout: 5000 }, async (t) => {
  const { tcpPort } = await setUp(t, { maxTcpPendingPerConnection: 2, tcpIdleTimeoutMs: 60_000 });
  const c = await client(tcpPort);
  c.socket.end(Buffer.concat(Array.from({ length: 20 }, (_, i) => frame(`slow20:${i}`))));
  await c.closed;
  assert.equal(c.replies.length, 20);
});

test('TCP: an oversize or zero length closes that connection only', async (t) => {
  const { tcpPort, served } = await setUp(t, { maxTcpMessageBytes: 100 });
  const big = await client(tcpPort);
  big.socket.write(frame('y'.repeat(101)));
  await big.closed;
  assert.deepEqual(big.replies, []);

  const zero = await client(tcpPort);
  zero.socket.write(Buffer.from([0, 0]));
  await zero.closed;

  const good = await client(tcpPort);
  good.socket.write(frame('y'.repeat(100)));
  assert.deepEqual(await good.next(1), [`re:${'y'.repeat(100)}`]);
  assert.equal(served.counters.tcpBadFrames, 2);
  good.socket.destroy();
});

/** Polls until `check` holds; node:test's own timeout is what catches a hang. */
async function until(check: () => boolean): Promise<void> {
  while (!check()) await sleep(5);
}

test('TCP: an idle connection is closed; one waiting for a slow answer gets it first', async (t) => {
  const { tcpPort, served } = await setUp(t, { tcpIdleTimeoutMs: 100 });
  const idle = await client(tcpPort);
  await idle.closed;
  assert.deepEqual(idle.replies, []);

  const waiting = await client(tcpPort);
  waiting.socket.write(frame('slow300:late'));
  await waiting.closed;
  assert.deepEqual(waiting.replies, ['re:slow300:late']);
  assert.equal(served.counters.tcpIdleClosed, 2);
});

test('TCP: idle clients that never close their side free their slots; a new client is served meanwhile', async (t) => {
  const { tcpPort, served } = await setUp(t, { tcpIdleTimeoutMs: 100, maxTcpConnections: 3 });
  const stubborn = await Promise.all([1, 2, 3].map(() => client(tcpPort, { stubborn: true })));
  await until(() => served.connections() === 3);
  const refused = await client(tcpPort);
  await refused.closed; // every slot is taken
  await Promise.all(stubborn.map((c) => c.ended)); // the server's FIN, after the idle period
  await until(() => served.connections() === 0);
  for (const c of stubborn) assert.equal(c.socket.destroyed, false, 'the client has not closed');

  const fresh = await client(tcpPort);
  fresh.socket.write(frame('after'));
  assert.deepEqual(await fresh.next(1), ['re:after']);
  fresh.socket.destroy();
  for (const c of stubborn) c.socket.destroy();
});

test('TCP: a query trickled in without ever completing does not keep its slot', async (t) => {
  const { tcpPort, served } = await setUp(t, { tcpIdleTimeoutMs: 100 });
  const c = await client(tcpPort, { stubborn: true });
  c.socket.write(Buffer.from([0x10, 0x00])); // a 4096-byte query is coming…
  let sent = 0;
  const drip = setInterval(() => {
    if (!c.socket.destroyed && c.socket.writable) c.socket.write(Buffer.from([0x61]));
    sent++;
  }, 20);
  t.after(() => clearInterval(drip));
  await c.ended;
  clearInterval(drip);
  assert.ok(sent > 0);
  await until(() => served.connections() === 0);
  assert.equal(served.counters.tcpIdleClosed, 1);
  c.socket.destroy();
});

test('TCP: a client that never reads its replies is cut off after the idle period', async (t) => {
  const { tcpPort, served } = await setUp(t, { tcpIdleTimeoutMs: 200 });
  const socket = net.connect({ port: tcpPort, host: '127.0.0.1', allowHalfOpen: true });
  socket.on('error', () => {});
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  socket.pause();
  socket.write(Buffer.concat(Array.from({ length: 200 }, () => frame('big')))); // 12 MB of replies
  await until(() => served.connections() === 1);
  await until(() => served.connections() === 0);
  assert.equal(served.counters.tcpIdleClosed, 1);
  socket.destroy();
});

test('TCP: connections beyond the bound are closed on accept; the rest keep working', async (t) => {
  const { tcpPort, served } = await setUp(t, { maxTcpConnections: 2 });
  const a = await client(tcpPort);
  const b = await client(tcpPort);
  await sleep(50);
  const c = await client(tcpPort);
  await c.closed;
  a.socket.write(frame('a'));
  b.socket.write(frame('b'));
  assert.deepEqual(await a.next(1), ['re:a']);
  assert.deepEqual(await b.next(1), ['re:b']);
  assert.equal(served.connections(), 2);
  a.socket.destroy();
  b.socket.destroy();
});

test('TCP: a connection with too many queries in flight is paused, not dropped', async (t) => {
  const { tcpPort } = await setUp(t, { maxTcpPendingPerConnection: 2 });
  const c = await client(tcpPort);
  for (let i = 0; i < 10; i++) {
    c.socket.write(frame(`slow30:${i}`));
    await sleep(1);
  }
  const replies = await c.next(10, 3000);
  assert.equal(replies.length, 10);
  c.socket.destroy();
});

test('TCP: a client that does not read its replies stops being read, and gets them all once it does', async (t) => {
  const { tcpPort, answerer } = await setUp(t);
  const socket = net.connect(tcpPort, '127.0.0.1');
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  socket.pause();
  const queries = 500; // 30 MB of replies: more than the kernel's socket buffers hold
  socket.write(Buffer.concat(Array.from({ length: queries }, () => frame('big'))));
  await sleep(500);
  const answeredUnread = answerer.seen.length;
  assert.ok(answeredUnread < queries, `only ${answeredUnread} of ${queries} answered while nothing is read`);

  let received = 0;
  socket.on('data', (chunk: Buffer) => (received += chunk.length));
  socket.resume();
  const deadline = Date.now() + 10_000;
  while (received < queries * 60_002 && Date.now() < deadline) await sleep(20);
  assert.equal(received, queries * 60_002);
  assert.equal(answerer.seen.length, queries);
  socket.destroy();
});

test('close() stops both sockets and ends open connections', async (t) => {
  const { tcpPort, udpPort, served } = await setUp(t);
  const c = await client(tcpPort);
  await served.close();
  await c.closed;
  assert.deepEqual(await udpAsk(udpPort, ['late']), []);
  await assert.rejects(client(tcpPort), /ECONNREFUSED/);
  await served.close(); // twice is harmless
});

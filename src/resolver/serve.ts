// Serves one namespace's resolver sockets with an Answerer. UDP: one reply per
// query, to whoever sent it. TCP (RFC 7766): 2-byte length framing, several
// queries per connection, pipelined, replies written as they complete (glibc
// sends A and AAAA back to back on one connection), an idle timeout, and bounds
// on connections, message size, queries in flight and replies left unread.
// Nothing a client sends
// can throw out of here, and an error on one socket never touches another.
import type dgram from 'node:dgram';
import type net from 'node:net';
import type { Answerer, Outcome, Query, Reply, Transport } from './types.js';

export interface ServeLimits {
  /** Open TCP connections per namespace; more are closed on accept. */
  readonly maxTcpConnections: number;
  /** A TCP connection with no traffic for this long is closed (once its answers are out). */
  readonly tcpIdleTimeoutMs: number;
  /** Largest TCP query accepted; a bigger length prefix closes the connection. */
  readonly maxTcpMessageBytes: number;
  /** Queries of one TCP connection in flight before it stops being read. */
  readonly maxTcpPendingPerConnection: number;
  /** Reply bytes a TCP connection may leave unread before it stops being read. */
  readonly maxTcpUnsentBytes: number;
  /** UDP queries in flight per namespace before new ones are dropped (a flood must not grow memory). */
  readonly maxUdpInFlight: number;
}

export const DEFAULT_LIMITS: ServeLimits = {
  maxTcpConnections: 256,
  tcpIdleTimeoutMs: 10_000,
  maxTcpMessageBytes: 65_535,
  maxTcpPendingPerConnection: 64,
  maxTcpUnsentBytes: 256 * 1024,
  maxUdpInFlight: 4096,
};

export interface ServeCounters {
  readonly queries: Record<Transport, number>;
  /** Replies by outcome; an outcome not seen yet is absent. */
  readonly outcomes: Partial<Record<Outcome, number>>;
  /** UDP queries dropped because too many were in flight. */
  udpOverload: number;
  /** Replies that could not be sent (socket errors, replies too large to frame). */
  sendErrors: number;
  tcpConnections: number;
  /** TCP connections closed for a bad frame (zero or oversize length). */
  tcpBadFrames: number;
  tcpIdleClosed: number;
}

export type ServeLog = (level: 'warn' | 'error', message: string) => void;

export interface ServeOptions {
  readonly netns: string;
  readonly answerer: Answerer;
  readonly limits?: Partial<ServeLimits>;
  readonly log?: ServeLog;
}

export interface Served {
  readonly netns: string;
  readonly counters: ServeCounters;
  /** Open TCP connections right now. */
  readonly connections: () => number;
  /** Stops serving: closes both sockets and every open connection. */
  close(): Promise<void>;
}

export function newCounters(): ServeCounters {
  return {
    queries: { udp: 0, tcp: 0 },
    outcomes: {},
    udpOverload: 0,
    sendErrors: 0,
    tcpConnections: 0,
    tcpBadFrames: 0,
    tcpIdleClosed: 0,
  };
}

const MAX_FRAME = 65_535;

export function serveNamespace(sockets: { udp: dgram.Socket; tcp: net.Server }, options: ServeOptions): Served {
  const { netns, answerer } = options;
  const limits: ServeLimits = { ...DEFAULT_LIMITS, ...options.limits };
  const log: ServeLog = options.log ?? (() => {});
  const counters = newCounters();
  const open = new Set<net.Socket>();
  let closed = false;

  // The contract says answerers never throw; a bug there must still not escape.
  const failed = (query: Query, error: unknown): Reply => {
    log('error', `resolver: answering a ${query.transport} query from ${netns} failed: ${(error as Error).message}`);
    return { bytes: null, outcome: 'dropped' };
  };
  const counted = (reply: Reply): Reply => {
    counters.outcomes[reply.outcome] = (counters.outcomes[reply.outcome] ?? 0) + 1;
    return reply;
  };
  /** Synchronous for local names, a promise for forwarded ones. */
  const answer = (query: Query): Reply | Promise<Reply> => {
    counters.queries[query.transport]++;
    let reply: Reply | Promise<Reply>;
    try {
      reply = answerer.answer(query);
    } catch (error) {
      return counted(failed(query, error));
    }
    return reply instanceof Promise ? reply.then(counted, (error: unknown) => counted(failed(query, error))) : counted(reply);
  };

  // UDP
  const { udp } = sockets;
  let udpInFlight = 0;
  udp.on('error', (error) => log('warn', `resolver: udp socket in ${netns}: ${error.message}`));
  const sendUdp = (reply: Reply, remote: dgram.RemoteInfo) => {
    if (reply.bytes === null || closed) return;
    try {
      udp.send(reply.bytes, remote.port, remote.address, (error) => {
        if (error) counters.sendErrors++;
      });
    } catch {
      counters.sendErrors++; // e.g. the socket closed meanwhile, or a reply over 64 KiB
    }
  };
  udp.on('message', (bytes, remote) => {
    if (udpInFlight >= limits.maxUdpInFlight) {
      counters.udpOverload++;
      return;
    }
    const reply = answer({ bytes, transport: 'udp', netns });
    if (!(reply instanceof Promise)) {
      sendUdp(reply, remote);
      return;
    }
    udpInFlight++;
    void reply.then((r) => {
      udpInFlight--;
      sendUdp(r, remote);
    });
  });

  // TCP
  const { tcp } = sockets;
  // The server arrives from the helper built with default options; replies may
  // still be due after a client half-closes (it sent its queries, then FIN).
  (tcp as net.Server & { allowHalfOpen: boolean }).allowHalfOpen = true;
  tcp.maxConnections = limits.maxTcpConnections;
  tcp.on('error', (error) => log('warn', `resolver: tcp server in ${netns}: ${error.message}`));
  tcp.on('drop', () => log('warn', `resolver: tcp connection refused in ${netns}: ${limits.maxTcpConnections} already open`));
  tcp.on('connection', (socket) => {
    counters.tcpConnections++;
    open.add(socket);
    serveConnection(socket);
  });

  function serveConnection(socket: net.Socket): void {
    let pending = 0;
    let readEnded = false;
    let idle = false;
    let paused = false;
    /** What was read but not yet parsed when reading paused. */
    let leftover: Buffer | null = null;
    socket.setNoDelay(true);
    socket.setTimeout(limits.tcpIdleTimeoutMs);
    socket.on('error', () => {}); // resets and the like: the connection just ends
    socket.on('close', () => open.delete(socket));

    const finishIfDone = () => {
      if (pending === 0 && leftover === null && (readEnded || idle) && !socket.destroyed) socket.end();
    };
    socket.on('timeout', () => {
      counters.tcpIdleClosed++;
      // Replies still unsent after a whole idle period: the client stopped reading.
      if (socket.writableLength > 0) socket.destroy();
      idle = true;
      finishIfDone();
    });
    socket.on('end', () => {
      readEnded = true;
      finishIfDone();
    });

    // Stop reading while too many queries are in flight, or while replies pile up
    // unsent because the client does not read them; resume when both clear. A
    // chunk may hold many queries: what is left of it waits for the resume too.
    const full = () => pending >= limits.maxTcpPendingPerConnection || socket.writableLength > limits.maxTcpUnsentBytes;
    const flow = () => {
      if (!paused || full() || socket.destroyed) return;
      paused = false;
      const rest = leftover;
      leftover = null;
      if (rest !== null) consume(rest);
      if (!paused) socket.resume();
    };
    socket.on('drain', flow);

    const dispatch = (bytes: Buffer) => {
      pending++;
      void Promise.resolve(answer({ bytes, transport: 'tcp', netns })).then((reply) => {
        pending--;
        if (reply.bytes !== null && socket.writable) {
          if (reply.bytes.length > MAX_FRAME) {
            counters.sendErrors++;
          } else {
            const frame = Buffer.allocUnsafe(2 + reply.bytes.length);
            frame.writeUInt16BE(reply.bytes.length, 0);
            frame.set(reply.bytes, 2);
            socket.write(frame);
          }
        }
        flow();
        finishIfDone();
      });
    };

    // Frames are assembled in place: a client trickling a 64 KiB query one byte
    // at a time costs one allocation, not one copy of the whole buffer per byte.
    const header = Buffer.alloc(2);
    let headerFilled = 0;
    let body: Buffer | null = null;
    let bodyFilled = 0;
    const consume = (chunk: Buffer) => {
      let at = 0;
      while (at < chunk.length && !socket.destroyed) {
        if (full()) {
          paused = true;
          socket.pause();
          leftover = chunk.subarray(at);
          return;
        }
        if (body === null) {
          header[headerFilled++] = chunk[at++]!;
          if (headerFilled < 2) continue;
          headerFilled = 0;
          const length = header.readUInt16BE(0);
          if (length === 0 || length > limits.maxTcpMessageBytes) {
            // There is no resynchronising a stream after a bad length: close it.
            counters.tcpBadFrames++;
            socket.destroy();
            return;
          }
          body = Buffer.allocUnsafe(length);
          bodyFilled = 0;
          continue;
        }
        const copied = chunk.copy(body, bodyFilled, at, Math.min(chunk.length, at + body.length - bodyFilled));
        bodyFilled += copied;
        at += copied;
        if (bodyFilled === body.length) {
          const query = body;
          body = null;
          dispatch(query);
        }
      }
    };
    socket.on('data', (chunk: Buffer) => {
      idle = false;
      if (paused) {
        // Data already read when the socket was paused.
        leftover = leftover === null ? chunk : Buffer.concat([leftover, chunk]);
        return;
      }
      consume(chunk);
    });
  }

  return {
    netns,
    counters,
    connections: () => open.size,
    async close() {
      if (closed) return;
      closed = true;
      for (const socket of open) socket.destroy();
      await Promise.all([
        new Promise<void>((resolve) => {
          try {
            udp.close(() => resolve());
          } catch {
            resolve(); // already closed
          }
        }),
        new Promise<void>((resolve) => tcp.close(() => resolve())),
      ]);
    },
  };
}

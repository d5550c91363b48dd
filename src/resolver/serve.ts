// Serves one namespace's resolver sockets with an Answerer. UDP: one reply per
// query, to whoever sent it, with a bound on queries in flight. TCP: a bound on
// open connections; each connection is its own small state machine
// (tcp-connection.ts). Nothing a client sends can throw out of here, and an error
// on one socket never touches another.
import type dgram from 'node:dgram';
import type net from 'node:net';
import { type TcpCounters, type TcpLimits, serveConnection } from './tcp-connection.js';
import type { Answerer, Outcome, Query, Reply, Transport } from './types.js';

export interface ServeLimits extends TcpLimits {
  /**
   * Open TCP connections per namespace; more are closed on accept. A slot is free
   * again as soon as our side has closed its socket, whatever the client does.
   */
  readonly maxTcpConnections: number;
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

export interface ServeCounters extends TcpCounters {
  readonly queries: Record<Transport, number>;
  /** Replies by outcome; an outcome not seen yet is absent. */
  readonly outcomes: Partial<Record<Outcome, number>>;
  /** UDP queries dropped because too many were in flight. */
  udpOverload: number;
  /** TCP connections accepted. */
  tcpConnections: number;
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
  const answerTcp = (bytes: Buffer): Reply | Promise<Reply> => answer({ bytes, transport: 'tcp', netns });
  tcp.on('connection', (socket) => {
    counters.tcpConnections++;
    open.add(socket);
    socket.on('close', () => open.delete(socket));
    serveConnection(socket, answerTcp, limits, counters);
  });

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

// UDP exchanges with an upstream over a few long-lived connected sockets. A fresh
// socket per forwarded query (create, connect, close) cost ~75 µs of the event
// loop here, a third of the resolver's time at 10 % unknown names. The sockets
// are retired after a number of queries, so the source port keeps changing, and
// each query still gets a random ID and must come back with its question.
import { randomInt } from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';
import type { Upstream } from './types.js';

export type Exchange = (message: Buffer, upstream: Upstream, timeoutMs: number, accept: (reply: Buffer) => boolean) => Promise<Buffer | null>;

export interface PoolOptions {
  /** Sockets per upstream, used in turn. */
  readonly sockets?: number;
  /** Queries a socket carries before it is replaced by one on a new port. */
  readonly maxUses?: number;
}

interface Waiter {
  readonly accept: (reply: Buffer) => boolean;
  readonly resolve: (reply: Buffer | null) => void;
  readonly timer: NodeJS.Timeout;
}

interface Pooled {
  readonly socket: dgram.Socket;
  readonly waiting: Map<number, Waiter>;
  /** Sends waiting for connect() to finish (a connecting socket refuses them). */
  queued: (() => void)[] | null;
  uses: number;
  retired: boolean;
}

export interface UpstreamPool {
  readonly exchange: Exchange;
  /** Sockets open now (for tests and metrics). */
  readonly open: () => number;
  close(): void;
}

export function createUpstreamPool(options: PoolOptions = {}): UpstreamPool {
  const size = options.sockets ?? 8;
  const maxUses = options.maxUses ?? 1000;
  const pools = new Map<string, { slots: (Pooled | undefined)[]; next: number }>();
  let open = 0;

  const settle = (entry: Pooled, id: number, reply: Buffer | null) => {
    const waiter = entry.waiting.get(id);
    if (waiter === undefined) return;
    entry.waiting.delete(id);
    clearTimeout(waiter.timer);
    waiter.resolve(reply);
    if (entry.retired && entry.waiting.size === 0) closeSocket(entry);
  };
  const closeSocket = (entry: Pooled) => {
    entry.retired = true;
    try {
      entry.socket.close();
      open--;
    } catch {
      // already closed
    }
  };
  const retire = (entry: Pooled) => {
    entry.retired = true;
    if (entry.waiting.size === 0) closeSocket(entry);
  };

  const fresh = (upstream: Upstream): Pooled => {
    const socket = dgram.createSocket(net.isIPv6(upstream.address.split('%')[0]!) ? 'udp6' : 'udp4');
    const entry: Pooled = { socket, waiting: new Map(), queued: [], uses: 0, retired: false };
    open++;
    socket.unref(); // idle upstream sockets never keep the process alive
    socket.on('message', (reply) => {
      if (reply.length < 2) return;
      const id = reply.readUInt16BE(0);
      const waiter = entry.waiting.get(id);
      if (waiter !== undefined && waiter.accept(reply)) settle(entry, id, reply);
    });
    // On a connected socket an ICMP error (port unreachable) fails every query on it:
    // the upstream is not answering. The socket is replaced for the next ones.
    socket.on('error', () => {
      retire(entry);
      for (const id of [...entry.waiting.keys()]) settle(entry, id, null);
    });
    socket.connect(upstream.port, upstream.address, () => {
      const queued = entry.queued ?? [];
      entry.queued = null;
      for (const send of queued) send();
    });
    return entry;
  };

  const pick = (upstream: Upstream): Pooled => {
    const key = `${upstream.address}#${upstream.port}`;
    let pool = pools.get(key);
    if (pool === undefined) pools.set(key, (pool = { slots: new Array(size).fill(undefined), next: 0 }));
    const i = pool.next;
    pool.next = (i + 1) % size;
    let entry = pool.slots[i];
    if (entry === undefined || entry.retired || entry.uses >= maxUses) {
      if (entry !== undefined && !entry.retired) retire(entry);
      entry = fresh(upstream);
      pool.slots[i] = entry;
    }
    entry.uses++;
    return entry;
  };

  const exchange: Exchange = (message, upstream, timeoutMs, accept) =>
    new Promise((resolve) => {
      let entry: Pooled;
      try {
        entry = pick(upstream);
      } catch {
        resolve(null);
        return;
      }
      // The caller chose a random ID; two queries in flight on one socket must differ.
      let id = message.readUInt16BE(0);
      while (entry.waiting.has(id)) id = randomInt(0, 0x10000);
      message.writeUInt16BE(id, 0);
      const timer = setTimeout(() => settle(entry, id, null), timeoutMs);
      entry.waiting.set(id, { accept, resolve, timer });
      const send = () => {
        try {
          entry.socket.send(message, (error) => {
            if (error) settle(entry, id, null);
          });
        } catch {
          settle(entry, id, null);
        }
      };
      if (entry.queued === null) send();
      else entry.queued.push(send);
    });

  return {
    exchange,
    open: () => open,
    close() {
      for (const pool of pools.values()) {
        for (const entry of pool.slots) {
          if (entry === undefined) continue;
          for (const id of [...entry.waiting.keys()]) settle(entry, id, null);
          if (!entry.retired) closeSocket(entry);
        }
      }
      pools.clear();
    },
  };
}

// A node's presence in the cluster (SPEC §6): PREFIX/v1/live/NODE under a lease
// (TTL 10 s by default), and the node's probe verdicts as PREFIX/v1/health/TASK
// bound to the same lease, so a node that dies takes both with it once the
// lease runs out. etcd3's Lease sends a keepalive every TTL/3 (as etcd's Go
// client does) and reports it `lost` when etcd says it expired or 2 × TTL pass
// without one answered; then a new lease is granted and every key put again.
// A clean stop only stops the keepalive: an agent restarted within the TTL
// moves the keys to its own lease and other nodes never see the node leave.
import type { Etcd3, Lease } from 'etcd3';
import { healthKey, liveKey } from './layout.js';
import { type SharedHealth, backoffMs, healthValue } from './view.js';
import type { Timers } from './watch.js';

export const DEFAULT_LEASE_TTL_SECONDS = 10;

export type MembershipEvent =
  | { readonly kind: 'held'; readonly lease: string }
  | { readonly kind: 'lost'; readonly error: string }
  | { readonly kind: 'grant-failed'; readonly error: string }
  | { readonly kind: 'write-failed'; readonly error: string };

export interface MembershipOptions {
  readonly client: Etcd3;
  readonly prefix: string;
  readonly node: string;
  readonly ttlSeconds?: number;
  readonly timers?: Timers;
  readonly onEvent?: (event: MembershipEvent) => void;
}

export interface Membership {
  /** The local tasks' verdicts now; what changed is written under the lease, vanished tasks deleted. */
  publish(health: ReadonlyMap<string, SharedHealth>): void;
  /** Stops the keepalive without revoking: the keys go when the TTL runs out. */
  stop(): void;
}

type State =
  | { readonly state: 'granting' }
  | { readonly state: 'waiting'; readonly cancel: () => void }
  | { readonly state: 'held'; readonly lease: Lease }
  | { readonly state: 'stopped' };

const RETRY = { initialMs: 250, maxMs: 5_000 };

const describe = (error: unknown): string => (error instanceof Error ? error.message : String(error));

export function joinCluster(options: MembershipOptions): Membership {
  const { client, prefix, node } = options;
  const ttl = options.ttlSeconds ?? DEFAULT_LEASE_TTL_SECONDS;
  const timers: Timers = options.timers ?? { now: () => Date.now(), setTimer: (fn, ms) => { const t = setTimeout(fn, ms); return () => clearTimeout(t); } };
  const report = options.onEvent ?? (() => {});
  let state: State = { state: 'granting' };
  const current = (): State => state;

  /** key → value: what etcd should hold under the lease. */
  const desired = new Map<string, string>();
  /** What this lease holds now, as far as this agent wrote it. */
  let written = new Map<string, string>();
  let writing = false;
  let retryWrite: (() => void) | undefined;
  let writeFailures = 0;

  const grant = async (attempt: number): Promise<void> => {
    state = { state: 'granting' };
    const lease = client.lease(ttl);
    lease.on('lost', (error: unknown) => {
      const now = current();
      if (now.state !== 'held' || now.lease !== lease) return;
      report({ kind: 'lost', error: describe(error) });
      written = new Map();
      void grant(0);
    });
    let id: string;
    try {
      id = String(await lease.grant());
    } catch (error) {
      lease.release();
      if (current().state !== 'granting') return;
      report({ kind: 'grant-failed', error: describe(error) });
      const cancel = timers.setTimer(() => {
        if (current().state === 'waiting') void grant(attempt + 1);
      }, backoffMs(attempt, RETRY));
      state = { state: 'waiting', cancel };
      return;
    }
    if (current().state !== 'granting') {
      lease.release();
      return;
    }
    state = { state: 'held', lease };
    report({ kind: 'held', lease: id });
    void write();
  };

  /** One writer: puts what differs, deletes what vanished, and goes again while something changed meanwhile. */
  const write = async (): Promise<void> => {
    if (writing) return;
    writing = true;
    try {
      for (;;) {
        const now = current();
        if (now.state !== 'held') return;
        const puts = [...desired].filter(([key, value]) => written.get(key) !== value);
        const deletes = [...written.keys()].filter((key) => !desired.has(key));
        if (puts.length === 0 && deletes.length === 0) return;
        // A lease lost meanwhile starts a fresh map: what lands here afterwards counts for nothing.
        const target = written;
        try {
          await Promise.all([
            ...puts.map(async ([key, value]) => {
              await now.lease.put(key).value(value).exec();
              target.set(key, value);
            }),
            ...deletes.map(async (key) => {
              await client.delete().key(key).exec();
              target.delete(key);
            }),
          ]);
          writeFailures = 0;
        } catch (error) {
          if (current() !== now) continue; // the lease went meanwhile: the next one gets everything
          report({ kind: 'write-failed', error: describe(error) });
          retryWrite?.();
          retryWrite = timers.setTimer(() => {
            retryWrite = undefined;
            void write();
          }, backoffMs(writeFailures++, RETRY));
          return;
        }
      }
    } finally {
      writing = false;
    }
  };

  desired.set(liveKey(prefix, node), JSON.stringify({ node, since: new Date(timers.now()).toISOString() }));
  void grant(0);

  return {
    publish(health) {
      const live = liveKey(prefix, node);
      for (const key of [...desired.keys()]) if (key !== live) desired.delete(key);
      for (const [task, verdict] of health) desired.set(healthKey(prefix, task), healthValue(verdict));
      void write();
    },
    stop() {
      const was = state;
      state = { state: 'stopped' };
      retryWrite?.();
      if (was.state === 'waiting') was.cancel();
      if (was.state === 'held') was.lease.release();
    },
  };
}

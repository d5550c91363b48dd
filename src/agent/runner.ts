// When the agent syncs: kube-proxy's bounded-frequency runner
// (pkg/util/async/bounded_frequency_runner.go), reshaped for vipmesh's two kinds
// of pass (SPEC §5 "When to sync").
//
// - Requests coalesce into one pending slot; a full request upgrades a queued
//   changed one, and the slot remembers when its oldest request was made.
// - One pass at a time: requests made during a pass wait for the next one.
// - A token bucket (one token per minInterval, at most `burst`) spaces pass
//   starts, so a burst of events costs at most `burst` passes back to back.
// - A full pass (reads every namespace, repairs drift) is due maxInterval after
//   the last one started, requested or not; a pass that runs while one is due is
//   full. The first pass is full.
// - A failed pass is retried after 1 s, 2 s, 4 s … (at most maxInterval) and the
//   next pass, whatever starts it, is full. As in kube-proxy, a new request does
//   not wait out the backoff (the token bucket still spaces it): one namespace
//   that keeps failing must not hold back every other namespace's changes.

import type { Clock } from './clock.js';

export type PassKind = 'full' | 'changed';

/** What the runner needs to know of a pass; a pass may return more (a subtype). */
export type PassOutcome = { readonly status: 'ok' } | { readonly status: 'failed'; readonly error: string };

/**
 * One pass. The signal aborts when the runner stops: the pass should stop between
 * namespaces and resolve (not reject). A rejection counts as a failed pass.
 */
export type Pass = (kind: PassKind, signal: AbortSignal) => Promise<PassOutcome>;

export interface RunnerOptions {
  readonly pass: Pass;
  readonly clock: Clock;
  /** --min-sync-period: the token bucket refills one pass per this many ms (0: no limit). */
  readonly minIntervalMs: number;
  /** --sync-period: a full pass at least this often; also the longest retry backoff. */
  readonly maxIntervalMs: number;
  /** Passes allowed back to back (kube-proxy: 2). */
  readonly burst?: number;
  /** The first retry's delay after a failure; it doubles up to maxIntervalMs. */
  readonly firstRetryMs?: number;
}

export type RunnerActivity =
  | { readonly state: 'unstarted' }
  | { readonly state: 'waiting'; readonly nextPassAt: number }
  | { readonly state: 'running'; readonly kind: PassKind; readonly since: number }
  | { readonly state: 'stopping'; readonly since: number }
  | { readonly state: 'stopped' };

export interface RunnerStatus {
  readonly activity: RunnerActivity;
  /** When the last successful pass ended. */
  readonly lastSuccess: number | undefined;
  /**
   * When the oldest work not yet done successfully was asked for: a request no
   * pass has served yet, or one a failed pass took (for a failed pass nobody
   * asked for, the time it started). Undefined when nothing is owed.
   */
  readonly pendingSince: number | undefined;
  /** Failed passes in a row, and when the next retry is due. */
  readonly failing: { readonly count: number; readonly retryAt: number } | undefined;
}

export interface SyncRunner {
  /** Starts the schedule: the first (full) pass runs at once. */
  start(): void;
  /** Asks for a pass of at least this kind. Ignored once stopping. */
  request(kind: PassKind): void;
  status(): RunnerStatus;
  /** Aborts the pass in flight, if any, and resolves once it has finished; no pass starts after. */
  stop(): Promise<void>;
}

interface Demand {
  readonly kind: PassKind;
  readonly since: number;
}

interface Failing {
  readonly count: number;
  readonly retryAt: number;
  readonly owedSince: number;
}

type Phase =
  | { readonly state: 'unstarted' }
  | { readonly state: 'waiting'; readonly at: number; readonly cancel: () => void }
  | {
      readonly state: 'running';
      readonly kind: PassKind;
      readonly since: number;
      /** The requests this pass serves (taken from the slot as it started). */
      readonly serving: Demand | undefined;
      readonly abort: AbortController;
      readonly done: Promise<void>;
    }
  | { readonly state: 'stopping'; readonly since: number; readonly done: Promise<void> }
  | { readonly state: 'stopped' };

// Fractions of a token or a millisecond left by floating point must not turn
// into a timer that fires, finds itself a hair early, and sets another.
const EPSILON = 1e-6;

const merge = (a: Demand | undefined, b: Demand): Demand =>
  a === undefined ? b : { kind: a.kind === 'full' || b.kind === 'full' ? 'full' : 'changed', since: Math.min(a.since, b.since) };

const describe = (error: unknown): string => (error instanceof Error ? error.message : String(error));

function checkOptions(options: RunnerOptions): void {
  const { minIntervalMs, maxIntervalMs, burst = 2, firstRetryMs = 1000 } = options;
  if (!Number.isFinite(maxIntervalMs) || maxIntervalMs <= 0) throw new RangeError(`maxIntervalMs must be a positive number of ms, not ${maxIntervalMs}`);
  if (!(minIntervalMs >= 0 && minIntervalMs <= maxIntervalMs)) throw new RangeError(`minIntervalMs must lie in 0…${maxIntervalMs} ms, not ${minIntervalMs}`);
  if (!Number.isInteger(burst) || burst < 1) throw new RangeError(`burst must be a whole number ≥ 1, not ${burst}`);
  if (!Number.isFinite(firstRetryMs) || firstRetryMs <= 0) throw new RangeError(`firstRetryMs must be a positive number of ms, not ${firstRetryMs}`);
}

export function createSyncRunner(options: RunnerOptions): SyncRunner {
  checkOptions(options);
  const { pass, clock, minIntervalMs, maxIntervalMs, burst = 2, firstRetryMs = 1000 } = options;

  let phase: Phase = { state: 'unstarted' };
  let queued: Demand | undefined;
  let failing: Failing | undefined;
  let lastSuccess: number | undefined;
  let lastFullStart: number | undefined;
  let bucket = { tokens: burst, at: clock.now() };

  const tokensAt = (t: number): number =>
    minIntervalMs === 0 ? burst : Math.min(burst, bucket.tokens + (t - bucket.at) / minIntervalMs);
  const tokenAt = (t: number): number => {
    const tokens = tokensAt(t);
    return tokens >= 1 - EPSILON ? t : t + (1 - tokens) * minIntervalMs;
  };
  const fullDueAt = (): number => (lastFullStart === undefined ? -Infinity : lastFullStart + maxIntervalMs);
  const dueAt = (now: number): number =>
    Math.min(queued === undefined ? Infinity : now, failing?.retryAt ?? Infinity, fullDueAt());
  const startAt = (now: number): number => Math.max(dueAt(now), tokenAt(now));

  function schedule(): void {
    if (phase.state === 'waiting') phase.cancel();
    const now = clock.now();
    const at = startAt(now);
    phase = { state: 'waiting', at, cancel: clock.setTimer(fire, Math.max(0, at - now)) };
  }

  function fire(): void {
    if (phase.state !== 'waiting') return;
    const now = clock.now();
    // Real timers may fire a little early; try again rather than start before time.
    if (startAt(now) > now + EPSILON) schedule();
    else begin(now);
  }

  function begin(now: number): void {
    const full = failing !== undefined || queued?.kind === 'full' || fullDueAt() <= now + EPSILON;
    const kind: PassKind = full ? 'full' : 'changed';
    bucket = { tokens: tokensAt(now) - 1, at: now };
    if (kind === 'full') lastFullStart = now;
    const serving = queued;
    queued = undefined;
    const abort = new AbortController();
    // The pass starts on the next microtask, once the phase says it runs: a pass
    // that asks for status() or request()s at once sees the truth.
    const done = Promise.resolve()
      .then(() => settle(kind, abort.signal))
      .then((outcome) => finish(now, serving, outcome));
    phase = { state: 'running', kind, since: now, serving, abort, done };
  }

  async function settle(kind: PassKind, signal: AbortSignal): Promise<PassOutcome> {
    try {
      return await pass(kind, signal);
    } catch (error) {
      return { status: 'failed', error: describe(error) };
    }
  }

  function finish(started: number, serving: Demand | undefined, outcome: PassOutcome): void {
    const now = clock.now();
    if (outcome.status === 'ok') {
      lastSuccess = now;
      failing = undefined;
    } else {
      const count = (failing?.count ?? 0) + 1;
      const delay = Math.min(firstRetryMs * 2 ** (count - 1), maxIntervalMs);
      const owedSince = Math.min(failing?.owedSince ?? Infinity, serving?.since ?? started);
      failing = { count, retryAt: now + delay, owedSince };
    }
    if (phase.state === 'running') schedule();
  }

  function activity(): RunnerActivity {
    switch (phase.state) {
      case 'waiting':
        return { state: 'waiting', nextPassAt: phase.at };
      case 'running':
        return { state: 'running', kind: phase.kind, since: phase.since };
      case 'stopping':
        return { state: 'stopping', since: phase.since };
      default:
        return { state: phase.state };
    }
  }

  return {
    start() {
      if (phase.state !== 'unstarted') return;
      bucket = { tokens: burst, at: clock.now() };
      schedule();
    },

    request(kind) {
      if (phase.state === 'stopping' || phase.state === 'stopped') return;
      queued = merge(queued, { kind, since: clock.now() });
      if (phase.state === 'waiting') schedule();
    },

    status() {
      const serving = phase.state === 'running' ? phase.serving?.since : undefined;
      const owed = [queued?.since, failing?.owedSince, serving].filter((t): t is number => t !== undefined);
      return {
        activity: activity(),
        lastSuccess,
        pendingSince: owed.length === 0 ? undefined : Math.min(...owed),
        failing: failing === undefined ? undefined : { count: failing.count, retryAt: failing.retryAt },
      };
    },

    async stop() {
      switch (phase.state) {
        case 'unstarted':
        case 'stopped':
          phase = { state: 'stopped' };
          return;
        case 'waiting':
          phase.cancel();
          phase = { state: 'stopped' };
          return;
        case 'running': {
          const { abort, done } = phase;
          phase = { state: 'stopping', since: clock.now(), done };
          abort.abort(new Error('the agent is stopping'));
          await done;
          phase = { state: 'stopped' };
          return;
        }
        case 'stopping':
          await phase.done;
          return;
      }
    },
  };
}

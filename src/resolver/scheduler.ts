// When the resolver service syncs: one run at a time, requests that arrive
// meanwhile share the next run (which sees the latest input), and one timer for
// the work the service wants done later (a retry, the next check that its
// namespaces are still there). Every sync goes through here, whoever asks.

export interface Scheduler<T> {
  /** A run soon; resolves with the result of the first run that starts after this call. */
  request(): Promise<T>;
  /** A run no later than `ms` from now; the earliest of the wakes asked since the last run wins. */
  wake(ms: number): void;
  /** No more timed runs; resolves once the run in progress (and any already queued) is over. */
  stop(): Promise<void>;
}

type Timer =
  | { readonly state: 'idle' }
  | { readonly state: 'armed'; readonly at: number; readonly handle: NodeJS.Timeout }
  | { readonly state: 'stopped' };

export function createScheduler<T>(work: () => Promise<T>): Scheduler<T> {
  let tail: Promise<unknown> = Promise.resolve();
  let queued: Promise<T> | null = null;
  let timer: Timer = { state: 'idle' };

  const disarm = (): void => {
    if (timer.state !== 'armed') return;
    clearTimeout(timer.handle);
    timer = { state: 'idle' };
  };

  const request = (): Promise<T> => {
    if (queued !== null) return queued;
    const run = tail.then(() => {
      queued = null;
      // The run decides when it wants the next one (it calls wake): a wake asked
      // before it started is answered by it.
      disarm();
      return work();
    });
    queued = run;
    tail = run.catch(() => {});
    return run;
  };

  return {
    request,
    wake(ms) {
      if (timer.state === 'stopped') return;
      const at = Date.now() + Math.max(0, ms);
      if (timer.state === 'armed' && timer.at <= at) return;
      disarm();
      const handle = setTimeout(() => {
        timer = { state: 'idle' };
        // A failed timed run has nobody to tell; the run reports through its own channels.
        request().catch(() => {});
      }, Math.max(0, ms));
      // The sockets keep a resolver alive, not a pending retry.
      handle.unref();
      timer = { state: 'armed', at, handle };
    },
    async stop() {
      disarm();
      timer = { state: 'stopped' };
      await tail;
    },
  };
}

/**
 * Drives a generator that yields between small pieces of work, giving the event
 * loop a turn (setImmediate: after pending I/O, so queries are answered) whenever
 * `budgetMs` has been spent. Long pure work (building a big record snapshot,
 * decoding a big catalog) thus never holds the resolver's loop for long.
 */
export async function runInSteps<T>(steps: Generator<void, T, void>, budgetMs = 8): Promise<T> {
  for (;;) {
    const until = performance.now() + budgetMs;
    for (;;) {
      const step = steps.next();
      if (step.done === true) return step.value;
      if (performance.now() >= until) break;
    }
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

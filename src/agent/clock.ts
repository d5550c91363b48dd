// Time as the agent's schedulers see it, injected so that tests drive it by hand.

export interface Clock {
  /** Milliseconds since the epoch; never goes backwards. */
  now(): number;
  /** Calls fn once, ms from now; the returned function cancels it. */
  setTimer(fn: () => void, ms: number): () => void;
}

// performance.now() is monotonic: an NTP step must not fire the periodic pass
// early or hold it back. Anchored at the process's start it still reads as
// epoch time for /healthz and the metrics, drifting only by what NTP slews.
export const systemClock: Clock = {
  now: () => performance.timeOrigin + performance.now(),
  setTimer(fn, ms) {
    const timer = setTimeout(fn, ms);
    return () => clearTimeout(timer);
  },
};

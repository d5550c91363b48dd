// A burst of file-system events collapsed into one call. A tool that rewrites a
// file makes several events (truncate, write, write, close; or create, write,
// rename), and a reader woken by the first would read a half-written file.
// Trailing edge: the call comes once the events have stopped for `quietMs`,
// but never later than `maxWaitMs` after the first, so a file that is written
// without pause still gets read.
import type { Clock } from './clock.js';

export interface Debounce {
  /** Something happened: (re)start the quiet period. */
  poke(): void;
  /** Whether a call is due (poked, not yet fired). */
  readonly pending: boolean;
  /** Forgets a pending call; a later poke starts afresh. */
  cancel(): void;
}

export function createDebounce(clock: Clock, quietMs: number, maxWaitMs: number, fire: () => void): Debounce {
  if (!(quietMs >= 0 && maxWaitMs >= quietMs)) throw new RangeError(`debounce wants 0 ≤ quietMs ≤ maxWaitMs, not ${quietMs} and ${maxWaitMs}`);
  let armed: { readonly first: number; readonly cancel: () => void } | undefined;

  const due = (): void => {
    armed = undefined;
    fire();
  };

  return {
    poke() {
      const now = clock.now();
      const first = armed?.first ?? now;
      armed?.cancel();
      const at = Math.min(now + quietMs, first + maxWaitMs);
      armed = { first, cancel: clock.setTimer(due, Math.max(0, at - now)) };
    },
    get pending() {
      return armed !== undefined;
    },
    cancel() {
      armed?.cancel();
      armed = undefined;
    },
  };
}

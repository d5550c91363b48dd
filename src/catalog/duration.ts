// Durations in the catalog: a bare number means seconds; a string is one or
// more <number><unit> parts (ms, s, m, h), as Go and Docker write them.

export type DurationResult = { ok: true; ms: number } | { ok: false; message: string };

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const WHOLE = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h))+$/;
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;

/** Node timers fire at once (with a warning) past this, so longer periods could never be honoured. */
export const MAX_DURATION_MS = 2_147_483_647;

const FORMAT = 'must be a duration such as 500ms, 2s, 1.5s, 1m30s or a number of seconds';

export function parseDuration(value: unknown): DurationResult {
  let ms: number;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return { ok: false, message: FORMAT };
    ms = value * 1000;
  } else if (typeof value === 'string') {
    if (!WHOLE.test(value)) return { ok: false, message: FORMAT };
    ms = 0;
    for (const [, amount, unit] of value.matchAll(PART)) {
      ms += Number(amount) * (UNIT_MS[unit ?? ''] ?? 0);
    }
  } else {
    return { ok: false, message: FORMAT };
  }
  // Float arithmetic (1.1s → 1100.0000000000002) must not make a sane value fail the whole-ms test.
  const rounded = Math.round(ms * 1e6) / 1e6;
  if (rounded <= 0) return { ok: false, message: 'must be longer than zero' };
  if (!Number.isInteger(rounded)) return { ok: false, message: 'must be a whole number of milliseconds' };
  if (rounded > MAX_DURATION_MS) return { ok: false, message: `must be at most ${MAX_DURATION_MS}ms (about 24.8 days)` };
  return { ok: true, ms: rounded };
}

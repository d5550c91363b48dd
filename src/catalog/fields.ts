// Field-level schemas shared by the entry schemas in schema.ts. Each carries
// its own plain-English message, so zod's wording never reaches users.
import { z } from 'zod';
import { parseDuration } from './duration.js';
import { parseCidr, parseIp } from './ip.js';
import { fallbackMessage } from './issues.js';
import { emptyNames } from './names.js';
import { normalizeNetns } from './netns.js';
import { quoted } from './problems.js';
import type { Names } from './types.js';

type Says = { error: (issue: { readonly input?: unknown }) => string };

/** A message for a wrong value, and "is required" when the value is missing. */
export function says(message: string): Says {
  return saysOf(() => message);
}

/** The same, for a message that names the value it rejects. */
export function saysOf(message: (input: unknown) => string): Says {
  return { error: (issue) => (issue.input === undefined ? 'is required' : message(issue.input)) };
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

export function wholeNumber(min: number, max?: number) {
  const message = max === undefined
    ? `must be a whole number of at least ${min}`
    : `must be a whole number from ${min} to ${max}`;
  const base = z.number(says(message)).int(message).min(min, message);
  return max === undefined ? base : base.max(max, message);
}

/** What every enum field says of a value outside its list (the fast readers in plain-entries.ts leave such values to zod). */
export function notOneOf(value: unknown, values: readonly string[]): string {
  return `${quoted(value)} is not one of: ${values.join(', ')}`;
}

export function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values, saysOf((input) => notOneOf(input, values)));
}

export const portNumber = wholeNumber(1, 65535);
export const seconds = wholeNumber(0);
/** The kernel holds persistence as a 32-bit count of jiffies: 31 days fits at any HZ up to 1000. */
export const persistenceSeconds = wholeNumber(0, 31 * 86_400);

const ABSOLUTE = 'must be an absolute path such as /run/netns/name';

export const isAbsolutePath = (value: unknown): value is string =>
  typeof value === 'string' && value.startsWith('/') && !value.includes('\0');

/** A namespace path, in the one spelling netns.ts gives it. */
export const netnsPath = z.string(says(ABSOLUTE)).refine(isAbsolutePath, ABSOLUTE).transform(normalizeNetns);

export const address = z.string(says('must be an IP address such as 10.0.1.2')).transform((text, ctx) => {
  const parsed = parseIp(text);
  if (parsed.ok) return parsed.value.text;
  ctx.addIssue({ code: 'custom', message: parsed.message });
  return z.NEVER;
});

export const subnet = z.string(says('must be a CIDR such as 10.0.1.0/24')).transform((text, ctx) => {
  const parsed = parseCidr(text);
  if (parsed.ok) return parsed.value;
  ctx.addIssue({ code: 'custom', message: parsed.message });
  return z.NEVER;
});

export function duration(defaultMs: number) {
  return z.unknown().transform((value, ctx) => {
    const parsed = parseDuration(value);
    if (parsed.ok) return parsed.ms;
    ctx.addIssue({ code: 'custom', message: parsed.message });
    return z.NEVER;
  }).default(defaultMs);
}

export const nameText = (what: string) => z.string(says(`must be ${what} name`));

/**
 * A map from names to `value`s, as a Names record (names.ts). Not z.record,
 * which drops a `__proto__` key without a word: the entry must stay, so that
 * the checks can say there is no network of that name.
 */
export function nameMap<T extends z.ZodType>(what: string, value: T) {
  return z.unknown().transform((input, ctx): Names<z.output<T>> => {
    if (!isRecord(input)) {
      ctx.addIssue({ code: 'custom', message: input === undefined ? 'is required' : `must be a map of ${what}` });
      return z.NEVER;
    }
    const out = emptyNames<z.output<T>>();
    for (const key of Object.keys(input)) {
      const parsed = value.safeParse(input[key], fallbackMessage);
      if (parsed.success) out[key] = parsed.data;
      else {
        for (const issue of parsed.error.issues) {
          // An unknown field of a map value is named as everywhere else, not left to the fallback wording.
          const fields = issue.code === 'unrecognized_keys' ? issue.keys : [];
          for (const field of fields) ctx.addIssue({ code: 'custom', message: `unknown field ${quoted(field)}`, path: [key, ...issue.path, field] });
          if (fields.length === 0) ctx.addIssue({ code: 'custom', message: issue.message, path: [key, ...issue.path] });
        }
      }
    }
    return out as Names<z.output<T>>;
  });
}

/** Several mutually exclusive keys: counted on the raw input so the rule is reported alongside field errors. */
export function exactlyOne(keys: readonly string[], none: string) {
  return (value: unknown, ctx: z.RefinementCtx): void => {
    if (!isRecord(value)) return;
    const given = keys.filter((k) => value[k] !== undefined);
    if (given.length === 0) ctx.addIssue({ code: 'custom', message: none });
    if (given.length > 1) ctx.addIssue({ code: 'custom', message: `has ${given.join(' and ')}; give only one` });
  };
}
export const whenRecord = { when: (payload: { value: unknown }) => isRecord(payload.value) };

// The plain entries big catalogs are made of (a task with a service, a node, a
// netns and dotted-quad addresses; a service with VIPs and simple ports), read
// without zod. A zod parse costs microseconds even for a valid entry, which is
// most of the validation time of a catalog of 100 000 tasks. Each reader here
// accepts only entries its schema in schema.ts accepts, and returns exactly what
// that schema returns; anything else (a wrong field, a pid, a healthcheck, an
// IPv6 address) gets `undefined` and goes through zod, which says what is wrong.
// test/unit/catalog/plain-entries.test.ts holds the two to the same answers.
import { isAbsolutePath, isRecord } from './fields.js';
import { dottedQuadValue, parseIp } from './ip.js';
import { emptyNames, noNames } from './names.js';
import { normalizeNetns } from './netns.js';
import { STATE, type ServiceInput } from './schema.js';
import {
  DEFAULT_DRAIN_TIMEOUT_S, ENDPOINT_MODES, PROTOCOLS, PUBLISH_MODES, SCHEDULERS, TASK_HEALTHS,
  type LoadBalancing, type Names, type Port, type Scheduler, type Task,
} from './types.js';

type Raw = Record<string, unknown>;

/**
 * A plain-data map whose own keys are all `allowed` and hold defined values: what a
 * strict zod object reads the same whichever way it looks (no symbols, no
 * `__proto__`: zod's strict objects report it, and its name maps keep it for
 * the checks to refuse).
 */
function plainRecord(value: unknown, allowed?: ReadonlySet<string>): value is Raw {
  if (!isRecord(value) || Object.getOwnPropertySymbols(value).length > 0) return false;
  // for…in, not Object.keys(): no array per entry. It also lists inherited keys, which only makes it stricter.
  for (const key in value) {
    if (key === '__proto__' || value[key] === undefined) return false;
    if (allowed !== undefined && !allowed.has(key)) return false;
  }
  return true;
}

/** zod's `.int()` means a safe integer. */
const wholeIn = (value: unknown, min: number, max: number): value is number =>
  Number.isSafeInteger(value) && (value as number) >= min && (value as number) <= max;

/** fields.nameMap(…, address): canonical address text by name. */
function addressMap(value: unknown): Names<string> | undefined {
  if (!plainRecord(value)) return undefined;
  const out = emptyNames<string>();
  for (const key of Object.keys(value)) {
    const text = value[key];
    if (typeof text !== 'string') return undefined;
    // A dotted quad is its own canonical text (ip.ts); anything else as the schema reads it.
    if (dottedQuadValue(text) !== undefined) {
      out[key] = text;
      continue;
    }
    const parsed = parseIp(text);
    if (!parsed.ok) return undefined;
    out[key] = parsed.value.text;
  }
  return out as Names<string>;
}

/** z.array(z.string()): a copy. */
function strings(value: unknown): string[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const out: string[] = [];
  // Indexed, not every(): a hole is an element zod reads as undefined.
  for (let i = 0; i < value.length; i++) {
    const item: unknown = value[i];
    if (typeof item !== 'string') return undefined;
    out.push(item);
  }
  return out;
}

/** fields.oneOf(values), on the same list from types.ts; a value outside it is left to zod to name. */
function oneOf<const T extends string>(value: unknown, values: readonly T[], fallback: T): T | undefined {
  if (value === undefined) return fallback;
  return values.includes(value as T) ? (value as T) : undefined;
}

const TASK_FIELDS: ReadonlySet<string> = new Set(['service', 'node', 'netns', 'pid', 'addresses', 'state', 'health', 'weight']);

/** schema.taskSchema's output for a plain task (netns, no pid), or undefined. */
export function plainTask(raw: unknown): Omit<Task, 'name'> | undefined {
  return readTask(raw, undefined);
}

/** The same, named: `{ name, ...plainTask(raw) }`, built at once. */
export function plainNamedTask(raw: unknown, name: string): Task | undefined {
  return readTask(raw, name) as Task | undefined;
}

function readTask(raw: unknown, name: string | undefined): Omit<Task, 'name'> | Task | undefined {
  if (!plainRecord(raw, TASK_FIELDS)) return undefined;
  const { service, node, pid, state = 'running', weight = 1 } = raw;
  if (service !== undefined && typeof service !== 'string') return undefined;
  if (typeof node !== 'string' || pid !== undefined || !isAbsolutePath(raw.netns)) return undefined;
  const netns = normalizeNetns(raw.netns);
  const addresses = raw.addresses === undefined ? noNames<string>() : addressMap(raw.addresses);
  const health = oneOf(raw.health, TASK_HEALTHS, 'unknown');
  if (addresses === undefined || health === undefined) return undefined;
  if (typeof state !== 'string' || !STATE.test(state) || !wholeIn(weight, 0, 65535)) return undefined;
  // Literals, not a spread of `cond ? {} : {…}`: V8 builds those several times slower.
  if (name === undefined) {
    return service === undefined
      ? { node, netns, addresses, state, health, weight }
      : { service, node, netns, addresses, state, health, weight };
  }
  return service === undefined
    ? { name, node, netns, addresses, state, health, weight }
    : { name, service, node, netns, addresses, state, health, weight };
}

const PORT_FIELDS: ReadonlySet<string> = new Set(['target', 'published', 'protocol', 'mode', 'network']);

function plainPort(raw: unknown): Port | undefined {
  if (!plainRecord(raw, PORT_FIELDS)) return undefined;
  const { target, published, network } = raw;
  const protocol = oneOf(raw.protocol, PROTOCOLS, 'tcp');
  const mode = oneOf(raw.mode, PUBLISH_MODES, 'ingress');
  if (!wholeIn(target, 1, 65535) || !wholeIn(published, 1, 65535) || protocol === undefined || mode === undefined) return undefined;
  if (network !== undefined && typeof network !== 'string') return undefined;
  return network === undefined ? { target, published, protocol, mode } : { target, published, protocol, mode, network };
}

function plainPorts(raw: unknown): Port[] | undefined {
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) return undefined;
  const out: Port[] = [];
  for (let i = 0; i < raw.length; i++) {
    const port = plainPort(raw[i]);
    if (port === undefined) return undefined;
    out.push(port);
  }
  return out;
}

const LB_FIELDS: ReadonlySet<string> = new Set(['scheduler', 'persistence', 'drainTimeout']);
const MAX_PERSISTENCE_S = 31 * 86_400;

function plainLb(raw: unknown): LoadBalancing | undefined {
  if (raw === undefined) return { scheduler: 'rr', persistence: 0, drainTimeout: DEFAULT_DRAIN_TIMEOUT_S };
  if (!plainRecord(raw, LB_FIELDS)) return undefined;
  const scheduler = oneOf<Scheduler>(raw.scheduler, SCHEDULERS, 'rr');
  const { persistence = 0, drainTimeout = DEFAULT_DRAIN_TIMEOUT_S } = raw;
  if (scheduler === undefined || !wholeIn(persistence, 0, MAX_PERSISTENCE_S)) return undefined;
  if (!wholeIn(drainTimeout, 0, Number.MAX_SAFE_INTEGER)) return undefined;
  return { scheduler, persistence, drainTimeout };
}

const SERVICE_FIELDS: ReadonlySet<string> = new Set(['endpointMode', 'vips', 'networks', 'aliases', 'ports', 'lb']);

/** schema.serviceSchema's output for a service without a healthcheck, or undefined. */
export function plainService(raw: unknown): ServiceInput | undefined {
  if (!plainRecord(raw, SERVICE_FIELDS)) return undefined;
  const endpointMode = oneOf(raw.endpointMode, ENDPOINT_MODES, 'vip');
  const vips = raw.vips === undefined ? undefined : addressMap(raw.vips);
  const networks = raw.networks === undefined ? undefined : strings(raw.networks);
  const aliases = raw.aliases === undefined ? [] : strings(raw.aliases);
  const ports = plainPorts(raw.ports);
  const lb = plainLb(raw.lb);
  if (endpointMode === undefined || aliases === undefined || ports === undefined || lb === undefined) return undefined;
  if ((raw.vips !== undefined && vips === undefined) || (raw.networks !== undefined && networks === undefined)) return undefined;
  const service: { -readonly [K in keyof ServiceInput]: ServiceInput[K] } = { endpointMode, aliases, ports, lb };
  if (vips !== undefined) service.vips = vips;
  if (networks !== undefined) service.networks = networks;
  return service;
}

const TOP_FIELDS: ReadonlySet<string> = new Set(['version', 'networks', 'nodes', 'services', 'tasks']);

/** Whether schema.topLevelSchema certainly accepts `raw` (so its pass over every entry can be skipped). */
export function plainTopLevel(raw: Raw): boolean {
  if (raw.version !== 1 || Object.getOwnPropertySymbols(raw).length > 0) return false;
  for (const key of Object.keys(raw)) {
    if (!TOP_FIELDS.has(key)) return false;
    const section = raw[key];
    // z.record(z.string(), z.unknown()): any value, any string key (a symbol key is an error).
    if (key === 'version' || section === null || section === undefined) continue;
    if (!isRecord(section) || Object.getOwnPropertySymbols(section).length > 0) return false;
  }
  return true;
}

// The catalog after the structural pass: every well-formed entry, normalized,
// plus what is known about the malformed ones so the cross-entry checks can
// run on the rest without blaming good entries for references to bad ones.
import type { z } from 'zod';
import { isRecord } from './fields.js';
import { fallbackMessage, problemsFromZod } from './issues.js';
import { noNames } from './names.js';
import { plainNamedTask, plainService } from './plain-entries.js';
import { salvage } from './salvage.js';
import { compareText, joinPath, sortText } from './problems.js';
import {
  networkSchema, nodeSchema, serviceSchema, taskSchema, type SectionName, type ServiceInput,
} from './schema.js';
import type { CatalogProblem, Network, Node, Port, Service, Task } from './types.js';

export interface Section<T> {
  /** Well-formed entries (or salvaged ones, see salvage.ts) in name order. */
  readonly entries: ReadonlyMap<string, T>;
  /** Names whose entry is malformed; references to them are not reported again. */
  readonly broken: ReadonlySet<string>;
  /** The section itself is not a map, so no reference into it can be judged. */
  readonly unreadable: boolean;
  /** The section as written, for quoting a value as its author spelled it. */
  readonly raw: Readonly<Record<string, unknown>>;
  /** Salvaged entries (salvage.ts) → their fields that hold stand-ins, which no check may judge. */
  readonly standIns: ReadonlyMap<string, readonly string[]>;
}

export type Presence = 'ok' | 'broken' | 'missing';

export function presence(section: Section<unknown>, name: string): Presence {
  if (section.entries.has(name)) return 'ok';
  return section.unreadable || section.broken.has(name) ? 'broken' : 'missing';
}

export interface ServiceEntry {
  readonly input: ServiceInput;
  readonly service: Service;
}

export interface Draft {
  readonly networks: Section<Network>;
  readonly nodes: Section<Node>;
  readonly services: Section<ServiceEntry>;
  readonly tasks: Section<Task>;
  /** The ingress network (the first by name if several claim it). */
  readonly ingress: Network | undefined;
  /** A malformed network may be the ingress one, so its absence can't be claimed. */
  readonly ingressUnknown: boolean;
}

/**
 * Each entry parsed by `schema`, then `finish`ed with its name. `plain` reads the
 * common well-formed entry straight to what `finish` would make of the schema's
 * output, only faster (see plain-entries.ts); what it declines, `schema` parses
 * and judges.
 */
function readSection<T, U>(
  raw: Record<string, unknown>, name: SectionName, schema: z.ZodType<T>, problems: CatalogProblem[],
  finish: (key: string, value: T) => U,
  plain: (entry: unknown, key: string) => U | undefined = () => undefined,
): Section<U> {
  const value = raw[name];
  const entries = new Map<string, U>();
  const broken = new Set<string>();
  const standIns = new Map<string, readonly string[]>();
  if (value === undefined || value === null) return { entries, broken, unreadable: false, raw: {}, standIns };
  if (!isRecord(value)) return { entries, broken, unreadable: true, raw: {}, standIns };
  for (const key of sortText(Object.keys(value))) {
    const entry = value[key];
    const quick = plain(entry, key);
    if (quick !== undefined) {
      entries.set(key, quick);
      continue;
    }
    const parsed = schema.safeParse(entry, fallbackMessage);
    if (parsed.success) {
      entries.set(key, finish(key, parsed.data));
      continue;
    }
    problems.push(...problemsFromZod(joinPath(name, key), parsed.error));
    const rebuilt = isRecord(entry) ? salvage(name, entry, parsed.error) : undefined;
    const second = rebuilt === undefined ? undefined : schema.safeParse(rebuilt.entry);
    if (second?.success === true && rebuilt !== undefined) {
      entries.set(key, finish(key, second.data));
      if (rebuilt.standIns.length > 0) standIns.set(key, rebuilt.standIns);
    } else broken.add(key);
  }
  return { entries, broken, unreadable: false, raw: value, standIns };
}

const named = <T>(name: string, value: T): T & { readonly name: string } => ({ name, ...value });

function toService(name: string, input: ServiceInput): Service {
  const vipMode = input.endpointMode === 'vip';
  const vips = vipMode ? input.vips ?? noNames<string>() : noNames<string>();
  const networks = vipMode ? Object.keys(vips) : [...new Set(input.networks ?? [])];
  const service = {
    name, endpointMode: input.endpointMode, vips, networks: networks.sort(compareText),
    aliases: input.aliases, ports: input.ports, lb: input.lb,
  };
  // Two literals, not a spread of `cond ? {} : {…}`, which V8 builds several times slower.
  return input.healthcheck === undefined ? service : { ...service, healthcheck: input.healthcheck };
}

const serviceEntry = (name: string, input: ServiceInput): ServiceEntry => ({ input, service: toService(name, input) });

function plainServiceEntry(entry: unknown, name: string): ServiceEntry | undefined {
  const input = plainService(entry);
  return input === undefined ? undefined : serviceEntry(name, input);
}

export function readDraft(raw: Record<string, unknown>, problems: CatalogProblem[]): Draft {
  const networks = readSection(raw, 'networks', networkSchema, problems, named);
  const services = readSection(raw, 'services', serviceSchema, problems, serviceEntry, plainServiceEntry);
  const ingress = [...networks.entries.values()].find((n) => n.ingress);
  const maybeIngress = networks.unreadable
    || [...networks.broken].some((n) => isRecord(networks.raw[n]) && networks.raw[n].ingress === true);
  return {
    networks,
    nodes: readSection(raw, 'nodes', nodeSchema, problems, named),
    services,
    tasks: readSection(raw, 'tasks', taskSchema, problems, named, plainNamedTask),
    ingress,
    ingressUnknown: ingress === undefined && maybeIngress,
  };
}

/**
 * Ingress-mode ports that take part in the routing mesh. A dnsrr service's
 * ingress port is itself an error, so it makes no further demands.
 */
export function meshPorts(service: Service): { readonly index: number; readonly port: Port }[] {
  if (service.endpointMode !== 'vip') return [];
  return service.ports.flatMap((port, index) => (port.mode === 'ingress' ? [{ index, port }] : []));
}

// The catalog after the structural pass: every well-formed entry, normalized,
// plus what is known about the malformed ones so the cross-entry checks can
// run on the rest without blaming good entries for references to bad ones.
import type { z } from 'zod';
import { isRecord } from './fields.js';
import { fallbackMessage, problemsFromZod } from './issues.js';
import { plainService, plainTask } from './plain-entries.js';
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
 * `plain` reads the common well-formed entry as `schema` would, only faster
 * (see plain-entries.ts); what it declines, `schema` parses and judges.
 */
function readSection<T>(
  raw: Record<string, unknown>, name: SectionName, schema: z.ZodType<T>, problems: CatalogProblem[],
  plain: (entry: unknown) => T | undefined = () => undefined,
): Section<T> & { readonly raw: Record<string, unknown> } {
  const value = raw[name];
  const entries = new Map<string, T>();
  const broken = new Set<string>();
  if (value === undefined || value === null) return { entries, broken, unreadable: false, raw: {} };
  if (!isRecord(value)) return { entries, broken, unreadable: true, raw: {} };
  for (const key of sortText(Object.keys(value))) {
    const entry = value[key];
    const quick = plain(entry);
    if (quick !== undefined) {
      entries.set(key, quick);
      continue;
    }
    const parsed = schema.safeParse(entry, fallbackMessage);
    if (parsed.success) {
      entries.set(key, parsed.data);
      continue;
    }
    problems.push(...problemsFromZod(joinPath(name, key), parsed.error));
    const rebuilt = isRecord(entry) ? salvage(name, entry, parsed.error) : undefined;
    const second = rebuilt === undefined ? undefined : schema.safeParse(rebuilt);
    if (second?.success === true) entries.set(key, second.data);
    else broken.add(key);
  }
  return { entries, broken, unreadable: false, raw: value };
}

function withNames<T>(section: Section<T>): Section<T & { readonly name: string }> {
  const entries = new Map([...section.entries].map(([name, v]) => [name, { name, ...v }] as const));
  return { ...section, entries };
}

function toService(name: string, input: ServiceInput): Service {
  const vipMode = input.endpointMode === 'vip';
  const vips = vipMode ? input.vips ?? {} : {};
  const networks = vipMode ? Object.keys(vips) : [...new Set(input.networks ?? [])];
  return {
    name, endpointMode: input.endpointMode, vips, networks: networks.sort(compareText),
    aliases: input.aliases, ports: input.ports, lb: input.lb,
    ...(input.healthcheck === undefined ? {} : { healthcheck: input.healthcheck }),
  };
}

export function readDraft(raw: Record<string, unknown>, problems: CatalogProblem[]): Draft {
  const networkSection = readSection(raw, 'networks', networkSchema, problems);
  const networks = withNames(networkSection);
  const services = readSection(raw, 'services', serviceSchema, problems, plainService);
  const ingress = [...networks.entries.values()].find((n) => n.ingress);
  const maybeIngress = networkSection.unreadable
    || [...networkSection.broken].some((n) => isRecord(networkSection.raw[n]) && networkSection.raw[n].ingress === true);
  return {
    networks,
    nodes: withNames(readSection(raw, 'nodes', nodeSchema, problems)),
    services: {
      ...services,
      entries: new Map([...services.entries].map(([name, input]) => [name, { input, service: toService(name, input) }])),
    },
    tasks: withNames(readSection(raw, 'tasks', taskSchema, problems, plainTask)),
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

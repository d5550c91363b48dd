// The structural layer: one zod schema per catalog entry, each producing the
// entry in its normalized shape (defaults filled in, addresses canonical).
// Cross-entry rules live in the check-*.ts files.
import { z } from 'zod';
import {
  address, duration, exactlyOne, nameMap, nameText, netnsPath, oneOf, persistenceSeconds, portNumber, says, saysOf,
  seconds, subnet, whenRecord, wholeNumber,
} from './fields.js';
import { quoted } from './problems.js';
import {
  DEFAULT_DRAIN_TIMEOUT_S, ENDPOINT_MODES, PROTOCOLS, PUBLISH_MODES, SCHEDULERS, TASK_HEALTHS,
  type Healthcheck, type HealthProbe, type Names, type Network, type Node, type Port, type Service, type Task,
} from './types.js';

export const networkSchema = z
  .strictObject({
    subnet,
    ingress: z.boolean(says('must be true or false')).default(false),
  }, says('must be a map with a subnet'))
  .transform((n): Omit<Network, 'name'> => ({ subnet: n.subnet.text, family: n.subnet.family, ingress: n.ingress }));

export const nodeSchema = z
  .strictObject({
    address,
    netns: netnsPath.optional(),
    ingressSandbox: z.strictObject({ netns: netnsPath, address }, says('must be a map with netns and address')).optional(),
    loadBalancers: nameMap('network name to load balancer',
      z.strictObject({ netns: netnsPath, address }, says('must be a map with netns and address'))).optional(),
  }, says('must be a map with an address'))
  .transform((n): Omit<Node, 'name'> => ({
    address: n.address,
    ...(n.netns === undefined ? {} : { netns: n.netns }),
    ...(n.ingressSandbox === undefined ? {} : { ingressSandbox: n.ingressSandbox }),
    ...(n.loadBalancers === undefined ? {} : { loadBalancers: n.loadBalancers }),
  }));

const portSchema = z
  .strictObject({
    target: portNumber,
    published: portNumber,
    protocol: oneOf(PROTOCOLS).default('tcp'),
    mode: oneOf(PUBLISH_MODES).default('ingress'),
    network: nameText('a network').optional(),
  }, says('must be a map with target and published'))
  .transform((p): Port => ({
    target: p.target, published: p.published, protocol: p.protocol, mode: p.mode,
    ...(p.network === undefined ? {} : { network: p.network }),
  }));

const lbSchema = z
  .strictObject({
    scheduler: oneOf(SCHEDULERS).default('rr'),
    persistence: persistenceSeconds.default(0),
    drainTimeout: seconds.default(DEFAULT_DRAIN_TIMEOUT_S),
  }, says('must be a map with scheduler, persistence and drainTimeout'))
  .prefault({});

const PROBES = ['tcp', 'http', 'exec'] as const;

const healthcheckSchema = z
  .strictObject({
    tcp: portNumber.optional(),
    http: z.strictObject({
      port: portNumber,
      path: z.string(says('must be a URL path starting with /')).startsWith('/', 'must be a URL path starting with /').default('/'),
    }, says('must be a map with port and path')).optional(),
    exec: z
      .array(z.string(says('must be a non-empty string')).min(1, 'must be a non-empty string'),
        says('must be a list of strings: the command and its arguments'))
      .min(1, 'must list at least the command to run')
      .optional(),
    interval: duration(30_000),
    timeout: duration(5_000),
    retries: wholeNumber(1).default(3),
  }, says('must be a map with a probe (tcp, http or exec)'))
  .superRefine(exactlyOne(PROBES, 'needs a probe: one of tcp, http or exec'), whenRecord)
  .transform((h): Healthcheck => {
    const probe: HealthProbe = h.tcp !== undefined ? { kind: 'tcp', port: h.tcp }
      : h.http !== undefined ? { kind: 'http', port: h.http.port, path: h.http.path }
      : { kind: 'exec', argv: h.exec ?? [] };
    return { probe, intervalMs: h.interval, timeoutMs: h.timeout, retries: h.retries };
  });

/** A service as written, before the endpoint mode decides which of vips/networks counts. */
export interface ServiceInput extends Omit<Service, 'name' | 'vips' | 'networks'> {
  readonly vips?: Names<string>;
  readonly networks?: readonly string[];
}

export const serviceSchema = z
  .strictObject({
    endpointMode: oneOf(ENDPOINT_MODES).default('vip'),
    vips: nameMap('network name to VIP', address).optional(),
    networks: z.array(nameText('a network'), says('must be a list of network names')).optional(),
    aliases: z.array(nameText('an alias'), says('must be a list of names')).default([]),
    ports: z.array(portSchema, says('must be a list of ports')).default([]),
    lb: lbSchema,
    healthcheck: healthcheckSchema.optional(),
  }, says('must be a map describing the service'))
  .transform((s): ServiceInput => ({
    endpointMode: s.endpointMode, aliases: s.aliases, ports: s.ports, lb: s.lb,
    ...(s.vips === undefined ? {} : { vips: s.vips }),
    ...(s.networks === undefined ? {} : { networks: s.networks }),
    ...(s.healthcheck === undefined ? {} : { healthcheck: s.healthcheck }),
  }));

/** A task state: Swarm's are lowercase words (new, running, shutdown, failed, complete, …). */
export const STATE = /^[a-z]+$/;
const notAState = (value: unknown): string => `${quoted(value)} is not a lowercase word such as running, shutdown or failed`;

export const taskSchema = z
  .strictObject({
    service: nameText('a service').optional(),
    node: nameText('a node'),
    netns: netnsPath.optional(),
    pid: wholeNumber(1).optional(),
    // prefault, not default: the empty map goes through nameMap to become a Names record.
    addresses: nameMap('network name to address', address).prefault({}),
    state: z.string(saysOf(notAState)).regex(STATE, { error: (issue) => notAState(issue.input) }).default('running'),
    health: oneOf(TASK_HEALTHS).default('unknown'),
    weight: wholeNumber(0, 65535).default(1),
  }, says('must be a map describing the task'))
  .superRefine(exactlyOne(['netns', 'pid'], 'needs netns or pid: where the task\'s network namespace is'), whenRecord)
  .transform((t): Omit<Task, 'name'> => ({
    ...(t.service === undefined ? {} : { service: t.service }),
    node: t.node,
    netns: t.netns ?? `/proc/${t.pid ?? 0}/ns/net`,
    addresses: t.addresses,
    state: t.state,
    health: t.health,
    weight: t.weight,
  }));

const section = (what: string) =>
  z.record(z.string(), z.unknown(), says(`must be a map of ${what} names to ${what}s`)).nullable().optional();

/** The top level only; entries are parsed one by one so a bad one can't hide the others' problems. */
export const topLevelSchema = z.strictObject({
  version: z.literal(1, says('must be 1')),
  networks: section('network'),
  nodes: section('node'),
  services: section('service'),
  tasks: section('task'),
}, says('must be a map'));

export const SECTIONS = ['networks', 'nodes', 'services', 'tasks'] as const;
export type SectionName = (typeof SECTIONS)[number];

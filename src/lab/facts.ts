// What the demo shows and checks, as seed article 003 shows it with Docker: the
// commands it runs and what they print (a transcript), and the facts that must
// hold for a catalog. Pure: demo.ts runs the commands, the tests read the
// transcript back with parseTranscript.
import { parseIp } from '../catalog/ip.js';
import type { Catalog } from '../catalog/types.js';
import type { LabTopology } from './topology.js';

/** One command the demo ran, as a shell would show it, and its output lines. */
export interface Step {
  readonly command: string;
  readonly output: readonly string[];
}

export const PROMPT = '$ ';

/** A comment line between steps. */
export const commentText = (text: string): string => `# ${text}\n`;

export function transcriptText(step: Step): string {
  return `${PROMPT}${step.command}\n${step.output.map((l) => `${l}\n`).join('')}`;
}

/**
 * The steps in a demo's output: each `$ command` line and the lines up to the next
 * one; blank lines, `# ` comments and the `ok:`/`FAILED:` verdicts are not output.
 */
export function parseTranscript(text: string): Step[] {
  const steps: { command: string; output: string[] }[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith(PROMPT)) steps.push({ command: line.slice(PROMPT.length), output: [] });
    else if (line.trim() !== '' && steps.length > 0 && !/^(ok|FAILED): |^# /.test(line)) steps.at(-1)!.output.push(line);
  }
  return steps;
}

/** `dig +short` output: the lines that are addresses (a CNAME or a comment is not). */
export function digAddresses(lines: readonly string[]): string[] {
  return lines.map((l) => l.trim()).filter((l) => parseIp(l).ok);
}

export interface WhoamiAnswer {
  readonly task: string;
  readonly address: string;
  readonly client: string;
}

/** `whoami.2 10.0.1.12 from 10.0.1.250`, the lab's whoami line. */
export function parseWhoami(line: string): WhoamiAnswer | undefined {
  const match = /^(\S+) (\S+) from (\S+)$/.exec(line.trim());
  return match === null ? undefined : { task: match[1]!, address: match[2]!, client: match[3]! };
}

/** What the demo expects of a catalog, worked out from it. */
export interface DemoPlan {
  /** The task namespace the demo asks from. */
  readonly client: { readonly task: string; readonly ns: string };
  readonly service: string;
  readonly vip: string;
  /** The service's running tasks on the VIP's network: name → address. */
  readonly tasks: ReadonlyMap<string, string>;
  /** Where the published port answers from outside. */
  readonly published: { readonly port: number; readonly outside: string; readonly nodes: readonly { readonly name: string; readonly address: string }[] } | undefined;
  /** A dnsrr service on the client's network and its running tasks' addresses there. */
  readonly dnsrr: { readonly service: string; readonly addresses: readonly string[] } | undefined;
  /** How many requests go through the VIP. */
  readonly requests: number;
}

export type DemoPlanResult = { readonly ok: true; readonly plan: DemoPlan } | { readonly ok: false; readonly problem: string };

const running = (catalog: Catalog, service: string) =>
  Object.values(catalog.tasks).filter((t) => t.service === service && t.state === 'running' && t.health !== 'unhealthy').sort((a, b) => (a.name < b.name ? -1 : 1));

/**
 * The demo's subject: the vip-mode service with a published tcp port (else any
 * vip-mode service) that the client task shares a network with; the client is
 * the task named `client`, else the first task of no service.
 */
export function demoPlan(catalog: Catalog, topology: LabTopology): DemoPlanResult {
  const clientTask = catalog.tasks['client'] ?? Object.values(catalog.tasks).sort((a, b) => (a.name < b.name ? -1 : 1)).find((t) => t.service === undefined);
  if (clientTask === undefined) return { ok: false, problem: 'the demo asks from a task named client (or any task of no service); this catalog has none' };
  const clientNs = topology.tasks.find((t) => t.name === clientTask.name)!.ns;
  const shared = (network: string): boolean => Object.hasOwn(clientTask.addresses, network);
  const candidates = Object.values(catalog.services)
    .filter((s) => s.endpointMode === 'vip' && Object.keys(s.vips).some(shared))
    .sort((a, b) => Number(b.ports.some((p) => p.mode === 'ingress' && p.protocol === 'tcp')) - Number(a.ports.some((p) => p.mode === 'ingress' && p.protocol === 'tcp')) || (a.name < b.name ? -1 : 1));
  const service = candidates[0];
  if (service === undefined) return { ok: false, problem: `the demo needs a vip-mode service on a network of task ${clientTask.name}; this catalog has none` };
  const network = Object.keys(service.vips).filter(shared).sort()[0]!;
  const tasks = new Map(running(catalog, service.name).flatMap((t) => (Object.hasOwn(t.addresses, network) ? [[t.name, t.addresses[network]!] as const] : [])));
  const port = service.ports.find((p) => p.mode === 'ingress' && p.protocol === 'tcp');
  const published = port === undefined ? undefined : {
    port: port.published,
    outside: topology.outside.ns,
    nodes: topology.nodes.filter((n) => catalog.nodes[n.name]!.ingressSandbox !== undefined).map((n) => ({ name: n.name, address: n.address })),
  };
  const rr = Object.values(catalog.services).filter((s) => s.endpointMode === 'dnsrr' && s.networks.some(shared)).sort((a, b) => (a.name < b.name ? -1 : 1))[0];
  const dnsrr = rr === undefined ? undefined : {
    service: rr.name,
    addresses: running(catalog, rr.name).flatMap((t) => rr.networks.filter(shared).sort().slice(0, 1).flatMap((n) => (Object.hasOwn(t.addresses, n) ? [t.addresses[n]!] : []))).sort(),
  };
  return { ok: true, plan: { client: { task: clientTask.name, ns: clientNs }, service: service.name, vip: service.vips[network]!, tasks, published, dnsrr, requests: 10 } };
}

export interface Fact {
  readonly ok: boolean;
  readonly text: string;
}

const sameSet = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && [...a].sort().every((x, i) => x === [...b].sort()[i]);
const fact = (ok: boolean, good: string, bad: string): Fact => ({ ok, text: ok ? good : bad });

export function vipFact(plan: DemoPlan, output: readonly string[]): Fact {
  const got = digAddresses(output);
  return fact(sameSet(got, [plan.vip]), `dig ${plan.service} answers the VIP ${plan.vip}`,
    `dig ${plan.service} should answer the VIP ${plan.vip}, and answered ${got.join(' ') || 'nothing'}`);
}

export function tasksFact(plan: DemoPlan, output: readonly string[]): Fact {
  const want = [...plan.tasks.values()];
  const got = digAddresses(output);
  return fact(sameSet(got, want), `dig tasks.${plan.service} answers the ${want.length} task addresses ${[...want].sort().join(' ')}`,
    `dig tasks.${plan.service} should answer ${[...want].sort().join(' ')}, and answered ${got.join(' ') || 'nothing'}`);
}

export function dnsrrFact(plan: DemoPlan, output: readonly string[]): Fact | undefined {
  if (plan.dnsrr === undefined) return undefined;
  const got = digAddresses(output);
  return fact(sameSet(got, plan.dnsrr.addresses), `dig ${plan.dnsrr.service} (dnsrr) answers its tasks' addresses ${plan.dnsrr.addresses.join(' ')}`,
    `dig ${plan.dnsrr.service} (dnsrr) should answer ${plan.dnsrr.addresses.join(' ')}, and answered ${got.join(' ') || 'nothing'}`);
}

/** Every request answered by a task of the service at its own address, and every task answered. */
export function spreadFact(plan: DemoPlan, output: readonly string[]): Fact {
  const answers = output.map(parseWhoami);
  const good = answers.filter((a): a is WhoamiAnswer => a !== undefined && plan.tasks.get(a.task) === a.address);
  const distinct = new Set(good.map((a) => a.task));
  const ok = good.length === plan.requests && distinct.size === plan.tasks.size;
  return fact(ok, `${plan.requests} requests to http://${plan.service}/ through the VIP landed on ${distinct.size} distinct tasks (${[...distinct].sort().join(', ')})`,
    `${plan.requests} requests to http://${plan.service}/ should each be answered by one of its ${plan.tasks.size} tasks, landing on all of them; ${good.length} were, on ${distinct.size} (${[...distinct].sort().join(', ') || 'none'})`);
}

export function publishedFact(plan: DemoPlan, node: { name: string; address: string }, output: readonly string[]): Fact {
  const answer = output.map(parseWhoami).find((a) => a !== undefined);
  const ok = answer !== undefined && plan.tasks.has(answer.task);
  return fact(ok, `http://${node.address}:${plan.published!.port}/ on ${node.name} answers from outside (${answer?.task ?? ''})`,
    `http://${node.address}:${plan.published!.port}/ on ${node.name} should answer from outside with a task of ${plan.service}, and answered ${output.join(' | ') || 'nothing'}`);
}

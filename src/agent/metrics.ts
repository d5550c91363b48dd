// The agent's Prometheus metrics (SPEC §5, and §6's catalog_source_up): names,
// label names and label values are fixed by the spec. The rest of the agent
// updates them through the typed functions below, never through metric objects,
// so a label value outside the fixed sets cannot be written. Every labelled
// series exists from the start at 0: a rate() over a counter that appears only
// on its first increment misses that increment.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, exponentialBuckets, linearBuckets } from 'prom-client';
import type { Outcome } from '../resolver/types.js';
import type { PassKind } from './runner.js';

export const FAILURE_REASONS = ['no_ipvs', 'namespace_gone', 'iptables_rejected', 'ipvs_rejected', 'timeout', 'other'] as const;
export type FailureReason = (typeof FAILURE_REASONS)[number];

const PASS_KINDS: readonly PassKind[] = ['full', 'changed'];
/** `sandbox`: the ingress sandbox and the load-balancer namespaces (Swarm calls both sandboxes). */
const NAMESPACE_KINDS = ['task', 'host', 'sandbox'] as const;
export type NamespaceKind = (typeof NAMESPACE_KINDS)[number];
const DNS_OUTCOMES = ['local', 'nodata', 'forwarded', 'servfail', 'refused', 'formerr'] as const;
type DnsOutcome = (typeof DNS_OUTCOMES)[number];

// The resolver's outcomes under the spec's names. A dropped query got no reply
// and the spec's label set has no value for it, so it is not counted.
const DNS_LABEL: Readonly<Record<Outcome, DnsOutcome | undefined>> = {
  answered: 'local',
  nodata: 'nodata',
  forwarded: 'forwarded',
  servfail: 'servfail',
  refused: 'refused',
  formerr: 'formerr',
  dropped: undefined,
};

export interface PassRecord {
  readonly kind: PassKind;
  readonly durationSeconds: number;
  /** When it ended, epoch milliseconds. */
  readonly endedAt: number;
  /**
   * A failed pass says why, one reason per failure (a namespace, or the whole
   * pass). `degraded`: every failure is one a retry cannot mend (no_ipvs) and the
   * rest of the node is programmed, so it counts as a success too.
   */
  readonly outcome:
    | { readonly status: 'ok' }
    | { readonly status: 'degraded'; readonly reasons: readonly [FailureReason, ...FailureReason[]] }
    | { readonly status: 'failed'; readonly reasons: readonly [FailureReason, ...FailureReason[]] };
}

/** What the last pass left programmed on the node. */
export interface ProgrammedState {
  readonly namespaces: Readonly<Record<NamespaceKind, number>>;
  readonly iptablesRules: number;
  readonly ipvsServices: number;
  readonly realServers: { readonly active: number; readonly draining: number };
}

export interface AgentMetrics {
  /** The Content-Type header for scrape()'s text. */
  readonly contentType: string;
  /** Every metric in the Prometheus text format. */
  scrape(): Promise<string>;
  recordPass(pass: PassRecord): void;
  /** From a catalog change being seen to it being programmed. */
  recordProgrammingLatency(seconds: number): void;
  setProgrammed(state: ProgrammedState): void;
  setTasksServing(count: number): void;
  /** Local running tasks newly found with their namespace gone (SPEC §5: logged and counted). */
  countNamespacesGone(count: number): void;
  setCatalogValid(valid: boolean): void;
  setCatalogSourceUp(up: boolean): void;
  /** Adds queries answered since the last call, by the resolver's outcome. */
  countDnsQueries(byOutcome: Readonly<Partial<Record<Outcome, number>>>): void;
  recordDnsForward(seconds: number): void;
  countProbeResult(result: 'pass' | 'fail'): void;
}

// kube-proxy's network-programming buckets: fine below a minute, where the
// answer to "how long until my change is live" matters, coarse after.
const PROGRAMMING_BUCKETS = [
  ...linearBuckets(0.25, 0.25, 2),
  ...linearBuckets(1, 1, 59),
  ...linearBuckets(60, 5, 12),
  ...linearBuckets(120, 30, 7),
];

export function createAgentMetrics(): AgentMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];

  const syncDuration = new Histogram({
    name: 'vipmesh_sync_duration_seconds',
    help: 'How long a sync pass took, by kind (full: every namespace read; changed: only namespaces whose plan changed).',
    labelNames: ['pass'] as const,
    buckets: exponentialBuckets(0.001, 2, 15), // 1 ms … 16.4 s, as kube-proxy
    registers,
  });
  const lastSuccess = new Gauge({
    name: 'vipmesh_sync_last_success_timestamp_seconds',
    help: 'When the last successful pass ended (Unix time); 0 before the first.',
    registers,
  });
  const failures = new Counter({
    name: 'vipmesh_sync_failures_total',
    help: 'Failures in sync passes, by reason.',
    labelNames: ['reason'] as const,
    registers,
  });
  const programming = new Histogram({
    name: 'vipmesh_network_programming_duration_seconds',
    help: 'From a catalog change being seen to it being programmed in the kernel.',
    buckets: PROGRAMMING_BUCKETS,
    registers,
  });
  const namespaces = new Gauge({
    name: 'vipmesh_namespaces',
    help: 'Network namespaces vipmesh manages on this node, by kind.',
    labelNames: ['kind'] as const,
    registers,
  });
  const iptablesRules = new Gauge({ name: 'vipmesh_iptables_rules', help: 'Rules in vipmesh chains, in every managed namespace.', registers });
  const ipvsServices = new Gauge({ name: 'vipmesh_ipvs_services', help: 'IPVS services vipmesh programs, in every managed namespace.', registers });
  const realServers = new Gauge({
    name: 'vipmesh_ipvs_real_servers',
    help: 'IPVS real servers of vipmesh services, by state (draining: weight 0 until their connections end).',
    labelNames: ['state'] as const,
    registers,
  });
  const catalogValid = new Gauge({
    name: 'vipmesh_catalog_valid',
    help: '1 when the newest catalog is valid; 0 while an invalid one is ignored and the last good one stays in force.',
    registers,
  });
  const sourceUp = new Gauge({
    name: 'vipmesh_catalog_source_up',
    help: '1 while the catalog source (file or etcd) can be read; 0 while the last good catalog stays in force without it.',
    registers,
  });
  const tasksServing = new Gauge({ name: 'vipmesh_tasks_serving', help: 'Tasks that receive traffic and DNS answers.', registers });
  const namespacesGone = new Counter({
    name: 'vipmesh_tasks_namespace_gone_total',
    help: 'Local tasks the catalog lists running that were found with their namespace gone (each time one went).',
    registers,
  });
  const dnsQueries = new Counter({
    name: 'vipmesh_dns_queries_total',
    help: 'DNS queries answered by the embedded resolver, by outcome.',
    labelNames: ['outcome'] as const,
    registers,
  });
  const dnsForward = new Histogram({
    name: 'vipmesh_dns_forward_duration_seconds',
    help: 'How long a query forwarded upstream took to answer.',
    // 0.5 ms … 16 s: up to three upstreams at Docker's 4 s timeout each.
    buckets: exponentialBuckets(0.0005, 2, 16),
    registers,
  });
  const probes = new Counter({
    name: 'vipmesh_probe_results_total',
    help: 'Health probe results of local tasks.',
    labelNames: ['result'] as const,
    registers,
  });

  for (const pass of PASS_KINDS) syncDuration.zero({ pass });
  for (const reason of FAILURE_REASONS) failures.inc({ reason }, 0);
  for (const kind of NAMESPACE_KINDS) namespaces.set({ kind }, 0);
  for (const state of ['active', 'draining'] as const) realServers.set({ state }, 0);
  for (const outcome of DNS_OUTCOMES) dnsQueries.inc({ outcome }, 0);
  for (const result of ['pass', 'fail'] as const) probes.inc({ result }, 0);

  return {
    contentType: registry.contentType,
    scrape: () => registry.metrics(),
    recordPass(pass) {
      syncDuration.observe({ pass: pass.kind }, pass.durationSeconds);
      if (pass.outcome.status !== 'failed') lastSuccess.set(pass.endedAt / 1000);
      if (pass.outcome.status !== 'ok') for (const reason of pass.outcome.reasons) failures.inc({ reason });
    },
    recordProgrammingLatency: (seconds) => programming.observe(seconds),
    setProgrammed(state) {
      for (const kind of NAMESPACE_KINDS) namespaces.set({ kind }, state.namespaces[kind]);
      iptablesRules.set(state.iptablesRules);
      ipvsServices.set(state.ipvsServices);
      realServers.set({ state: 'active' }, state.realServers.active);
      realServers.set({ state: 'draining' }, state.realServers.draining);
    },
    setTasksServing: (count) => tasksServing.set(count),
    countNamespacesGone(count) {
      if (Number.isInteger(count) && count > 0) namespacesGone.inc(count);
    },
    setCatalogValid: (valid) => catalogValid.set(valid ? 1 : 0),
    setCatalogSourceUp: (up) => sourceUp.set(up ? 1 : 0),
    countDnsQueries(byOutcome) {
      for (const [outcome, count] of Object.entries(byOutcome) as [Outcome, number | undefined][]) {
        const label = DNS_LABEL[outcome];
        // A counter cannot go down: a count that is not an increase (a resolver
        // restarted with fresh counters, a caller's slip) is not added.
        if (label !== undefined && count !== undefined && Number.isFinite(count) && count > 0) dnsQueries.inc({ outcome: label }, count);
      }
    },
    recordDnsForward: (seconds) => dnsForward.observe(seconds),
    countProbeResult: (result) => probes.inc({ result }),
  };
}

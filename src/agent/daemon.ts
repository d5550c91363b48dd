// The agent, composed (SPEC §5): the one place that constructs the collaborators
// — lock, DNS, probes, runner, triggers, HTTP, notify — and wires them. Start:
// take the node's lock, serve HTTP (healthz says 503 until a pass succeeds),
// bind the resolver in every local task namespace, run a full pass, then READY=1.
// After that the runner decides when passes run; triggers and probe changes only
// request them. Stop: abort the pass in flight between namespaces, close
// everything, STOPPING=1; every rule and IPVS service stays.
//
// Logs and metrics of a pass come from its PassResult, in recordPass() only.
//
// The catalog comes from a file (watched through its directory) or from etcd
// (SPEC §6: a watch that lists again on any trouble, the node's liveness lease,
// the probe verdicts of every node). Either way a new valid catalog takes the
// same path (acceptCatalog); from etcd, other nodes' liveness and verdicts are
// applied as a derived catalog (liveness.ts) so that DNS and the plan follow.
import type { Etcd3 } from 'etcd3';
import type { ValidationPath } from '../catalog/incremental.js';
import type { CatalogProblem, Catalog } from '../catalog/types.js';
import { FileCatalog } from '../catalog/file-incremental.js';
import { readCatalogFile, unreadableCatalog } from '../catalog/load.js';
import { taskList } from '../catalog/task-list.js';
import { type Membership, joinCluster } from '../cluster/membership.js';
import type { Part, SharedHealth } from '../cluster/view.js';
import { type ClusterSnapshot, type ClusterWatch, watchCluster } from '../cluster/watch.js';
import { createRunner } from '../kernel/exec.js';
import { createNotifySend } from '../kernel/notify-send.js';
import { createProber } from '../kernel/probe-session.js';
import { planNode } from '../plan/index.js';
import { serves } from '../plan/serving.js';
import { runPass, type PassResult } from '../reconcile/pass.js';
import type { FailureKind } from '../reconcile/types.js';
import { ResolverHostError } from '../resolver/host.js';
import type { Upstream } from '../resolver/types.js';
import { readNodeFacts, readProbes } from '../state/runtime.js';
import { acquireLock, type NodeLock } from '../state/store.js';
import { release } from 'node:os';
import { type Clock, systemClock } from './clock.js';
import { type AgentDns, startDns } from './dns.js';
import { findGone, withoutGone } from './gone.js';
import { type AgentHttp, type CatalogHealth, type ListenAddress, type SourceHealth, startHttp } from './http.js';
import { type ClusterFacts, notServing, withCluster } from './liveness.js';
import type { Logger } from './log.js';
import { type AgentMetrics, type NamespaceKind, createAgentMetrics } from './metrics.js';
import { type Notifier, createNotifier, watchdogSetting } from './notify.js';
import { type ProbeScheduler, type Verdict, createProbeScheduler, probeTasks } from './probes.js';
import { type PassKind, type PassOutcome, type SyncRunner, createSyncRunner } from './runner.js';
import {
  type RtnetlinkEvent, type Trigger, type TriggerReason, createCatalogTrigger, createNetnsTrigger, createRtnetlinkTrigger, createSighupTrigger, passKindFor,
} from './triggers.js';

/** Where the catalog comes from (-c), as the CLI opened it. */
export type AgentSource =
  | { readonly kind: 'file'; readonly path: string }
  | {
    readonly kind: 'etcd';
    /** The source as written, for logs. */
    readonly text: string;
    readonly prefix: string;
    /** The agent's from now on: it closes it when it stops. */
    readonly client: Etcd3;
    /** The listing the catalog at start came from: the watch goes on from its revision. */
    readonly initial: ClusterSnapshot;
    readonly leaseTtlSeconds: number;
  };

export interface AgentOptions {
  readonly source: AgentSource;
  /** What the source held at start, already validated. */
  readonly catalog: Catalog;
  readonly node: string;
  readonly runDir: string;
  readonly listen: ListenAddress;
  readonly syncPeriodMs: number;
  readonly minSyncPeriodMs: number;
  /** --upstream; empty: /etc/resolv.conf's. */
  readonly upstreams: readonly Upstream[];
  readonly log: Logger;
  /** NOTIFY_SOCKET, WATCHDOG_USEC, VIPMESH_TEST_HANG_PASS. */
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly clock?: Clock;
  /** Aborted: startup stops where it is and undoes what it started. */
  readonly signal?: AbortSignal;
}

export interface Agent {
  /** Where HTTP listens (the kernel's port for port 0). */
  readonly address: ListenAddress;
  /** Idempotent; resolves once everything is closed. */
  stop(why: string): Promise<void>;
}

/**
 * Failures a retry cannot mend: a kernel without IPVS stays without it. They are
 * logged and counted on every pass, but they do not make the runner back off and
 * retry, nor keep /healthz at 503: the rest of the node is programmed.
 */
const PERMANENT: ReadonlySet<FailureKind> = new Set(['no_ipvs']);

const describe = (error: unknown): string => (error instanceof Error ? error.message : String(error));

class StartAborted extends Error {}

export async function startAgent(options: AgentOptions): Promise<Agent> {
  const { node, runDir, log } = options;
  const clock = options.clock ?? systemClock;
  const abortedAtStart = (): void => {
    if (options.signal?.aborted) throw new StartAborted('stopped while starting');
  };

  // Everything started, in order, so that one path closes it whatever happened.
  const closers: { readonly what: string; readonly close: () => Promise<void> | void }[] = [];
  const closeAll = async (): Promise<void> => {
    for (const { what, close } of closers.splice(0).reverse()) {
      try {
        await close();
      } catch (error) {
        log.warn({ err: describe(error) }, `closing ${what} failed`);
      }
    }
  };

  const lock: NodeLock = await acquireLock(runDir, { waitMs: 0 });
  closers.push({ what: 'the lock', close: () => lock.release() });

  try {
    return await compose();
  } catch (error) {
    await closeAll();
    throw error;
  }

  async function compose(): Promise<Agent> {
    const metrics: AgentMetrics = createAgentMetrics();
    metrics.setCatalogValid(true);
    // A file is read when it changes and is always there to read: its source is up.
    metrics.setCatalogSourceUp(true);

    const source = options.source;
    const where = source.kind === 'file' ? source.path : source.text;
    if (source.kind === 'etcd') closers.push({ what: 'the etcd client', close: () => source.client.close() });
    let catalog = options.catalog;
    let catalogHealth: CatalogHealth = { state: 'valid' };
    let sourceHealth: SourceHealth = { state: 'up' };
    /** What the other agents say (etcd only): applied to the catalog by withCluster. */
    let cluster: ClusterFacts | undefined = source.kind === 'etcd' ? source.initial.view : undefined;
    let gone: ReadonlyMap<string, string> = new Map();
    let effective = catalog;
    let stopping = false;
    /** When each catalog change not yet programmed was seen. */
    let unprogrammed: number[] = [];

    const watchdog = watchdogSetting(options.env, process.pid);
    // A pass running longer than this means the runner is stuck: the watchdog stops pinging, /livez says 503.
    const stuckAfterMs = watchdog.state === 'on' ? watchdog.pingEveryMs * 2 : Math.max(2 * options.syncPeriodMs, 60_000);
    let runner: SyncRunner | undefined;
    const alive = (): boolean => {
      const activity = runner?.status().activity;
      if (activity === undefined) return true;
      if (activity.state === 'running') return clock.now() - activity.since < stuckAfterMs;
      return activity.state !== 'stopped';
    };
    // What asked for passes since the last one started, for its log line (the runner coalesces requests).
    const requestedBy = new Set<string>();
    const request = (kind: PassKind, why: string): void => {
      requestedBy.add(why);
      runner?.request(kind);
    };

    // Changes to what DNS and the pass see happen one at a time, in order.
    let queue: Promise<void> = Promise.resolve();
    const serially = (what: string, work: () => Promise<void>): Promise<void> => {
      const next = queue.then(work).catch((error: unknown) => log.error({ err: describe(error) }, `${what} failed`));
      queue = next;
      return next;
    };

    // --- DNS and probes
    const dns: AgentDns = await startDns({
      node, runDir, upstreams: options.upstreams,
      log: (level, message) => log[level]({ component: 'resolver' }, message),
      onCounters: (counters) => {
        metrics.countDnsQueries(counters.queries);
        for (const seconds of counters.forwardSeconds) metrics.recordDnsForward(seconds);
      },
      // Ports the resolver bound or dropped on its own: the DNS redirect follows in a pass.
      onSync: () => request('changed', 'resolver'),
    });
    closers.push({ what: 'the resolver', close: () => dns.stop() });

    const prober = createProber({ runner: createRunner() });
    closers.push({ what: 'the prober', close: () => prober.close() });
    const scheduler: ProbeScheduler = createProbeScheduler({
      clock, prober, runDir,
      previous: await readProbes(runDir),
      countResult: (result) => metrics.countProbeResult(result),
      onWriteError: (error) => log.warn({ err: error.message }, 'writing health.json failed'),
      onChange: (task, verdict) => {
        log.info({ event: 'probe', task, verdict: verdict.state, ...reasonOf(verdict) }, `task ${task} is ${verdict.state}`);
        publishHealth();
        void serially('applying a probe result', async () => {
          await updateDns();
          request('changed', 'probe');
        });
      },
    });
    closers.push({ what: 'the probes', close: () => scheduler.stop() });

    /** Since when each local verdict has held, for what is published (etcd only). */
    const verdictSince = new Map<string, { readonly state: string; readonly since: string }>();
    let membership: Membership | undefined;
    const publishHealth = (): void => {
      if (membership === undefined) return;
      const published = new Map<string, SharedHealth>();
      const verdicts = scheduler.verdicts();
      for (const task of verdictSince.keys()) if (!verdicts.has(task)) verdictSince.delete(task);
      for (const [task, verdict] of verdicts) {
        let held = verdictSince.get(task);
        if (held?.state !== verdict.state) verdictSince.set(task, held = { state: verdict.state, since: new Date(clock.now()).toISOString() });
        published.set(task, { node, state: verdict.state, since: held.since, ...reasonOf(verdict) });
      }
      membership.publish(published);
    };

    /** The catalog as this node serves it: other nodes' word applied, then this node's gone namespaces. */
    const recompute = (): void => {
      effective = withoutGone(cluster === undefined ? catalog : withCluster(catalog, node, cluster), gone);
      scheduler.update(probeTasks(effective, node));
      publishHealth();
    };

    const updateDns = async (): Promise<void> => {
      const report = await dns.update(effective, scheduler.health(), new Set(gone.values()));
      for (const failure of report.failed) log.warn({ component: 'resolver', netns: failure.netns }, failure.message);
    };

    /** Looks for namespaces gone (or back); says so once per change. True when something changed. */
    const refreshGone = async (): Promise<boolean> => {
      const now = await findGone(catalog, node);
      const changed = now.size !== gone.size || [...now].some(([task, netns]) => gone.get(task) !== netns);
      if (!changed) return false;
      const newlyGone = [...now].filter(([task, netns]) => gone.get(task) !== netns);
      metrics.countNamespacesGone(newlyGone.length);
      for (const [task, netns] of newlyGone) {
        log.warn({ event: 'namespace-gone', task, netns }, `task ${task}: its namespace ${netns} is gone; it no longer serves on this node`);
      }
      for (const [task, netns] of gone) {
        if (!now.has(task) && Object.hasOwn(catalog.tasks, task)) log.info({ event: 'namespace-back', task, netns }, `task ${task}: its namespace ${netns} is back`);
      }
      gone = now;
      recompute();
      await updateDns();
      return true;
    };

    const useCatalog = async (next: Catalog): Promise<void> => {
      catalog = next;
      // A task newly found gone here is logged and counted as one found by a pass is.
      if (await refreshGone()) return;
      recompute();
      await updateDns();
    };

    /** A new catalog from the source: in force when valid; otherwise every problem logged and the last good one kept. */
    const acceptCatalog = async (
      result: { ok: true; catalog: Catalog } | { ok: false; problems: CatalogProblem[] }, seenAt: number, validation?: ValidationPath,
    ): Promise<boolean> => {
      const problems = !result.ok
        ? result.problems
        : Object.hasOwn(result.catalog.nodes, node) ? [] : [{ path: 'nodes', message: `node ${node} is no longer in the catalog` }];
      if (!result.ok || problems.length > 0) {
        if (catalogHealth.state === 'valid') catalogHealth = { state: 'invalid', since: clock.now(), problems: problems.length };
        else catalogHealth = { ...catalogHealth, problems: problems.length };
        metrics.setCatalogValid(false);
        log.warn(
          { event: 'catalog', valid: false, path: where, problems: problems.map((p) => `${p.path || '(top)'}: ${p.message}`) },
          `${where} is not a valid catalog (${problems.length} problem${problems.length === 1 ? '' : 's'}); the last good catalog stays in force`,
        );
        return false;
      }
      catalogHealth = { state: 'valid' };
      metrics.setCatalogValid(true);
      // The task list, not Object.keys: listing 100 000 record keys costs more than a change's validation.
      const tasks = taskList(result.catalog).length;
      const services = Object.keys(result.catalog.services).length;
      await useCatalog(result.catalog);
      unprogrammed.push(seenAt);
      log.info({ event: 'catalog', valid: true, path: where, services, tasks, ...(validation === undefined ? {} : { validation }) }, 'catalog changed');
      request('changed', 'catalog');
      return true;
    };

    // The file, read again on each change, validated by difference from the last reading (file-incremental.ts).
    const fileCatalog = new FileCatalog();
    const reloadCatalog = async (path: string, seenAt: number): Promise<void> => {
      if (stopping) return;
      const read = await readCatalogFile(path);
      if (!read.ok) {
        await acceptCatalog(unreadableCatalog(path, read.reason), seenAt);
        return;
      }
      const { result, path: validation } = fileCatalog.read(read.text);
      await acceptCatalog(result, seenAt, validation);
    };

    // etcd: the newest snapshot only; what changed is gathered over those skipped.
    let pendingSnapshot: { snapshot: ClusterSnapshot; parts: Set<Part>; seenAt: number } | undefined;
    const onSnapshot = (snapshot: ClusterSnapshot): void => {
      if (stopping) return;
      const parts = new Set([...(pendingSnapshot?.parts ?? []), ...snapshot.changed]);
      pendingSnapshot = { snapshot, parts, seenAt: pendingSnapshot?.seenAt ?? clock.now() };
      void serially('applying the cluster catalog', applySnapshot);
    };
    const applySnapshot = async (): Promise<void> => {
      const pending = pendingSnapshot;
      pendingSnapshot = undefined;
      if (pending === undefined || stopping) return;
      const { snapshot, parts, seenAt } = pending;
      const before = cluster;
      cluster = snapshot.view;
      if (parts.has('live') || parts.has('health')) {
        const facts = notServing(catalog, node, snapshot.view);
        const was = before === undefined ? undefined : notServing(catalog, node, before);
        if (was === undefined || facts.nodeDown.join() !== was.nodeDown.join() || facts.unhealthy.join() !== was.unhealthy.join()) {
          log.info({
            event: 'cluster', revision: snapshot.revision, live: [...snapshot.view.live].sort(), nodeDown: facts.nodeDown, unhealthy: facts.unhealthy,
          }, `cluster: ${snapshot.view.live.size} live node${snapshot.view.live.size === 1 ? '' : 's'}; ${facts.nodeDown.length} remote task${facts.nodeDown.length === 1 ? '' : 's'} on nodes down, ${facts.unhealthy.length} unhealthy`);
        }
      }
      if (parts.has('catalog')) {
        // A catalog taken brings the cluster facts with it; one refused leaves the catalog as it was, but not the facts.
        if (await acceptCatalog(snapshot.catalog, seenAt, snapshot.validation)) return;
      }
      if (!parts.has('live') && !parts.has('health')) return;
      const previous = effective;
      recompute();
      if (effective === previous) return;
      await updateDns();
      unprogrammed.push(seenAt);
      request('changed', 'cluster');
    };

    // --- the pass, and what is derived from its result
    let notifier: Notifier | undefined;
    let firstPass: ((ok: boolean) => void) | undefined;
    const firstPassDone = new Promise<boolean>((resolve) => (firstPass = resolve));
    const hang = options.env['VIPMESH_TEST_HANG_PASS'] === '1';
    let lastPlanned: Catalog | undefined;

    const pass = async (kind: PassKind, signal: AbortSignal): Promise<PassOutcome> => {
      // Test hook only (VIPMESH_TEST_HANG_PASS=1): a pass that never ends on its own, so a test sees the watchdog stop.
      if (hang && lastPlanned !== undefined) await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
      const started = clock.now();
      const triggers = [...requestedBy].sort();
      requestedBy.clear();
      const serving = unprogrammed;
      unprogrammed = [];
      let result: PassResult;
      try {
        // A catalog or probe change in progress reaches DNS (and resolver.json) first;
        // a full pass also looks for namespaces gone without a trigger (a pid: task's process died).
        await serially('looking for gone namespaces', async () => {
          if (kind === 'full') await refreshGone();
        });
        await scheduler.flush(); // the pass reads health.json
        result = await runPass({ catalog: effective, node, mode: 'apply', runDir, scope: kind === 'full' ? 'all' : 'changed', signal });
      } catch (error) {
        unprogrammed = [...serving, ...unprogrammed];
        const outcome = recordFailure(kind, started, describe(error), triggers);
        firstPass?.(false);
        return outcome;
      }
      const outcome = recordPass(kind, started, result, serving, triggers);
      if (outcome.status === 'failed') unprogrammed = [...serving, ...unprogrammed];
      firstPass?.(outcome.status === 'ok');
      return outcome;
    };

    function recordFailure(kind: PassKind, started: number, error: string, triggers: readonly string[]): PassOutcome {
      const ended = clock.now();
      metrics.recordPass({ kind, durationSeconds: (ended - started) / 1000, endedAt: ended, outcome: { status: 'failed', reasons: ['other'] } });
      log.error({ event: 'pass', kind, triggers, durationMs: Math.round(ended - started), error }, `${kind} pass failed: ${error}`);
      void notifier?.status(`${kind} pass failed: ${error}`);
      return { status: 'failed', error };
    }

    function recordPass(kind: PassKind, started: number, result: PassResult, served: readonly number[], triggers: readonly string[]): PassOutcome {
      const ended = clock.now();
      const failures = result.namespaces.flatMap((ns) => ns.errors.map((error) => ({ namespace: ns.key, kind: error.kind, message: error.message })));
      const changed = result.namespaces.filter((ns) => ns.changes.length > 0).map((ns) => ns.key);
      const retriable = failures.filter((f) => !PERMANENT.has(f.kind));
      const [first, ...rest] = failures.map((f) => f.kind);
      metrics.recordPass({
        kind, durationSeconds: (ended - started) / 1000, endedAt: ended,
        // Every failure is counted by its reason, a permanent one too; a pass with only permanent ones still moves the last-success gauge.
        outcome: first === undefined ? { status: 'ok' } : { status: retriable.length === 0 ? 'degraded' : 'failed', reasons: [first, ...rest] },
      });
      if (retriable.length === 0) for (const seen of served) metrics.recordProgrammingLatency((ended - seen) / 1000);
      if (result.written.iptables + result.written.ipvs + result.written.sysctl + result.written.conntrack > 0 || lastPlanned !== effective) {
        const draining = Object.values(result.state.draining).reduce((n, keys) => n + Object.keys(keys).length, 0);
        void setProgrammed(effective, draining).catch((error: unknown) => log.warn({ err: describe(error) }, 'counting the programmed state failed'));
      }
      const aborted = result.notHandled.length > 0;
      log.info({
        event: 'pass', kind, triggers, durationMs: Math.round(ended - started),
        namespaces: result.namespaces.length, changed, skipped: result.skipped.length, notHandled: result.notHandled.length,
        written: result.written, failures,
      }, `${kind} pass${aborted ? ' stopped' : ''}: ${changed.length} namespace${changed.length === 1 ? '' : 's'} changed, ${failures.length} failure${failures.length === 1 ? '' : 's'}`);
      const status = `last ${kind} pass: ${result.namespaces.length} namespaces, ${changed.length} changed, ${failures.length} failed`;
      void notifier?.status(status);
      if (retriable.length === 0) return { status: 'ok' };
      return { status: 'failed', error: retriable.map((f) => `${f.namespace}: ${f.message}`).join('; ') };
    }

    /** Gauges of what is programmed, from the plan the pass worked to. */
    async function setProgrammed(programmed: Catalog, draining: number): Promise<void> {
      lastPlanned = programmed;
      const facts = await readNodeFacts(runDir, release());
      const plan = planNode(programmed, node, facts);
      const namespaces: Record<NamespaceKind, number> = { task: 0, host: 0, sandbox: 0 };
      let rules = 0;
      let services = 0;
      let active = 0;
      for (const ns of plan.namespaces) {
        namespaces[ns.role === 'task' ? 'task' : ns.role === 'host' ? 'host' : 'sandbox']++;
        for (const chain of ns.chains) rules += chain.rules.length;
        services += ns.ipvs.length;
        for (const vs of ns.ipvs) active += vs.realServers.length;
      }
      metrics.setProgrammed({ namespaces, iptablesRules: rules, ipvsServices: services, realServers: { active, draining } });
      metrics.setTasksServing(taskList(programmed).filter((task) => serves(programmed, task, node, facts.probes)).length);
    }

    // --- triggers: SIGHUP first, whose default action would end the process
    const onTriggerError = (message: string): void => log.warn({ component: 'trigger' }, message);
    const onTrigger = (reason: TriggerReason): void => {
      if (stopping) return;
      const seenAt = clock.now();
      switch (reason.trigger) {
        case 'catalog':
          if (source.kind === 'file') void serially('reloading the catalog', () => reloadCatalog(source.path, seenAt));
          return;
        case 'netns':
          void serially('looking for gone namespaces', async () => {
            await refreshGone();
            request(passKindFor(reason), reason.trigger);
          });
          return;
        default:
          request(passKindFor(reason), reason.trigger);
      }
    };
    const triggers: Trigger[] = [];
    const addTrigger = (trigger: Trigger): void => {
      triggers.push(trigger);
      closers.push({ what: 'a trigger', close: () => trigger.close() });
    };
    addTrigger(createSighupTrigger({ request: onTrigger, onError: onTriggerError }));
    abortedAtStart();

    // --- HTTP: early, so /livez and /metrics answer during a long first pass
    const http: AgentHttp = await startHttp({
      address: options.listen,
      metrics: {
        contentType: metrics.contentType,
        // The resolver's counters arrive on their own (onCounters above).
        scrape: () => metrics.scrape(),
      },
      health: () => {
        const status = runner?.status();
        return {
          lastSuccessfulSync: status?.lastSuccess, pendingSince: status?.pendingSince, currentTime: clock.now(),
          catalog: catalogHealth, source: sourceHealth,
        };
      },
      syncPeriodMs: options.syncPeriodMs,
      alive,
      onError: (error) => log.warn({ err: error.message }, 'HTTP server error'),
    });
    closers.push({ what: 'the HTTP server', close: () => http.close() });

    log.info({
      event: 'start', node, catalog: where, runDir, listen: `${http.address.host.includes(':') ? `[${http.address.host}]` : http.address.host}:${http.address.port}`,
      syncPeriodMs: options.syncPeriodMs, minSyncPeriodMs: options.minSyncPeriodMs,
    }, 'starting');

    // --- bind the resolver everywhere, then the first (full) pass
    gone = await findGone(catalog, node);
    metrics.countNamespacesGone(gone.size);
    for (const [task, netns] of gone) log.warn({ event: 'namespace-gone', task, netns }, `task ${task}: its namespace ${netns} is gone; it does not serve on this node`);
    recompute();
    await updateDns().catch((error: unknown) => {
      // A node too busy to bind every namespace in time (hundreds of namespaces, each a
      // helper process): the worker goes on binding and reports when done (onSync → a pass).
      if (!(error instanceof ResolverHostError && error.kind === 'timeout')) throw error;
      log.warn({ component: 'resolver', err: error.message }, 'the resolver is still binding its namespaces; starting without waiting for it');
    });
    abortedAtStart();

    notifier = createNotifier({
      env: options.env, pid: process.pid, clock, alive,
      connect: (socket) => createNotifySend(createRunner(), socket),
      onError: (message) => log.warn({ component: 'notify' }, message),
    });
    if (notifier.mode.state === 'on' && notifier.mode.watchdog.state === 'invalid') log.warn({ component: 'notify' }, notifier.mode.watchdog.problem);

    runner = createSyncRunner({ pass, clock, minIntervalMs: options.minSyncPeriodMs, maxIntervalMs: options.syncPeriodMs });
    const theRunner = runner;
    closers.push({ what: 'the runner', close: () => theRunner.stop() });
    theRunner.start();

    const onAbort = (): void => firstPass?.(false);
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const ok = await firstPassDone;
    options.signal?.removeEventListener('abort', onAbort);
    firstPass = undefined;
    abortedAtStart();
    await notifier.ready(ok ? 'first full pass done' : 'first full pass failed; retrying');

    // --- the other triggers, now that passes run
    if (source.kind === 'file') addTrigger(createCatalogTrigger({ path: source.path, clock, request: onTrigger, onError: onTriggerError }));
    else startCluster(source);
    addTrigger(createNetnsTrigger({ clock, request: onTrigger, onError: onTriggerError }));
    addTrigger(createRtnetlinkTrigger({ request: onTrigger, onError: onTriggerError, filter: (event) => mattersToNode(event, effective, node) }));
    await Promise.all(triggers.map((trigger) => trigger.ready));
    log.info({ event: 'ready' }, 'ready');

    /** The watch on PREFIX/v1/ and this node's lease: after the first pass, so a node is live once it is programmed. */
    function startCluster(etcd: Extract<AgentSource, { kind: 'etcd' }>): void {
      membership = joinCluster({
        client: etcd.client, prefix: etcd.prefix, node, ttlSeconds: etcd.leaseTtlSeconds, timers: clock,
        onEvent: (event) => {
          switch (event.kind) {
            case 'held':
              log.info({ event: 'lease', state: 'held', lease: event.lease, ttlSeconds: etcd.leaseTtlSeconds }, `holding the liveness lease of node ${node}`);
              return;
            case 'lost':
              log.warn({ event: 'lease', state: 'lost', err: event.error }, `the liveness lease of node ${node} was lost (${event.error}); granting another`);
              return;
            case 'grant-failed':
              log.warn({ event: 'lease', state: 'grant-failed', err: event.error }, `no liveness lease for node ${node} yet: ${event.error}`);
              return;
            case 'write-failed':
              log.warn({ event: 'lease', state: 'write-failed', err: event.error }, `publishing node ${node}'s liveness and probe results failed: ${event.error}; retrying`);
          }
        },
      });
      const joined = membership;
      closers.push({ what: 'the liveness lease', close: () => joined.stop() });
      publishHealth();
      const watch: ClusterWatch = watchCluster({
        client: etcd.client, prefix: etcd.prefix, initial: etcd.initial, timers: clock, onSnapshot,
        onSource: (state) => {
          sourceHealth = state;
          metrics.setCatalogSourceUp(state.state === 'up');
          if (state.state === 'up') log.info({ event: 'source', state: 'up' }, `${where} can be read again`);
          else log.warn({ event: 'source', state: 'down', err: state.error }, `${where} cannot be read (${state.error}); the last good catalog stays in force`);
        },
        onRelist: (reason, error) => log.info({ event: 'watch', relist: reason, err: error }, `the watch on ${where} ended (${reason}: ${error}); listing again`),
      });
      closers.push({ what: 'the etcd watch', close: () => watch.stop() });
    }

    let stopped: Promise<void> | undefined;
    return {
      address: http.address,
      stop(why) {
        stopped ??= (async () => {
          stopping = true;
          log.info({ event: 'stopping', why }, `stopping (${why})`);
          // The runner first: the pass in flight stops between namespaces; then the rest, last started first.
          await theRunner.stop();
          await queue;
          const lockCloser = closers.shift(); // the lock goes last, after the notify
          await closeAll();
          await notifier?.stopping('stopped; every rule stays in place');
          if (lockCloser !== undefined) await lockCloser.close();
          log.info({ event: 'stopped' }, 'stopped; every rule and IPVS service stays in place');
        })();
        return stopped;
      },
    };
  }
}

function reasonOf(verdict: Verdict): { reason?: string } {
  return verdict.state === 'unhealthy' ? { reason: verdict.reason } : {};
}

/**
 * The rtnetlink events that can change what a pass finds: an address of this
 * node, its sandbox or one of its tasks coming or going, and a veth into
 * another namespace coming, going or changing (its name is the runtime's, not
 * the catalog's, so the peer's namespace is what marks it).
 */
export function mattersToNode(event: RtnetlinkEvent, catalog: Catalog, node: string): boolean {
  // A link whose other end is in another namespace is a veth into a task, the
  // sandbox or a load balancer: its coming, going or changing is the datapath's.
  if (event.kind === 'link') return event.peerNetnsid !== undefined;
  if (event.address === undefined) return false;
  const self = catalog.nodes[node];
  if (self === undefined) return false;
  if (event.address === self.address || event.address === self.ingressSandbox?.address) return true;
  return Object.values(catalog.tasks).some((task) => task.node === node && Object.values(task.addresses).includes(event.address!));
}

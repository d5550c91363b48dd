// When local tasks are probed, and what their results mean (SPEC §1 "serves",
// §5 "Health probes"). Each task is probed every `interval` (the next probe is
// due an interval after the last one started, never before it ended);
// `retries` failures in a row make it unhealthy, one pass makes it healthy. A
// task serves only once a probe has passed, as Swarm waits for the first healthy
// event: until then it is `starting`. The first probe of each task falls at a
// random point of its first interval, so 200 tasks added at once are not probed
// at once. Probes fall on a grid (100 ms by default) with one timer per slot:
// at 100 probes/s the agent wakes ten times a second instead of a hundred,
// which costs it less than half the CPU (see bench/probes.ts). Every change of
// verdict is reported once, through onChange, and health.json follows (flush()
// waits for it). How a probe runs is the prober's business
// (kernel/probe-session.ts); time is the injected clock's.
import type { Catalog, Healthcheck } from '../catalog/types.js';
import { taskList } from '../catalog/task-list.js';
import type { ProbeOutcome, Prober } from '../kernel/probe-session.js';
import { writeProbes } from '../state/runtime.js';
import { compareText } from '../plan/marks.js';
import type { Clock } from './clock.js';

/** A local task of a service with a healthcheck. */
export interface ProbeTask {
  readonly name: string;
  readonly netns: string;
  /** Where tcp and http probes connect: the task's address on its first non-ingress network in name order. */
  readonly address: string;
  readonly healthcheck: Healthcheck;
}

/**
 * The tasks this node probes: its running tasks of services with a healthcheck.
 * tcp and http probes go to the task's address on its first non-ingress network
 * in name order (where load-balanced traffic reaches it), else its ingress
 * address, else 127.0.0.1 (a task with no address still has a loopback).
 */
export function probeTasks(catalog: Catalog, node: string): ProbeTask[] {
  const tasks: ProbeTask[] = [];
  for (const task of taskList(catalog)) {
    const healthcheck = task.service === undefined ? undefined : catalog.services[task.service]?.healthcheck;
    if (healthcheck === undefined || task.node !== node || task.state !== 'running') continue;
    const networks = Object.keys(task.addresses).sort(compareText);
    const network = networks.find((n) => catalog.networks[n]?.ingress === false) ?? networks[0];
    const address = (network === undefined ? undefined : task.addresses[network]) ?? '127.0.0.1';
    tasks.push({ name: task.name, netns: task.netns, address, healthcheck });
  }
  return tasks.sort((a, b) => compareText(a.name, b.name));
}

export type Verdict =
  /** No probe has passed yet (a new task, or one whose namespace came back): not serving. */
  | { readonly state: 'starting' }
  | { readonly state: 'healthy' }
  /** `retries` probes failed in a row; the reason is the last one's. */
  | { readonly state: 'unhealthy'; readonly reason: string }
  /** The task's namespace is gone; it serves again only after a probe passes. */
  | { readonly state: 'namespace-gone' };

export interface ProbeSchedulerOptions {
  readonly clock: Clock;
  readonly prober: Pick<Prober, 'probe' | 'retain'>;
  /** Called once per change of a task's verdict (not for tasks that come or go with update()). */
  readonly onChange: (task: string, verdict: Verdict) => void;
  /**
   * Counts each probe's result (vipmesh_probe_results_total). A vanished
   * namespace is neither: no probe ran against the task's server.
   */
  readonly countResult: (result: 'pass' | 'fail') => void;
  /** health.json is kept in this directory (the run dir). */
  readonly runDir: string;
  /** health.json could not be written; the next change tries again. */
  readonly onWriteError?: (error: Error) => void;
  /**
   * health.json as the previous agent left it: a task it found healthy starts
   * healthy (and needs `retries` failures to stop serving), so restarting the
   * agent does not drain every probed task until its first probe.
   */
  readonly previous?: ReadonlyMap<string, boolean>;
  /** In [0, 1): where in its first interval a task's first probe falls. */
  readonly random?: () => number;
  /** Probes start on multiples of this many ms (default 100); an interval shorter than it is probed every slot. */
  readonly gridMs?: number;
}

export interface ProbeScheduler {
  /** The local tasks with a healthcheck now. Unchanged tasks keep their verdict and schedule. */
  update(tasks: readonly ProbeTask[]): void;
  verdicts(): ReadonlyMap<string, Verdict>;
  /** Task → healthy, as health.json holds it and the planner reads it (`NodeFacts.probes`). */
  health(): ReadonlyMap<string, boolean>;
  /** Resolves once health.json says what health() says now. */
  flush(): Promise<void>;
  /** No probe starts after this; results still in flight are ignored. Resolves once health.json is written. */
  stop(): Promise<void>;
}

type Phase =
  | { readonly state: 'unscheduled' }
  | { readonly state: 'waiting'; readonly slot: number }
  | { readonly state: 'probing' };

interface Entry {
  task: ProbeTask;
  verdict: Verdict;
  /** Failed probes in a row. */
  failures: number;
  /** When the last probe started. */
  lastStart: number | undefined;
  phase: Phase;
}

const STARTING: Verdict = { state: 'starting' };
const HEALTHY: Verdict = { state: 'healthy' };
const GONE: Verdict = { state: 'namespace-gone' };

const describe = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/** The verdict after one more result. */
function judge(entry: Entry, outcome: ProbeOutcome): Verdict {
  switch (outcome.result) {
    case 'pass':
      entry.failures = 0;
      return HEALTHY;
    case 'namespace-gone':
      entry.failures = 0;
      return GONE;
    case 'fail':
      entry.failures++;
      if (entry.verdict.state === 'unhealthy' || entry.failures < entry.task.healthcheck.retries) return entry.verdict;
      return { state: 'unhealthy', reason: outcome.reason };
  }
}

export function createProbeScheduler(options: ProbeSchedulerOptions): ProbeScheduler {
  const { clock, prober, onChange, countResult, runDir } = options;
  const random = options.random ?? Math.random;
  const gridMs = options.gridMs ?? 100;
  if (!(gridMs > 0)) throw new RangeError(`gridMs must be a positive number of ms, not ${gridMs}`);
  let previous = options.previous;
  const entries = new Map<string, Entry>();
  let stopped = false;

  const health = (): Map<string, boolean> =>
    new Map([...entries].map(([name, entry]) => [name, entry.verdict.state === 'healthy']));

  // One write at a time; changes made during a write are written right after it.
  let dirty = false;
  let writer: Promise<void> | undefined;
  const persist = (): void => {
    dirty = true;
    writer ??= (async () => {
      while (dirty) {
        dirty = false;
        try {
          await writeProbes(runDir, health());
        } catch (error) {
          options.onWriteError?.(error instanceof Error ? error : new Error(String(error)));
        }
      }
      writer = undefined;
    })();
  };

  // Slot time → the tasks due then, and the one timer that starts them.
  const slots = new Map<number, { readonly due: Set<Entry>; readonly cancel: () => void }>();

  const cancel = (entry: Entry): void => {
    if (entry.phase.state !== 'waiting') return;
    const slot = slots.get(entry.phase.slot);
    slot?.due.delete(entry);
    if (slot?.due.size === 0) {
      slot.cancel();
      slots.delete(entry.phase.slot);
    }
    entry.phase = { state: 'unscheduled' };
  };

  const schedule = (entry: Entry, at: number): void => {
    cancel(entry);
    const time = Math.ceil(at / gridMs) * gridMs;
    let slot = slots.get(time);
    if (slot === undefined) {
      slot = { due: new Set(), cancel: clock.setTimer(() => fireSlot(time), Math.max(0, time - clock.now())) };
      slots.set(time, slot);
    }
    slot.due.add(entry);
    entry.phase = { state: 'waiting', slot: time };
  };

  function fireSlot(time: number): void {
    const slot = slots.get(time);
    slots.delete(time);
    for (const entry of slot?.due ?? []) fire(entry, time);
  }

  const firstAt = (task: ProbeTask): number => clock.now() + Math.floor(random() * task.healthcheck.intervalMs);

  const current = (entry: Entry): boolean => !stopped && entries.get(entry.task.name) === entry;

  /** `since` is the slot's time, not the moment the timer ran, so the schedule keeps to its grid. */
  function fire(entry: Entry, since: number): void {
    if (!current(entry)) return;
    const { task } = entry;
    entry.lastStart = since;
    entry.phase = { state: 'probing' };
    void Promise.resolve()
      .then(() => prober.probe({ netns: task.netns, address: task.address, probe: task.healthcheck.probe, timeoutMs: task.healthcheck.timeoutMs }))
      .catch((error: unknown): ProbeOutcome => ({ result: 'fail', reason: describe(error) }))
      .then((outcome) => settle(entry, since, outcome));
  }

  function settle(entry: Entry, since: number, outcome: ProbeOutcome): void {
    if (!current(entry)) return;
    if (outcome.result !== 'namespace-gone') countResult(outcome.result);
    const before = entry.verdict;
    entry.verdict = judge(entry, outcome);
    // The next probe is set before anyone hears of this one: a throwing listener must not end the schedule.
    schedule(entry, Math.max(clock.now(), since + entry.task.healthcheck.intervalMs));
    if (entry.verdict.state === before.state) return;
    if ((entry.verdict.state === 'healthy') !== (before.state === 'healthy')) persist();
    onChange(entry.task.name, entry.verdict);
  }

  function add(task: ProbeTask, verdict: Verdict): Entry {
    const entry: Entry = { task, verdict, failures: 0, lastStart: undefined, phase: { state: 'unscheduled' } };
    entries.set(task.name, entry);
    schedule(entry, firstAt(task));
    return entry;
  }

  return {
    update(tasks) {
      if (stopped) return;
      const wanted = new Map(tasks.map((task) => [task.name, task]));
      const changes: [string, Verdict][] = [];
      let changed = false;
      for (const [name, entry] of entries) {
        if (wanted.has(name)) continue;
        cancel(entry);
        entries.delete(name);
        changed = true;
      }
      for (const task of wanted.values()) {
        const entry = entries.get(task.name);
        if (entry === undefined) {
          add(task, previous?.get(task.name) === true ? HEALTHY : STARTING);
          changed = true;
        } else if (entry.task.netns !== task.netns) {
          // Another namespace is another container: it must pass on its own.
          cancel(entry);
          add(task, STARTING);
          changed = true;
          if (entry.verdict.state !== 'starting') changes.push([task.name, STARTING]);
        } else {
          const interval = entry.task.healthcheck.intervalMs;
          entry.task = task;
          if (task.healthcheck.intervalMs !== interval && entry.phase.state === 'waiting') {
            schedule(entry, entry.lastStart === undefined ? firstAt(task) : Math.max(clock.now(), entry.lastStart + task.healthcheck.intervalMs));
          }
        }
      }
      // Only the first catalog speaks for the tasks the previous agent probed.
      previous = undefined;
      if (changed) persist();
      void prober.retain(new Set(tasks.map((task) => task.netns))).catch(() => {});
      for (const [name, verdict] of changes) onChange(name, verdict);
    },

    verdicts: () => new Map([...entries].map(([name, entry]) => [name, entry.verdict])),

    health,

    flush: () => writer ?? Promise.resolve(),

    async stop() {
      stopped = true;
      for (const entry of entries.values()) cancel(entry);
      await (writer ?? Promise.resolve());
    },
  };
}

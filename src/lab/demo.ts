// `vipmesh lab demo` on a kernel with IPVS (and inside the kernel-lane guest):
// up, then from the client task what seed article 003 shows with Docker — `dig
// whoami` is the VIP, `dig tasks.whoami` the task addresses, requests through
// the VIP spread over every task — and from outside, the published port on
// every node; each fact checked; then, always, down.
import { execa } from 'execa';
import { type DemoPlan, type Fact, type Step, commentText, demoPlan, dnsrrFact, publishedFact, spreadFact, tasksFact, transcriptText, vipFact } from './facts.js';
import { downLab } from './down.js';
import { HOST_PACE, type Pace } from './pace.js';
import { missingTools } from './tools.js';
import { summary, upLab } from './up.js';

export interface DemoOptions {
  readonly catalogPath: string;
  readonly etcd: boolean;
  readonly runDir: string;
  readonly out: (text: string) => void;
  /** Default: HOST_PACE. */
  readonly pace?: Pace;
}

/** Runs one command inside a namespace; its output lines, stderr included (what a terminal would show). */
async function run(ns: string, argv: readonly string[], signal: AbortSignal): Promise<string[]> {
  const r = await execa('ip', ['netns', 'exec', ns, ...argv], { reject: false, all: true, cancelSignal: signal, timeout: 60_000 });
  const lines = String(r.all ?? '').split('\n').filter((l) => l.trim() !== '');
  if (r.exitCode !== 0) lines.push(`(exit ${r.exitCode ?? r.signal ?? '?'})`);
  return lines;
}


async function show(plan: DemoPlan, pace: Pace, out: (text: string) => void, signal: AbortSignal): Promise<Fact[]> {
  const facts: Fact[] = [];
  const curl = (url: string): string[] => ['curl', '-sS', '-m', String(pace.requestTimeoutS), url];
  const client = plan.client.ns;
  const step = async (command: readonly string[], ns = client): Promise<Step> => {
    const s = { command: `ip netns exec ${ns} ${command.join(' ')}`, output: await run(ns, command, signal) };
    out(transcriptText(s));
    return s;
  };
  out(commentText(`from task ${plan.client.task}: the embedded DNS answers ${plan.service} with its VIP`));
  facts.push(vipFact(plan, (await step(['dig', '+short', plan.service])).output));
  out(commentText(`and tasks.${plan.service} with every task's address`));
  facts.push(tasksFact(plan, (await step(['dig', '+short', `tasks.${plan.service}`])).output));
  if (plan.dnsrr !== undefined) {
    out(commentText(`${plan.dnsrr.service} is in dnsrr mode: its name answers the task addresses (each passed its tcp probe)`));
    facts.push(dnsrrFact(plan, (await step(['dig', '+short', plan.dnsrr.service])).output)!);
  }
  out(commentText(`${plan.requests} requests to http://${plan.service}/ by name, through the VIP: each answer is "task, its address, the client it saw"`));
  const command = curl(`http://${plan.service}/`);
  const answers: string[] = [];
  for (let i = 0; i < plan.requests; i++) answers.push(...(await run(client, command, signal)));
  const loop: Step = { command: `for i in $(seq ${plan.requests}); do ip netns exec ${client} ${command.join(' ')}; done`, output: answers };
  out(transcriptText(loop));
  facts.push(spreadFact(plan, answers));
  if (plan.published !== undefined) {
    out(commentText(`from outside every node: the published port ${plan.published.port} on each node, through the routing mesh`));
    for (const node of plan.published.nodes) {
      const s = await step(curl(`http://${node.address}:${plan.published.port}/`), plan.published.outside);
      facts.push(publishedFact(plan, node, s.output));
    }
  }
  return facts;
}

/** Up, show, check, down (also on SIGINT/SIGTERM). 0 when every fact held. */
export async function runDemo(options: DemoOptions): Promise<number> {
  const { out } = options;
  const stop = new AbortController();
  const onSignal = (signal: NodeJS.Signals): void => {
    out(`\n${signal}: stopping, taking the lab down\n`);
    stop.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let status = 1;
  // A lab that was up already is not the demo's: it is left alone.
  let made = false;
  try {
    status = await upAndShow(options, stop.signal, () => { made = true; });
  } catch (error) {
    out(stop.signal.aborted ? 'stopped\n' : `the demo failed: ${(error as Error).message}\n`);
    status = 1;
  } finally {
    if (made) {
      out('$ vipmesh lab down\n');
      const down = await downLab(options.runDir);
      out(`${down.message}\n`);
      if (down.status === 'partial') status = 1;
    }
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return stop.signal.aborted ? 1 : status;
}

async function upAndShow(options: DemoOptions, signal: AbortSignal, making: () => void): Promise<number> {
  const { out } = options;
  const missing = await missingTools(['dig', 'curl']);
  if (missing !== undefined) {
    out(`vipmesh: the demo asks as an operator would: ${missing}\n`);
    return 2;
  }
  out(`$ vipmesh lab up -c ${options.catalogPath}${options.etcd ? ' --etcd' : ''}\n`);
  const up = await upLab({
    catalogPath: options.catalogPath, etcd: options.etcd, runDir: options.runDir, signal,
    say: (line) => out(`${line}\n`), onMaking: making,
    ...(options.pace === undefined ? {} : { pace: options.pace }),
  });
  if (up.status === 'refused') {
    out(`vipmesh: ${up.message}\n`);
    return 2;
  }
  if (up.status === 'failed') {
    out(`lab up failed: ${up.message}\n`);
    return 1;
  }
  out(summary(up.lab));
  const planned = demoPlan(up.lab.catalog, up.lab.topology);
  if (!planned.ok) {
    out(`the demo cannot run on this catalog: ${planned.problem}\n`);
    return 1;
  }
  const facts = await show(planned.plan, options.pace ?? HOST_PACE, out, signal);
  out('\n');
  for (const f of facts) out(`${f.ok ? 'ok' : 'FAILED'}: ${f.text}\n`);
  const failed = facts.filter((f) => !f.ok).length;
  out(failed === 0 ? `ok: all ${facts.length} facts hold\n` : `FAILED: ${failed} of ${facts.length} facts\n`);
  return failed === 0 ? 0 : 1;
}

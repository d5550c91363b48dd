// `npm run bench`: every benchmark in one run, printed and written to
// BENCHMARKS.md with the date and the machine. Needs root (namespaces), the
// system packages of scripts/install-system-deps.sh, and ~15 minutes (the lb
// section alone, per-task mode at K=200 in the kernel lane, up to an hour more).
//   node dist/bench/index.js [--only plan,reconcile,ipvs,lb,resolver,codec,probes,agent,cluster,incremental] [--out FILE]
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { runAgentBench } from './agent.js';
import { runClusterBench } from './cluster.js';
import { runDnsCodecBench } from './dns-codec.js';
import { runIncrementalBench } from './incremental.js';
import { runIpvsBench } from './ipvs.js';
import { runLbModeBench } from './lb-mode.js';
import { machine } from './lab.js';
import { runPlanBench } from './plan.js';
import { runProbesBench } from './probes.js';
import { runReconcileBench } from './reconcile.js';
import { runResolverBench } from './resolver.js';

interface Section {
  readonly key: string;
  readonly title: string;
  readonly run: () => Promise<{ markdown: string }>;
}

const SECTIONS: readonly Section[] = [
  { key: 'plan', title: 'Plan: load, validate, plan and render', run: () => runPlanBench() },
  { key: 'reconcile', title: 'Reconcile on this kernel: vipmesh, the floor and Docker\'s way', run: () => runReconcileBench() },
  { key: 'ipvs', title: 'IPVS in the kernel lane', run: () => runIpvsBench() },
  { key: 'lb', title: 'Load-balancer mode', run: () => runLbModeBench() },
  { key: 'resolver', title: 'Resolver: vipmesh against dnsmasq (dnsperf)', run: () => runResolverBench() },
  { key: 'codec', title: 'DNS wire path: dns-packet against the hand-written encoder', run: () => runDnsCodecBench() },
  { key: 'probes', title: 'Health probes: 200 namespaces probed every 2 s', run: () => runProbesBench() },
  { key: 'agent', title: 'Agent', run: () => runAgentBench() },
  { key: 'cluster', title: 'Cluster catalog on etcd', run: () => runClusterBench() },
  { key: 'incremental', title: 'One change at 10 000 services: incremental against full', run: () => runIncrementalBench() },
];

function option(name: string): string | undefined {
  const at = process.argv.indexOf(name);
  return at < 0 ? undefined : process.argv[at + 1];
}

async function main(): Promise<number> {
  const only = option('--only')?.split(',');
  const out = option('--out') ?? fileURLToPath(new URL('../../BENCHMARKS.md', import.meta.url));
  const picked = SECTIONS.filter((s) => only === undefined || only.includes(s.key));
  const started = new Date();
  const parts: string[] = [
    '# Benchmarks',
    '',
    `Latest run: ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC on ${await machine()}.`,
    `Made by \`sudo npm run bench\` (\`node dist/bench/index.js${only ? ` --only ${only.join(',')}` : ''}\`); each section names the command that reproduces it alone. ` +
      'Numbers, not tests: the test suite never checks timings.',
  ];
  let failed = 0;
  for (const section of picked) {
    process.stderr.write(`bench: ${section.key}...\n`);
    const t = performance.now();
    let body: string;
    try {
      body = (await section.run()).markdown;
    } catch (error) {
      failed++;
      body = `**Did not run:** ${(error as Error).message}`;
    }
    process.stderr.write(`bench: ${section.key} took ${((performance.now() - t) / 1000).toFixed(0)} s\n`);
    parts.push('', `## ${section.title}`, '', body);
  }
  const text = parts.join('\n') + '\n';
  process.stdout.write(text);
  await writeFile(out, text);
  process.stderr.write(`bench: wrote ${out}\n`);
  return failed === 0 ? 0 : 1;
}

process.exitCode = await main();

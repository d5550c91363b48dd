// `vipmesh lab up|down|demo` (SPEC §7). The lab's modules load only when one of
// these runs, so every other command starts as fast as before.
import type { Command } from 'commander';
import { UsageError } from './errors.js';
import { currentCredentials, privilegeProblem } from './privileges.js';

const RUN_DIR_HELP = 'where the lab keeps its journal, logs and agents\' state';

function requireRoot(verb: string): void {
  const problem = privilegeProblem(verb, currentCredentials());
  if (problem !== undefined) throw new UsageError(problem.replace(/; nothing was done$/, '; nothing was made'));
}

/** -c, else the package's fixtures/lab.yaml, which only a checkout has (npm packs dist/src only). */
async function catalogOf(option: string | undefined): Promise<string> {
  const [{ resolve }, { existsSync }, { DEFAULT_LAB_CATALOG }] = await Promise.all([import('node:path'), import('node:fs'), import('../lab/paths.js')]);
  if (option !== undefined) return resolve(option);
  if (!existsSync(DEFAULT_LAB_CATALOG)) throw new UsageError(`the default lab catalog ${DEFAULT_LAB_CATALOG} is not in this installation (it is in a checkout of vipmesh); pass -c CATALOG`);
  return DEFAULT_LAB_CATALOG;
}

const write = (text: string): void => {
  process.stdout.write(text);
};

export function labCommand(program: Command): Command {
  const lab = program.command('lab').description('a whole cluster in namespaces on this machine: the catalog\'s nodes, tasks and agents (SPEC §7)');

  lab.command('up')
    .description('build the catalog\'s cluster in namespaces, start a whoami server per task and an agent per node; leave it running')
    .option('-c, --catalog <file>', 'the catalog (default: the package\'s fixtures/lab.yaml)')
    .option('--etcd', 'start an etcd for the lab, push the catalog into it, and have the agents read it from there')
    .option('--run-dir <dir>', RUN_DIR_HELP, '/run/vipmesh-lab')
    .action(async (options: { catalog?: string; etcd?: boolean; runDir: string }) => {
      requireRoot('lab up');
      const catalogPath = await catalogOf(options.catalog);
      const [{ upLab, summary }, { downLab }] = await Promise.all([import('../lab/up.js'), import('../lab/down.js')]);
      const stop = new AbortController();
      const onSignal = (): void => stop.abort();
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      try {
        const result = await upLab({
          catalogPath, etcd: options.etcd === true, runDir: options.runDir,
          say: (line) => write(`${line}\n`), signal: stop.signal,
        });
        if (result.status === 'refused') throw new UsageError(result.message);
        if (result.status === 'up') {
          write(summary(result.lab));
          const { kernelHasIpvs } = await import('../lab/lane.js');
          if (!(await kernelHasIpvs())) {
            write('note: this kernel has no IPVS: DNS answers, but VIPs and published ports carry no traffic here (`vipmesh lab demo` runs in the kernel-lane guest instead)\n');
          }
          return;
        }
        process.stderr.write(`vipmesh: lab up failed: ${result.message}\nremoving what was made\n`);
        const down = await downLab(options.runDir);
        process.stderr.write(`${down.message}\n`);
        process.exitCode = 1;
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });

  lab.command('down')
    .description('stop the lab\'s processes and remove its namespaces, /etc/netns entries and run directory')
    .option('--run-dir <dir>', RUN_DIR_HELP, '/run/vipmesh-lab')
    .action(async (options: { runDir: string }) => {
      requireRoot('lab down');
      const { downLab } = await import('../lab/down.js');
      const result = await downLab(options.runDir);
      write(`${result.message}\n`);
      if (result.status === 'partial') process.exitCode = 1;
    });

  lab.command('demo')
    .description('lab up, then show and check what seed article 003 shows with Docker (dig, requests through the VIP, the published port), then lab down')
    .option('-c, --catalog <file>', 'the catalog (default: the package\'s fixtures/lab.yaml)')
    .option('--etcd', 'the agents read the catalog from an etcd started for the lab')
    .option('--run-dir <dir>', RUN_DIR_HELP, '/run/vipmesh-lab')
    .action(async (options: { catalog?: string; etcd?: boolean; runDir: string }) => {
      requireRoot('lab demo');
      const catalogPath = await catalogOf(options.catalog);
      const { kernelHasIpvs, demoInGuest } = await import('../lab/lane.js');
      if (!(await kernelHasIpvs())) {
        process.exitCode = await demoInGuest({ catalogPath, etcd: options.etcd === true, out: write, err: (text) => process.stderr.write(text) });
        return;
      }
      const { runDemo } = await import('../lab/demo.js');
      process.exitCode = await runDemo({ catalogPath, etcd: options.etcd === true, runDir: options.runDir, out: write });
    });
  return lab;
}

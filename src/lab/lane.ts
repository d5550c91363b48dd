// `lab demo` where this kernel has no IPVS: the same demo inside the kernel-lane
// guest (test/lane/run.sh boots Debian's cloud kernel under QEMU with this
// checkout's dist/ and fixtures/, and runs dist/src/lab/guest.js there). The
// guest prints its demo between two marker lines; only those lines are shown
// here, and the guest's exit status is the demo's.
import { existsSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { delimiter, dirname, relative, sep } from 'node:path';
import { execa } from 'execa';
import { LANE_SCRIPT, PACKAGE_ROOT } from './paths.js';
import { inNs, sh } from './plumbing.js';

export const DEMO_BEGIN = 'VIPMESH-LAB-DEMO-BEGIN';
export const DEMO_END = 'VIPMESH-LAB-DEMO-END';

/** Whether this kernel has IPVS, asked in a throwaway namespace (loading ip_vs if it is a module). */
export async function kernelHasIpvs(): Promise<boolean> {
  const probe = await execa('ipvsadm', ['--version'], { reject: false });
  if (probe.failed && probe.exitCode === undefined) throw new Error('ipvsadm is not installed (the agents need it: apt-get install ipvsadm)');
  const name = `vipmesh-lab-ipvs-probe-${process.pid}`;
  await sh('ip', ['netns', 'add', name]);
  try {
    const listed = await inNs(name, 'ipvsadm', ['-Ln']).then(() => undefined, (error: Error) => error);
    if (listed === undefined) return true;
    if (/Can't initialize ipvs|Protocol not available/.test(listed.message)) return false;
    throw new Error(`cannot tell whether this kernel has IPVS: ${listed.message}`);
  } finally {
    await execa('ip', ['netns', 'delete', name], { reject: false });
  }
}

/** Guest console lines that are kernel messages, not the demo's. */
const KERNEL_LINE = /^\[\s*\d+\.\d+\]/;

/** The process and every descendant of it (qemu runs under `timeout`, in a process group of its own). */
async function descendants(pid: number): Promise<number[]> {
  const parents = new Map<number, number[]>();
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => '');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (!parents.has(ppid)) parents.set(ppid, []);
    parents.get(ppid)!.push(Number(name));
  }
  const out: number[] = [];
  const walk = (p: number): void => {
    out.push(p);
    for (const child of parents.get(p) ?? []) walk(child);
  };
  walk(pid);
  return out;
}

export interface GuestDemoOptions {
  readonly catalogPath: string;
  readonly etcd: boolean;
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
}

/** Runs the demo in the guest; its exit status. */
export async function demoInGuest(options: GuestDemoOptions): Promise<number> {
  const { out, err } = options;
  out("this kernel has no IPVS: running the demo inside the kernel-lane guest (Debian's cloud kernel under QEMU); the first run downloads it\n");
  if (!existsSync(LANE_SCRIPT)) {
    err(`vipmesh: the kernel lane (${LANE_SCRIPT}) is only in a checkout of vipmesh: run the demo from one (after npm run build), or on a kernel with IPVS\n`);
    return 2;
  }
  const inPackage = relative(PACKAGE_ROOT, options.catalogPath);
  if (inPackage.startsWith('..') || !inPackage.startsWith(`fixtures${sep}`) || /[^A-Za-z0-9_./-]/.test(inPackage)) {
    err(`vipmesh: the guest has only this checkout's dist/ and fixtures/: put the catalog under ${PACKAGE_ROOT}/fixtures/ (${options.catalogPath} is not)\n`);
    return 2;
  }
  const append = [`vipmesh_lab_catalog=${inPackage}`, ...(options.etcd ? ['vipmesh_lab_etcd=1'] : [])].join(' ');
  // cleanup: false: on SIGINT/SIGTERM, `stop` below ends the lane (qemu included); execa's
  // own exit hook would only signal bash and then end this process before that is done.
  const child = execa('bash', [LANE_SCRIPT], {
    reject: false, cleanup: false, stdin: 'ignore', buffer: false, stderr: 'pipe', stdout: 'pipe',
    env: {
      VIPMESH_LANE_RUN: 'dist/src/lab/guest.js', VIPMESH_LANE_APPEND: append,
      // The guest gets the `node` build.sh finds on PATH: make it this one.
      PATH: `${dirname(process.execPath)}${delimiter}${process.env['PATH'] ?? ''}`,
    },
  });
  let stopped: string | undefined;
  /** SIGTERM to run.sh and everything under it (timeout hands it on to qemu), SIGKILL to what is left after 10 s. */
  const stop = (signal: NodeJS.Signals): void => {
    if (child.pid === undefined || stopped !== undefined) return;
    stopped = signal;
    err(`vipmesh: ${signal}: stopping the kernel-lane guest\n`);
    const send = (pids: readonly number[], sig: NodeJS.Signals): void => {
      for (const pid of pids) {
        try {
          process.kill(pid, sig);
        } catch {
          // gone
        }
      }
    };
    void descendants(child.pid).then((pids) => {
      send([...pids].reverse(), 'SIGTERM');
      setTimeout(() => send(pids, 'SIGKILL'), 10_000).unref();
    });
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  let inside = false;
  let began = false;
  let ended = false;
  let partial = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    partial += chunk.toString();
    let nl;
    while ((nl = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      if (line === DEMO_BEGIN) [inside, began] = [true, true];
      else if (line === DEMO_END) [inside, ended] = [false, true];
      else if (inside && !KERNEL_LINE.test(line)) out(`${line}\n`);
    }
  });
  // The lane's own progress (building the guest, downloading the kernel), as it comes.
  child.stderr?.on('data', (chunk: Buffer) => err(chunk.toString()));
  const result = await child;
  process.off('SIGINT', stop);
  process.off('SIGTERM', stop);
  const status = result.exitCode ?? 1;
  if (stopped !== undefined) {
    err(`vipmesh: the demo was stopped (${stopped}); the guest and its lab are gone with it\n`);
    return 1;
  }
  if (!began || !ended) {
    err(`vipmesh: the guest ${began ? 'stopped in the middle of the demo' : 'never started the demo'} (lane exit ${status}); its console is in ${PACKAGE_ROOT}/.cache/kernel-lane/console.log\n`);
    return status === 0 ? 1 : status;
  }
  return status;
}

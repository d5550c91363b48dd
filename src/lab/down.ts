// `vipmesh lab down` (SPEC §7): removes every trace of the lab its run directory's
// journal records — processes (only those whose pid still names the process
// started, plus any carrying the lab's marker that never reached the journal),
// namespaces with their links, /etc/netns entries, etcd's data, the run
// directory. Idempotent: a second run, or one with no lab up, finds nothing.
import { readdir, rm, rmdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { readJournal } from './journal.js';
import { removeMade } from './plumbing.js';
import { markedProcesses, stopProcesses } from './processes.js';

export type DownResult =
  | { readonly status: 'nothing'; readonly message: string }
  | { readonly status: 'down'; readonly message: string }
  /** Some things could not be removed; each is named. */
  | { readonly status: 'partial'; readonly message: string };

export async function downLab(runDirText: string, options: { readonly graceMs?: number } = {}): Promise<DownResult> {
  const runDir = resolve(runDirText);
  const state = await readJournal(runDir);
  if (state === undefined) {
    // `lab up` killed between making the directory and its first line: nothing else can exist,
    // but its processes would carry the marker, so look for those anyway.
    const stray = await stopProcesses(await markedProcesses(runDir), options.graceMs);
    const empty = (await readdir(runDir).catch(() => undefined))?.length === 0;
    if (empty) await rmdir(runDir).catch(() => undefined);
    return { status: 'nothing', message: `no lab is up (no journal in ${runDir})${stray > 0 ? `; stopped ${stray} stray process${stray === 1 ? '' : 'es'} of it` : ''}` };
  }
  const stopped = await stopProcesses(state.processes, options.graceMs);
  // Started but not yet on the journal when `lab up` was killed, or children of what was.
  const strays = await stopProcesses(await markedProcesses(runDir), options.graceMs);
  const failed = await removeMade([...state.made].reverse());
  const namespaces = state.made.filter((m) => m.kind === 'netns').length;
  const problems = failed.map((f) => `${f.made.kind === 'netns' ? `namespace ${f.made.name}` : `/etc/netns/${f.made.name}`}: ${f.error}`);
  for (const dir of state.dirs) {
    await rm(dir, { recursive: true, force: true }).catch((error: unknown) => problems.push(`${dir}: ${(error as Error).message}`));
  }
  if (problems.length === 0) await rm(runDir, { recursive: true, force: true }).catch((error: unknown) => problems.push(`${runDir}: ${(error as Error).message}`));
  const done = `stopped ${stopped + strays} process${stopped + strays === 1 ? '' : 'es'}, removed ${namespaces} namespace${namespaces === 1 ? '' : 's'}`;
  if (problems.length > 0) {
    return { status: 'partial', message: `the lab in ${runDir} is down only in part (${done}); left, with why:\n${problems.map((p) => `  ${p}`).join('\n')}\nthe journal stays: run \`vipmesh lab down\` again once that is fixed` };
  }
  return { status: 'down', message: `the lab is down: ${done}, its /etc/netns entries and ${runDir}` };
}

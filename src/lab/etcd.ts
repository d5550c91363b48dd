// The lab's etcd (`lab up --etcd`): one member of Debian's etcd on free loopback
// ports, its data in the run directory, and the catalog pushed into it with the
// same code as `vipmesh catalog push`, so the agents read the cluster catalog
// exactly as on real nodes.
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { parseCatalogText } from '../catalog/load.js';
import { entriesOf } from '../cluster/layout.js';
import { parseSource } from '../cluster/source.js';
import type { LabJournal } from './journal.js';
import { startDetached } from './processes.js';
import { type Wait, pause } from './wait.js';

export const LAB_PREFIX_KEY = '/vipmesh-lab';

/**
 * A port free now, below the kernel's ephemeral range (32768–60999 by default),
 * so no client's source port takes it while etcd starts, nor later when a
 * member is restarted on it (the cluster tests stop and start members).
 */
export async function freePort(taken: Set<number>): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (taken.has(port)) continue;
    const free = await new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
    if (free) {
      taken.add(port);
      return port;
    }
  }
  throw new Error('no free loopback port between 20000 and 32000');
}


/** Starts etcd, pushes the catalog file into it; returns the agents' source (etcd://…/vipmesh-lab). */
export async function startLabEtcd(journal: LabJournal, catalogPath: string, taken: Set<number>, wait: Wait): Promise<string> {
  const dataDir = join(journal.dir, 'etcd');
  await journal.write({ kind: 'dir', path: dataDir });
  const client = await freePort(taken);
  const peer = await freePort(taken);
  const log = join(journal.dir, 'etcd.log');
  const started = await startDetached('etcd', [
    '--name', 'lab', '--data-dir', dataDir,
    '--listen-client-urls', `http://127.0.0.1:${client}`, '--advertise-client-urls', `http://127.0.0.1:${client}`,
    '--listen-peer-urls', `http://127.0.0.1:${peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`,
    '--initial-cluster', `lab=http://127.0.0.1:${peer}`, '--initial-cluster-state', 'new',
    '--logger', 'zap', '--log-level', 'warn',
  ], { log, runDir: journal.dir });
  await journal.write({ kind: 'process', role: 'etcd', name: 'etcd', pid: started.pid, start: started.start, log, listen: `127.0.0.1:${client}` });

  const text = `etcd://127.0.0.1:${client}${LAB_PREFIX_KEY}`;
  const parsed = parseSource(text);
  if (!parsed.ok || parsed.source.kind !== 'etcd') throw new Error(parsed.ok ? `${text} is not an etcd source` : parsed.message);
  const source = parsed.source;
  const catalog = parseCatalogText(await readFile(catalogPath, 'utf8'));
  if (!catalog.result.ok) throw new Error(`${catalogPath} is not a valid catalog`);
  const want = entriesOf(source.prefix, catalog.document);
  // Loaded here only: etcd3 and gRPC take a good part of a second to load.
  const [{ withEtcd }, { pushEntries }] = await Promise.all([import('../cluster/read.js'), import('../cluster/push.js')]);
  let exited: string | undefined;
  void started.exited.then((how) => { exited = how; });
  for (;;) {
    try {
      await withEtcd(source, {}, (c) => pushEntries(c, source, want));
      return text;
    } catch (error) {
      if (exited !== undefined) throw new Error(`etcd exited (${exited}) before the catalog could be pushed; see ${log}`);
      if (Date.now() > wait.deadline) throw new Error(`cannot push the catalog to the lab's etcd: ${(error as Error).message}; see ${log}`);
      await pause(wait, 300);
    }
  }
}

// `vipmesh catalog push FILE --to SOURCE` and `vipmesh catalog show --from
// SOURCE` (SPEC §6): the cluster catalog in etcd, put there from a file and
// read back as one. Push validates exactly as `-c FILE` does and writes nothing
// unless the whole file is valid; show prints what etcd holds even when the
// union is invalid (that is when an operator needs to see it), then exits 2
// with every problem on stderr.
import { hostname } from 'node:os';
import { type Command, Option } from 'commander';
import { stringify } from 'yaml';
import { type LoadResult, parseCatalogText, readCatalogFile, unreadableCatalog } from '../catalog/load.js';
import { formatProblems } from '../catalog/problems.js';
import type { Catalog } from '../catalog/types.js';
import type { EtcdSource, EtcdTlsFiles } from '../cluster/connect.js';
import { assemble, COLLECTIONS, entriesOf } from '../cluster/layout.js';
import type { SourceCatalog } from '../cluster/read.js';
import { parseSource } from '../cluster/source.js';
import { printablePath } from '../render/plan.js';
import { EXIT, UsageError } from './errors.js';

/** The --etcd-ca/--etcd-cert/--etcd-key flags as commander hands them over. */
export interface EtcdFlags {
  etcdCa?: string;
  etcdCert?: string;
  etcdKey?: string;
}

export function withEtcdFlags(command: Command): Command {
  return command
    .option('--etcd-ca <file>', 'etcds://: the CA certificate (PEM) that signed the etcd members\' certificates')
    .option('--etcd-cert <file>', 'etcds://: this client\'s certificate (PEM)')
    .option('--etcd-key <file>', 'etcds://: the key (PEM) of --etcd-cert');
}

export function tlsOf(flags: EtcdFlags): EtcdTlsFiles {
  return {
    ...(flags.etcdCa === undefined ? {} : { ca: flags.etcdCa }),
    ...(flags.etcdCert === undefined ? {} : { cert: flags.etcdCert }),
    ...(flags.etcdKey === undefined ? {} : { key: flags.etcdKey }),
  };
}

/** An etcd source for --to/--from: a file there is a usage error (cp copies files). */
function etcdSourceOf(text: string, flag: string): EtcdSource {
  const parsed = parseSource(text);
  if (!parsed.ok) throw new UsageError(parsed.message);
  if (parsed.source.kind !== 'etcd') throw new UsageError(`${flag} ${printablePath(text)}: ${flag} takes etcd://HOST:PORT[,HOST:PORT…]/PREFIX or etcds://…, not a file`);
  return parsed.source;
}

type EtcdModules = [typeof import('../cluster/connect.js'), typeof import('../cluster/read.js'), typeof import('../cluster/push.js')];

/**
 * The etcd client loads only when a command reaches etcd: gRPC takes a good
 * part of a second to load, which a command on a file catalog should not pay.
 * Its errors (flags, PEM files, an unreachable or refusing store) are usage
 * errors: one line, exit 2, nothing read or written.
 */
async function usingEtcd<T>(use: (...modules: EtcdModules) => Promise<T>): Promise<T> {
  const modules: EtcdModules = await Promise.all([import('../cluster/connect.js'), import('../cluster/read.js'), import('../cluster/push.js')]);
  const [connect, read] = modules;
  try {
    return await use(...modules);
  } catch (error) {
    if (error instanceof connect.EtcdSetupError || error instanceof read.EtcdSourceError) throw new UsageError(error.message, { cause: error });
    throw error;
  }
}

/** The catalog an etcd source holds (`-c etcd://…`), with the revision it was read at. */
export async function readEtcdCatalog(source: EtcdSource, flags: EtcdFlags): Promise<SourceCatalog> {
  return usingEtcd((_connect, read) => read.readCatalogSource(source, tlsOf(flags)));
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

export function invalidText(what: string, result: Extract<LoadResult, { ok: false }>, consequence: string): string {
  return `${what} is not a valid catalog (${plural(result.problems.length, 'problem')}); ${consequence}:\n${formatProblems(result.problems)}`;
}

/**
 * The catalog for this node (--node, else the host name), or the UsageError that says why
 * not: the catalog is invalid (`what` names it), or it has no such node (`source` as given).
 */
export function catalogForNode(result: LoadResult, where: { what: string; source: string }, nodeOption: string | undefined): { catalog: Catalog; node: string } {
  if (!result.ok) throw new UsageError(invalidText(where.what, result, 'nothing was done'));
  const node = nodeOption ?? hostname();
  // Own keys only: `--node constructor` must not find Object.prototype's member.
  if (!Object.hasOwn(result.catalog.nodes, node)) {
    const known = Object.keys(result.catalog.nodes).sort().join(', ') || 'none';
    throw new UsageError(`node ${node} is not in ${where.source} (its nodes: ${known}); pass --node NAME`);
  }
  return { catalog: result.catalog, node };
}

export function catalogCommand(program: Command): Command {
  const catalog = program.command('catalog').description('the cluster catalog in etcd: push a file to it, show what it holds');

  withEtcdFlags(catalog.command('push').argument('<file>', 'the catalog file (YAML or JSON)')
    .description('validate FILE, then make etcd hold exactly it in one transaction (changed keys put, vanished keys deleted, the rest untouched)')
    .requiredOption('--to <source>', 'etcd://HOST:PORT[,HOST:PORT…]/PREFIX (etcds:// for TLS)'))
    .action(async (file: string, options: EtcdFlags & { to: string }) => {
      const source = etcdSourceOf(options.to, '--to');
      const read = await readCatalogFile(file);
      const parsed = read.ok ? parseCatalogText(read.text) : { result: unreadableCatalog(file, read.reason) };
      if (!parsed.result.ok) throw new UsageError(invalidText(printablePath(file), parsed.result, 'nothing was written'));
      const want = entriesOf(source.prefix, parsed.document);
      const outcome = await usingEtcd((_connect, read, push) =>
        read.withEtcd(source, tlsOf(options), (client) => push.pushEntries(client, source, want)));
      const wrote = outcome.put + outcome.deleted > 0 ? `revision ${outcome.revision}` : `nothing written, revision ${outcome.revision}`;
      process.stdout.write(
        `pushed ${printablePath(file)} to ${source.text}: ${outcome.put} put, ${outcome.deleted} deleted, ${outcome.unchanged} unchanged (${wrote})\n`,
      );
    });

  withEtcdFlags(catalog.command('show')
    .description('print the catalog etcd holds (as a catalog file); an invalid one is printed too, then its problems, exit 2')
    .requiredOption('--from <source>', 'etcd://HOST:PORT[,HOST:PORT…]/PREFIX (etcds:// for TLS)')
    .addOption(new Option('--format <format>', 'output format').choices(['yaml', 'json']).default('yaml')))
    .action(async (options: EtcdFlags & { from: string; format: 'yaml' | 'json' }) => {
      const source = etcdSourceOf(options.from, '--from');
      const { listing, result } = await usingEtcd((_connect, read) => read.readCatalogSource(source, tlsOf(options)));
      const values = [...listing.entries].map(([key, held]) => [key, held.value] as const);
      process.stdout.write(showText(documentOf(source.prefix, values), options.format));
      if (!result.ok) {
        process.stderr.write(`vipmesh: ${invalidText(source.text, result, 'what it holds is printed above')}\n`);
        process.exitCode = EXIT.usage;
      }
    });
  return catalog;
}

/** The union in the catalog file's order: version, then the collections, each by name as etcd sorts keys. */
export function documentOf(prefix: string, entries: Iterable<readonly [string, string]>): Record<string, unknown> {
  const { document } = assemble(prefix, [...entries].sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b))));
  const ordered: Record<string, unknown> = { version: document['version'] };
  for (const collection of COLLECTIONS) if (document[collection] !== undefined) ordered[collection] = document[collection];
  return ordered;
}

export function showText(document: Record<string, unknown>, format: 'yaml' | 'json'): string {
  if (format === 'json') return `${JSON.stringify(document, null, 2)}\n`;
  // No folding: a long value stays on one line, as an operator would write it.
  return stringify(document, { lineWidth: 0 });
}

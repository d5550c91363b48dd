// One etcd3 client for a catalog source. The client is the `etcd3` package's
// (gRPC); this module only turns a CatalogSource and the TLS files into its
// options, and every error into a message that names the endpoints.
import { readFile } from 'node:fs/promises';
import { Etcd3, type IOptions } from 'etcd3';
import type { CatalogSource } from './source.js';

export type EtcdSource = Extract<CatalogSource, { kind: 'etcd' }>;

/** --etcd-ca, --etcd-cert, --etcd-key: file paths (PEM). */
export interface EtcdTlsFiles {
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
}

/** Connecting to a member: a member that is there answers at once. */
export const DIAL_TIMEOUT_MS = 5_000;
/**
 * A unary call (get, put, txn) that has not answered by then has failed: nothing waits
 * forever on a lost cluster. Generous, because a whole catalog is one call: pushing a
 * 30 000-key catalog took longer than 5 s on a busy 2-core machine. A member that is
 * down refuses at once; only a hung one costs the whole wait.
 */
export const CALL_DEADLINE_MS = 30_000;

export class EtcdSetupError extends Error {}

/** Where a message says the source is: the endpoints, never a guess at which one failed. */
export const whereOf = (source: EtcdSource): string => `etcd at ${source.endpoints.join(',')}`;

export async function connectEtcd(source: EtcdSource, tls: EtcdTlsFiles = {}): Promise<Etcd3> {
  const scheme = source.secure ? 'https' : 'http';
  const options: IOptions = {
    hosts: source.endpoints.map((endpoint) => `${scheme}://${endpoint}`),
    dialTimeout: DIAL_TIMEOUT_MS,
    // gRPC's default 4 MiB cap on a reply is a catalog of about 2 500 services listed at once;
    // etcd sends ranges of any size, and the catalog's size is the operator's to choose.
    grpcOptions: { 'grpc.max_receive_message_length': -1 },
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + CALL_DEADLINE_MS }),
  };
  if (source.secure) {
    if (tls.ca === undefined) throw new EtcdSetupError(`${source.text}: etcds:// needs --etcd-ca (the CA that signed the members' certificates)`);
    if ((tls.cert === undefined) !== (tls.key === undefined)) throw new EtcdSetupError(`${source.text}: --etcd-cert and --etcd-key go together`);
    options.credentials = {
      rootCertificate: await readPem(tls.ca, '--etcd-ca'),
      ...(tls.cert === undefined ? {} : { certChain: await readPem(tls.cert, '--etcd-cert') }),
      ...(tls.key === undefined ? {} : { privateKey: await readPem(tls.key, '--etcd-key') }),
    };
  } else if (tls.ca !== undefined || tls.cert !== undefined || tls.key !== undefined) {
    throw new EtcdSetupError(`${source.text}: --etcd-ca/--etcd-cert/--etcd-key need an etcds:// source`);
  }
  return new Etcd3(options);
}

async function readPem(path: string, flag: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error) {
    const code = error instanceof Error && 'code' in error ? String(error.code) : '';
    throw new EtcdSetupError(`${flag} ${path}: ${code === 'ENOENT' ? 'no such file' : error instanceof Error ? error.message : String(error)}`);
  }
}

/**
 * An etcd3/gRPC error as one line naming the endpoints, without gRPC's noise: the status code, the connection's
 * timestamps and empty "Resolution note", OpenSSL's error-stack coordinates, and
 * Node's advice to try --use-system-ca (the CA here is --etcd-ca); plus, for a
 * TLS failure, which flag to look at.
 */
export function describeEtcdError(source: EtcdSource, error: unknown): string {
  const where = `${whereOf(source)}: `;
  const message = (error instanceof Error ? error.message : String(error))
    .replace(/^\d+ [A-Z_]+: /, '')
    .replace(/\s*\(\d{4}-\d\d-\d\dT[\d:.]+Z\)/g, '')
    .replace(/;? if the root CA is installed locally, try running Node\.js with --use-system-ca\.?/g, '')
    .replace(/[0-9A-F]+:error:[0-9A-F]+:SSL routines:[^:]*:([^:]+):\S*(?: alert number \d+)?/g, '$1')
    .replace(/\s*Resolution note:\s*$/, '')
    .replace(/^No connection established\. Last error: (?:Error: )?(.*?)\.?$/s, 'no connection ($1)')
    .replace(/\s*\n\s*/g, ' ')
    .trim();
  return `${where}${message}${source.secure ? tlsHint(message) : ''}`;
}

function tlsHint(message: string): string {
  if (/alert (bad certificate|certificate required|unknown ca|certificate unknown)/i.test(message)) {
    return ' (the members refused the client certificate: check --etcd-cert and --etcd-key, and that the members\' CA signed them)';
  }
  if (/certificate|self[- ]signed|verify/i.test(message)) return ' (is --etcd-ca the CA that signed the members\' certificates?)';
  return '';
}

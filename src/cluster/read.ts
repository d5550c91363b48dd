// The catalog an etcd source holds: one listing of PREFIX/v1/, its union
// validated exactly as a file is (SPEC §6), and the revision it was read at
// (where an agent's watch starts). Errors of the store come out as one line
// naming the endpoints; the client is always closed, so a command that reads
// the catalog and ends does end.
import type { Etcd3 } from 'etcd3';
import type { LoadResult } from '../catalog/load.js';
import { connectEtcd, describeEtcdError, type EtcdSource, EtcdSetupError, type EtcdTlsFiles } from './connect.js';
import { catalogOf, rootOf } from './layout.js';
import { listPrefix, type Listing } from './list.js';

export interface SourceCatalog {
  /** The union, validated: the catalog, or every problem in it. */
  readonly result: LoadResult;
  /** The store revision the listing was read at (a decimal int64). */
  readonly revision: string;
  /** Every key under PREFIX/v1/ as listed, live/ and health/ included. */
  readonly listing: Listing;
}

/** etcd could not be reached or refused the request: the message is one line, said for the CLI to print. */
export class EtcdSourceError extends Error {
  override readonly name: string = 'EtcdSourceError';
}

/** Reads through a client the caller holds (the agent keeps one for its life). */
export async function readCatalogFrom(client: Etcd3, source: EtcdSource): Promise<SourceCatalog> {
  const listing = await listPrefix(client, rootOf(source.prefix));
  const result = catalogOf(source.prefix, [...listing.entries].map(([key, held]) => [key, held.value] as const));
  return { result, revision: listing.revision, listing };
}

/** Connects, reads, closes. Throws EtcdSetupError (flags, PEM files) or EtcdSourceError. */
export async function readCatalogSource(source: EtcdSource, tls: EtcdTlsFiles = {}): Promise<SourceCatalog> {
  return withEtcd(source, tls, (client) => readCatalogFrom(client, source));
}

/** Runs `use` with a client for the source and closes it however `use` ends; store errors become EtcdSourceError. */
export async function withEtcd<T>(source: EtcdSource, tls: EtcdTlsFiles, use: (client: Etcd3) => Promise<T>): Promise<T> {
  const client = await connectEtcd(source, tls);
  try {
    return await use(client);
  } catch (error) {
    if (error instanceof EtcdSetupError || error instanceof EtcdSourceError) throw error;
    throw new EtcdSourceError(describeEtcdError(source, error), { cause: error });
  } finally {
    client.close();
  }
}

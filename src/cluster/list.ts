// One consistent read of everything under a key prefix: the values and the
// store revision they were read at. A watch starts at revision + 1 (SPEC §6),
// and `catalog push` compares each key's mod revision when it writes.
import type { Etcd3 } from 'etcd3';

export interface ListedValue {
  readonly value: string;
  /** etcd's int64 revisions, kept as the decimal strings the client gives. */
  readonly modRevision: string;
}

export interface Listing {
  /** The store's revision when the range was read (header.revision). */
  readonly revision: string;
  /** key → value, in etcd's key order. */
  readonly entries: ReadonlyMap<string, ListedValue>;
}

export async function listPrefix(client: Etcd3, keyPrefix: string): Promise<Listing> {
  const response = await client.getAll().prefix(keyPrefix).exec();
  const entries = new Map<string, ListedValue>();
  for (const kv of response.kvs) entries.set(kv.key.toString('utf8'), { value: kv.value.toString('utf8'), modRevision: kv.mod_revision });
  return { revision: response.header.revision, entries };
}

/** The next revision after `revision` (a decimal int64 string): where a watch after a listing starts. */
export const nextRevision = (revision: string): string => (BigInt(revision) + 1n).toString();

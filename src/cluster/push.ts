// `catalog push`'s write (SPEC §6): make etcd hold exactly the file's objects in
// one transaction. Optimistic: list, diff, and commit only if every key written
// still has the mod revision the listing saw (or is still absent); when another
// writer got in between, list and diff again. Nothing to change writes nothing,
// so the store's revision, and every agent's watch, stay still.
import type { Etcd3, IOperation } from 'etcd3';
import { type EtcdSource, whereOf } from './connect.js';
import { rootOf } from './layout.js';
import { listPrefix } from './list.js';
import { diffPush, type KeyChange } from './push-diff.js';
import { EtcdSourceError } from './read.js';

export interface PushOutcome {
  readonly put: number;
  readonly deleted: number;
  readonly unchanged: number;
  /** The store revision after the transaction, or the one listed when nothing was written. */
  readonly revision: string;
}

/** Lost races before giving up: each is a whole list–diff–commit against a busy writer. */
export const PUSH_ATTEMPTS = 5;

/** Every attempt found the keys changed under it: nothing was written. */
export class PushConflictError extends EtcdSourceError {
  override readonly name = 'PushConflictError';
}

/** etcd refused the transaction for its size: the message names the member flag to raise. */
export class PushTooLargeError extends EtcdSourceError {
  override readonly name = 'PushTooLargeError';
}

/** `want`: the file's keys and values (entriesOf under the source's prefix). */
export async function pushEntries(client: Etcd3, source: EtcdSource, want: ReadonlyMap<string, string>): Promise<PushOutcome> {
  const { prefix } = source;
  for (let attempt = 1; attempt <= PUSH_ATTEMPTS; attempt++) {
    const listing = await listPrefix(client, rootOf(prefix));
    const diff = diffPush(prefix, want, listing.entries);
    const counts = { put: diff.put, deleted: diff.deleted, unchanged: diff.unchanged };
    if (diff.changes.length === 0) return { ...counts, revision: listing.revision };
    const response = await commit(client, diff.changes).catch((error: unknown) => {
      throw tooLarge(source, error, diff.changes) ?? error;
    });
    if (response.succeeded) return { ...counts, revision: response.header.revision };
  }
  throw new PushConflictError(`${whereOf(source)}: the catalog keys kept changing under the push (${PUSH_ATTEMPTS} attempts): another writer is busy; nothing was written`);
}

function commit(client: Etcd3, changes: readonly KeyChange[]) {
  const [first, ...rest] = changes as [KeyChange, ...KeyChange[]];
  let txn = client.if(first.key, 'Mod', '==', first.expectModRevision);
  for (const change of rest) txn = txn.and(change.key, 'Mod', '==', change.expectModRevision);
  return txn.then(...changes.map((change) => operationOf(client, change))).commit();
}

function operationOf(client: Etcd3, change: KeyChange): IOperation {
  return change.kind === 'put' ? client.put(change.key).value(change.value) : client.delete().key(change.key);
}

/**
 * etcd's limits on one request, each a member flag (defaults in etcd 3.4):
 * --max-txn-ops 128 counts the comparisons and the writes separately,
 * --max-request-bytes 1.5 MiB the whole request.
 */
function tooLarge(source: EtcdSource, error: unknown, changes: readonly KeyChange[]): PushTooLargeError | undefined {
  const message = error instanceof Error ? error.message : String(error);
  if (/too many operations in txn request/i.test(message)) {
    return new PushTooLargeError(
      `${whereOf(source)} refused the transaction: ${changes.length} keys to write is more than its --max-txn-ops allows (128 by default); ` +
        'raise --max-txn-ops on every member (it must be at least the number of keys a push changes); nothing was written',
    );
  }
  if (/request is too large|larger than max|message larger|RESOURCE_EXHAUSTED/i.test(message)) {
    const bytes = changes.reduce((sum, change) => sum + change.key.length + (change.kind === 'put' ? change.value.length : 0), 0);
    return new PushTooLargeError(
      `${whereOf(source)} refused the transaction as too large (about ${bytes} bytes of keys and values): raise --max-request-bytes on every member ` +
        '(1.5 MiB by default); nothing was written',
    );
  }
  return undefined;
}

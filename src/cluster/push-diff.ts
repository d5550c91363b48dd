// What `catalog push` writes (SPEC §6): the keys a file gives against what
// etcd holds, as the puts and deletes of one conditional transaction. Only
// catalog objects are compared: the agents' live/ and health/ keys, and
// anything else under the prefix, are never the push's to touch. Pure.
import { meaningOf } from './layout.js';

/** A key as listed: its value and the mod revision a conditional write compares. */
export interface HeldValue {
  readonly value: string;
  readonly modRevision: string;
}

/**
 * One write of the transaction, with the mod revision the key must still have
 * when it runs: "0" for a key that must still be absent (etcd compares an absent
 * key as all zeros), so a concurrent writer makes the transaction fail, not lose.
 */
export type KeyChange =
  | { readonly kind: 'put'; readonly key: string; readonly value: string; readonly expectModRevision: string }
  | { readonly kind: 'delete'; readonly key: string; readonly expectModRevision: string };

export interface PushDiff {
  /** In key order: puts of new or changed keys, deletes of vanished ones. */
  readonly changes: readonly KeyChange[];
  readonly put: number;
  readonly deleted: number;
  /** Object keys already holding exactly the file's value: left at their revision. */
  readonly unchanged: number;
}

const ABSENT = '0';

/** `want`: the file's keys (entriesOf); `held`: everything listed under PREFIX/v1/. */
export function diffPush(prefix: string, want: ReadonlyMap<string, string>, held: ReadonlyMap<string, HeldValue>): PushDiff {
  const changes: KeyChange[] = [];
  let unchanged = 0;
  let put = 0;
  let deleted = 0;
  for (const [key, value] of want) {
    const current = held.get(key);
    if (current?.value === value) {
      unchanged++;
      continue;
    }
    changes.push({ kind: 'put', key, value, expectModRevision: current?.modRevision ?? ABSENT });
    put++;
  }
  for (const [key, current] of held) {
    if (want.has(key) || meaningOf(prefix, key).kind !== 'object') continue;
    changes.push({ kind: 'delete', key, expectModRevision: current.modRevision });
    deleted++;
  }
  changes.sort((a, b) => compareKeys(a.key, b.key));
  return { changes, put, deleted, unchanged };
}

/** etcd's order: keys as bytes. */
function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

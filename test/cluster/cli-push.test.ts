// catalog push's transaction against a writer that gets in between its listing
// and its commit: the commit fails on the changed key, the push lists again and
// still leaves etcd holding exactly the file; a writer that never stops wins,
// and the push says so having written nothing. And a catalog bigger than one
// gRPC reply is by default.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'node:test';
import type { Etcd3 } from 'etcd3';
import { catalogText } from '../../bench/plan.js';
import { parseText } from '../../src/catalog/parse-text.js';
import { connectEtcd } from '../../src/cluster/connect.js';
import { entriesOf } from '../../src/cluster/layout.js';
import { PUSH_ATTEMPTS, PushConflictError, pushEntries } from '../../src/cluster/push.js';
import { readCatalogSource } from '../../src/cluster/read.js';
import { parseSource } from '../../src/cluster/source.js';
import { startEtcd } from '../helpers/etcd.js';
import { FIXTURES } from '../helpers/paths.js';

/** A client whose every prefix listing is followed, before the caller sees it, by `after(n)`. */
function racing(client: Etcd3, after: (listing: number) => Promise<void>): { client: Etcd3; listings: () => number } {
  let listings = 0;
  const proxy = new Proxy(client, {
    get(target, property) {
      if (property === 'getAll') {
        return () => {
          const builder = target.getAll();
          const exec = builder.exec.bind(builder);
          builder.exec = async () => {
            const response = await exec();
            await after(++listings);
            return response;
          };
          return builder;
        };
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { client: proxy, listings: () => listings };
}

test('a key changed or created between the listing and the commit fails the commit; the push lists again and wins', { timeout: 60_000 }, async (t) => {
  const etcd = await startEtcd(t, { members: 1 });
  const parsed = parseSource(etcd.source('/vm'));
  assert.ok(parsed.ok && parsed.source.kind === 'etcd');
  const source = parsed.source;
  const client = await connectEtcd(source);
  t.after(() => client.close());
  const want = entriesOf('/vm', parseText(readFileSync(join(FIXTURES, 'article-003-whoami.yaml'), 'utf8')).value);
  const service = '/vm/v1/services/whoami';
  const curl = '/vm/v1/tasks/curl';

  // First push, with someone creating a key the file also holds after the listing: "still absent" fails.
  const first = racing(client, async (n) => {
    if (n === 1) await etcd.etcdctl(['put', curl, '{"node":"elsewhere"}']);
  });
  const created = await pushEntries(first.client, source, want);
  assert.equal(first.listings(), 2, 'listed again after the failed commit');
  assert.deepEqual([created.put, created.deleted, created.unchanged], [want.size, 0, 0]);
  assert.equal(await client.get(curl).string(), want.get(curl));

  // Someone edits a key the push changes: "still at the listed revision" fails.
  const edited = new Map(want).set(service, '{"vips":{"dig-default":"10.0.3.11"}}');
  const second = racing(client, async (n) => {
    if (n === 1) await etcd.etcdctl(['put', service, '{"someone":"else"}']);
  });
  const outcome = await pushEntries(second.client, source, edited);
  assert.equal(second.listings(), 2);
  assert.deepEqual([outcome.put, outcome.deleted], [1, 0]);
  assert.equal(await client.get(service).string(), edited.get(service));

  // A writer that changes the key after every listing: the push gives up and has written nothing.
  const third = racing(client, async (n) => {
    await etcd.etcdctl(['put', service, `{"round":${n}}`]);
  });
  await assert.rejects(pushEntries(third.client, source, want), (error: unknown) => {
    assert.ok(error instanceof PushConflictError);
    assert.match(error.message, /etcd at 127\.0\.0\.1:\d+: the catalog keys kept changing under the push \(5 attempts\).*nothing was written/);
    return true;
  });
  assert.equal(third.listings(), PUSH_ATTEMPTS);
  assert.equal(await client.get(service).string(), `{"round":${PUSH_ATTEMPTS}}`, 'the other writer\'s value stands');
  assert.equal(await client.get(curl).string(), want.get(curl));
});

test('a catalog larger than gRPC\'s default 4 MiB reply is pushed and read back whole', { timeout: 120_000 }, async (t) => {
  const etcd = await startEtcd(t, { members: 1 });
  const parsed = parseSource(etcd.source('/big'));
  assert.ok(parsed.ok && parsed.source.kind === 'etcd');
  const source = parsed.source;
  const text = catalogText(3000, 'json');
  assert.ok(text.length > 5 * 1024 * 1024, `${text.length} bytes`);
  const want = entriesOf('/big', parseText(text).value);
  const client = await connectEtcd(source);
  t.after(() => client.close());
  const pushed = await pushEntries(client, source, want);
  assert.equal(pushed.put, want.size);
  const read = await readCatalogSource(source);
  assert.equal(read.listing.entries.size, want.size);
  assert.ok(read.result.ok, 'the union is the valid catalog pushed');
  assert.equal(read.revision, pushed.revision);
});

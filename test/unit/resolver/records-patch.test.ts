// A record snapshot patched by a change (records.ts patchRecords, on the
// resolver's catalog copy patched in place: catalog-patch.ts) answers exactly as
// one built from scratch, on random change sequences — including changes a
// patch must refuse (a local task, a service with local tasks, two objects
// claiming one name or address), which fall back to a full build.
import assert from 'node:assert/strict';
import test from 'node:test';
import { emptyNames } from '../../../src/catalog/names.js';
import type { Catalog, Network, Service, Task } from '../../../src/catalog/types.js';
import { applyPatch, changeSince, contentRevision } from '../../../src/resolver/catalog-patch.js';
import { decodeCatalog, decodePatch, encodeCatalog, encodePatch } from '../../../src/resolver/catalog-wire.js';
import { buildRecords, type Lookup, patchRecords, type Records } from '../../../src/resolver/records.js';
import { prng } from '../../helpers/prng.js';

const NODE = 'node-0';
const QTYPES = [1, 28, 12, 255, 15];

const NETWORKS: Network[] = [
  { name: 'front', subnet: '10.1.0.0/16', family: 4, ingress: false },
  { name: 'back', subnet: '10.2.0.0/16', family: 4, ingress: false },
  { name: 'six', subnet: 'fd00::/64', family: 6, ingress: false },
  // No local task is on it: no table, changes there touch nothing.
  { name: 'far', subnet: '10.3.0.0/16', family: 4, ingress: false },
  { name: 'ingress', subnet: '10.255.0.0/16', family: 4, ingress: true },
];
const OCTET: Record<string, number> = { front: 1, back: 2, far: 3, ingress: 255 };

function addressOn(network: string, n: number): string {
  return network === 'six' ? `fd00::${n.toString(16)}` : `10.${OCTET[network]}.${Math.floor(n / 250)}.${(n % 250) + 1}`;
}

/** The reverse name of an address, as a client asks it. */
function reverseName(address: string): string {
  if (!address.includes(':')) return `${address.split('.').reverse().join('.')}.in-addr.arpa`;
  const [head, tail] = address.split('::') as [string, string];
  const groups = (s: string) => (s === '' ? [] : s.split(':'));
  const h = groups(head);
  const t = groups(tail ?? '');
  const all = [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t].map((g) => g.padStart(4, '0')).join('');
  return `${[...all].reverse().join('.')}.ip6.arpa`;
}

interface World {
  readonly random: () => number;
  readonly pick: <T>(values: readonly T[]) => T;
  /** Small pools make clashes (names, addresses) happen now and then. */
  readonly addressPool: number;
}

function worldOf(seed: number): World {
  const random = prng(seed);
  return { random, pick: (values) => values[Math.floor(random() * values.length)]!, addressPool: 2000 };
}

const SERVICES = Array.from({ length: 12 }, (_, i) => `svc${i}`);
const ALIASES = [...SERVICES.flatMap((s) => [`${s}-a`, `${s}-b`]), 'shared'];
const TASKS = [...Array.from({ length: 40 }, (_, i) => `t${i}`), 'svc1.front', 'Tasks.svc2', 'MiXed'];

function randomService(w: World, name: string): Service {
  const networks = ['front', 'back', 'six', 'far', 'ingress'].filter(() => w.random() < 0.45).sort();
  const vip = w.random() < 0.7;
  const vips = emptyNames<string>() as Record<string, string>;
  if (vip) for (const network of networks) if (w.random() < 0.9) vips[network] = addressOn(network, 5000 + Math.floor(w.random() * 300));
  // Its own aliases; now and then one another service may hold too (a clash).
  const aliases = [`${name}-a`, `${name}-b`, 'shared'].filter((alias) => w.random() < (alias === 'shared' ? 0.02 : 0.3));
  return {
    name, endpointMode: vip ? 'vip' : 'dnsrr', vips, networks, aliases, ports: [], lb: { algorithm: 'rr' },
    ...(w.random() < 0.15 ? { healthcheck: { command: ['true'] } } : {}),
  } as unknown as Service;
}

function randomTask(w: World, name: string, local: boolean): Task {
  const addresses = emptyNames<string>() as Record<string, string>;
  for (const network of ['front', 'back', 'six', 'far', 'ingress']) {
    if (w.random() < 0.5) addresses[network] = addressOn(network, Math.floor(w.random() * w.addressPool));
  }
  const service = w.random() < 0.85 ? w.pick(SERVICES) : undefined;
  return {
    name, ...(service === undefined ? {} : { service }), node: local ? NODE : w.pick(['node-1', 'node-2']),
    netns: `/run/netns/${name.toLowerCase()}`, addresses,
    state: w.random() < 0.85 ? 'running' : 'failed', health: w.pick(['healthy', 'unhealthy', 'unknown', 'unknown']), weight: 1,
  } as Task;
}

function initialCatalog(w: World): Catalog {
  const networks = emptyNames<Network>() as Record<string, Network>;
  for (const network of NETWORKS) networks[network.name] = network;
  const services = emptyNames<Service>() as Record<string, Service>;
  for (const name of SERVICES) if (w.random() < 0.8) services[name] = randomService(w, name);
  const tasks = emptyNames<Task>() as Record<string, Task>;
  // Tasks.svc2 (a clash with tasks.svc2) only comes by a change: a full build merges it, and no patch is made while it stays.
  for (const name of TASKS) if (name !== 'Tasks.svc2' && w.random() < 0.7) tasks[name] = randomTask(w, name, false);
  // The node's own tasks, on fixed networks: the views.
  tasks['local-a'] = { ...randomTask(w, 'local-a', true), state: 'running', addresses: Object.assign(emptyNames<string>(), { front: addressOn('front', 240), back: addressOn('back', 240) }) as unknown as Task['addresses'], service: 'svc0' };
  tasks['local-b'] = { ...randomTask(w, 'local-b', true), state: 'running', addresses: Object.assign(emptyNames<string>(), { back: addressOn('back', 241), six: addressOn('six', 241) }) as unknown as Task['addresses'], service: 'svc0' };
  return { version: 1, networks, nodes: emptyNames(), services, tasks } as Catalog;
}

/** A change: a few services and tasks put or deleted (now and then a local task). */
function randomChange(w: World, catalog: Catalog): { services: Map<string, Service | undefined>; tasks: Map<string, Task | undefined> } {
  const services = new Map<string, Service | undefined>();
  const tasks = new Map<string, Task | undefined>();
  const count = 1 + Math.floor(w.random() * 3);
  for (let i = 0; i < count; i++) {
    const roll = w.random();
    if (roll < 0.25) {
      const name = w.pick(SERVICES);
      services.set(name, w.random() < 0.3 && catalog.services[name] !== undefined ? undefined : randomService(w, name));
    } else if (roll < 0.97) {
      const name = w.pick(TASKS);
      const before = catalog.tasks[name];
      const flip = before !== undefined && w.random() < 0.3;
      // A task's small edit (its state, its health) as often as a new one.
      tasks.set(name, w.random() < 0.25 && before !== undefined ? undefined
        : flip ? { ...before, state: before.state === 'running' ? 'failed' : 'running' } as Task
        : randomTask(w, name, false));
    } else {
      const name = w.pick(['local-a', 'local-b']);
      tasks.set(name, { ...catalog.tasks[name]!, health: w.pick(['healthy', 'unhealthy']) } as Task);
    }
  }
  return { services, tasks };
}

const normal = (lookup: Lookup) =>
  lookup.kind === 'answer' ? `answer ${lookup.records.map((r) => `${r.type}:${r.data}`).sort().join(',')}` : lookup.kind;

/** The names a catalog of these pools can hold, each as asked plain, qualified and in mixed case. */
function namesToAsk(): Set<string> {
  const names = new Set<string>(['nothing', 'tasks.nothing', 'front', 'svc1.front.front']);
  for (const name of [...SERVICES, ...ALIASES, ...TASKS]) {
    for (const n of [name, `tasks.${name}`]) {
      names.add(n);
      for (const network of NETWORKS) names.add(`${n}.${network.name}`.toUpperCase());
    }
  }
  return names;
}

/** The reverse names of every address in the catalog (added to what the run has asked before). */
function addReverseNames(names: Set<string>, catalog: Catalog): void {
  for (const task of Object.values(catalog.tasks)) for (const address of Object.values(task.addresses)) names.add(reverseName(address));
  for (const service of Object.values(catalog.services)) for (const address of Object.values(service.vips)) names.add(reverseName(address));
}

/** Every answer that can differ: each name in every view, for each type. */
function dump(records: Records, names: ReadonlySet<string>): string[] {
  const out: string[] = [`views ${records.namespaces.join(' ')}`, `stats ${JSON.stringify(records.stats)}`];
  for (const netns of records.namespaces) {
    for (const name of names) for (const qtype of QTYPES) out.push(`${netns} ${name} ${qtype} ${normal(records.lookup(netns, name, qtype))}`);
  }
  return out;
}

test('a patched snapshot answers as one built from scratch, on random change sequences', () => {
  let patched = 0;
  let refused = 0;
  let chained = 0;
  for (let seed = 1; seed <= 10; seed++) {
    const w = worldOf(seed);
    // The worker's copy, as decoded: its records are its own, patched in place.
    let catalog = decodeCatalog(encodeCatalog(initialCatalog(w)));
    const probes = new Map([['local-a', true]]);
    let records = buildRecords(catalog, NODE, probes);
    let built = { catalog, revision: contentRevision(catalog) };
    const names = namesToAsk();
    addReverseNames(names, catalog);
    for (let step = 0; step < 50; step++) {
      const change = randomChange(w, catalog);
      // Through the wire, as the host sends it.
      const next = applyPatch(catalog, decodePatch(encodePatch(
        { ...catalog, services: Object.assign(emptyNames<Service>(), catalog.services, Object.fromEntries(change.services)),
          tasks: Object.assign(emptyNames<Task>(), catalog.tasks, Object.fromEntries(change.tasks)) } as Catalog,
        change.services.keys(), change.tasks.keys(),
      )));
      catalog = next;
      addReverseNames(names, next);
      // Now and then the resolver takes two or three patches at once.
      if (w.random() < 0.25) continue;
      const since = changeSince(next, built.catalog, built.revision);
      assert.ok(since !== undefined, `seed ${seed} step ${step}: the patches since the last build are known`);
      const fresh = buildRecords(next, NODE, probes);
      const expected = dump(fresh, names);
      const result = patchRecords(records, next, since);
      if (result === undefined) {
        refused++;
        records = fresh;
      } else {
        patched++;
        if (since.services.size + since.tasks.size > 3) chained++;
        assert.deepEqual(dump(result, names), expected, `seed ${seed} step ${step}`);
        records = result;
      }
      built = { catalog: next, revision: contentRevision(next) };
    }
  }
  // Each path taken often enough for the comparison to mean something.
  assert.ok(patched >= 200, `${patched} patched`);
  assert.ok(refused >= 20, `${refused} refused`);
  assert.ok(chained >= 10, `${chained} patched over more than one change`);
});

test('a change that is not the next of the line is not known: the build that read later content is never patched with it', () => {
  const w = worldOf(99);
  const first = decodeCatalog(encodeCatalog(initialCatalog(w)));
  const revision = contentRevision(first);
  const second = applyPatch(first, { services: new Map(), tasks: new Map([['t1', randomTask(w, 't1', false)]]) });
  // A build of `first` that started after the patch read the second's content.
  assert.equal(changeSince(second, first, contentRevision(first)), undefined);
  assert.ok(changeSince(second, first, revision) !== undefined);
  const third = applyPatch(second, { services: new Map(), tasks: new Map([['t2', undefined]]) });
  // `second` has been patched further: its records hold the third's content.
  assert.equal(changeSince(second, first, revision), undefined);
  assert.throws(() => applyPatch(second, { services: new Map(), tasks: new Map() }), /not the newest/);
  const both = changeSince(third, first, revision);
  assert.deepEqual([...(both?.tasks.keys() ?? [])].sort(), ['t1', 't2']);
});

// The reconcile orchestration over an in-memory kernel (the adapters themselves
// are proven against the real kernel in test/kernel and the kernel lane).
import assert from 'node:assert/strict';
import test from 'node:test';
import type { Family } from '../../../src/catalog/types.js';
import type { Kernel, ObservedIptables, ObservedService } from '../../../src/kernel/types.js';
import { reconcileNode } from '../../../src/reconcile/run.js';
import { EMPTY_STATE } from '../../../src/state/store.js';
import { catalogOf, facts } from '../../helpers/catalog.js';

const CATALOG = `
version: 1
networks: { appnet: { subnet: 10.0.1.0/24 } }
nodes: { node-1: { address: 192.0.2.11, netns: /run/netns/h } }
services: { web: { vips: { appnet: 10.0.1.2 } } }
tasks:
  web.1: { service: web, node: node-1, netns: /run/netns/w1, addresses: { appnet: 10.0.1.11 } }
  web.2: { service: web, node: node-1, netns: /run/netns/w2, addresses: { appnet: 10.0.1.12 } }
`;

/** Applies restore text and ipvsadm lines to a model just well enough for the orchestration. */
function memoryKernel(): Kernel & { ipvsOf(ns: string): ObservedService[]; chainsOf(ns: string): string[]; forgotten: string[] } {
  const forgotten: string[] = [];
  const chains = new Map<string, Map<string, Map<string, string[]>>>();
  const jumps = new Map<string, { table: string; from: string; spec: string }[]>();
  const ipvs = new Map<string, ObservedService[]>();
  const tables = (ns: string) => chains.get(ns) ?? chains.set(ns, new Map()).get(ns)!;
  return {
    ipvsOf: (ns) => ipvs.get(ns) ?? [],
    chainsOf: (ns) => [...tables(ns).entries()].flatMap(([t, m]) => [...m.keys()].map((c) => `${t}/${c}`)),
    async namespaceExists() { return true; },
    async readIptables(netns, _family: Family): Promise<ObservedIptables> {
      const ns = netns ?? 'host';
      const view = (table: string) => ({
        chains: new Map(tables(ns).get(table) ?? []),
        jumps: (jumps.get(ns) ?? []).filter((j) => j.table === table).map(({ from, spec }) => ({ from, spec })),
      });
      return { mangle: view('mangle'), nat: view('nat'), filter: view('filter') };
    },
    async restoreIptables(netns, _family, text) {
      const ns = netns ?? 'host';
      let table = '';
      for (const line of text.split('\n')) {
        const t = tables(ns);
        if (line.startsWith('*')) { table = line.slice(1); if (!t.has(table)) t.set(table, new Map()); }
        else if (line.startsWith(':')) t.get(table)!.set(line.slice(1).split(' ')[0]!, []);
        else if (line.startsWith('-X ')) t.get(table)!.delete(line.slice(3));
        else if (line.startsWith('-I ') || line.startsWith('-D ')) {
          const [, from, ...rest] = line.split(' ');
          const list = jumps.get(ns) ?? [];
          if (line.startsWith('-I ')) list.push({ table, from: from!, spec: rest.join(' ') });
          else list.splice(list.findIndex((j) => j.table === table && j.from === from && j.spec === rest.join(' ')), 1);
          jumps.set(ns, list);
        } else if (line.startsWith('-A ')) {
          const [, chain, ...rest] = line.split(' ');
          t.get(table)!.get(chain!)!.push(rest.join(' '));
        }
      }
    },
    async readIpvs(netns, fwmarks) {
      const all = ipvs.get(netns ?? 'host') ?? [];
      return { available: true, services: fwmarks === undefined ? all : all.filter((s) => fwmarks.includes(s.fwmark)) };
    },
    async applyIpvs(netns, commands) {
      const ns = netns ?? 'host';
      let list = [...(ipvs.get(ns) ?? [])];
      for (const c of commands) {
        const mark = Number(/-f (\d+)/.exec(c)![1]);
        const addr = /-r (\S+):(\d+)/.exec(c);
        if (c.startsWith('-A ')) list.push({ fwmark: mark, scheduler: /-s (\S+)/.exec(c)![1]!, persistence: 0, realServers: [] });
        else if (c.startsWith('-D ')) list = list.filter((s) => s.fwmark !== mark);
        else if (c.startsWith('-a ') && addr) {
          list = list.map((s) => s.fwmark !== mark ? s : { ...s, realServers: [...s.realServers, {
            address: addr[1]!, port: Number(addr[2]), weight: Number(/-w (\d+)/.exec(c)![1]), forward: 'Masq', activeConnections: 0, inactiveConnections: 0,
          }] });
        }
      }
      ipvs.set(ns, list);
    },
    async readSysctls(_netns, names) { return new Map(names.map((n) => [n, '1'])); },
    async writeSysctls() {},
    forgotten,
    async forgetDnsFlows(netns) { forgotten.push(netns); return 0; },
  };
}

test('reconcile then cleanup: both converge with no error, and cleanup leaves nothing', async () => {
  const kernel = memoryKernel();
  const catalog = catalogOf(CATALOG);
  const input = { catalog, node: 'node-1', kernel, facts: facts(), state: EMPTY_STATE, now: 0 };
  const applied = await reconcileNode({ ...input, mode: 'apply' });
  assert.deepEqual(applied.namespaces.flatMap((n) => n.errors), []);
  assert.equal(kernel.ipvsOf('/run/netns/w1').length, 1);
  assert.ok(kernel.chainsOf('/run/netns/w1').includes('mangle/VIPMESH-OUTPUT'));

  const again = await reconcileNode({ ...input, state: applied.state, mode: 'apply' });
  assert.deepEqual(again.namespaces.flatMap((n) => n.changes), [], 'a second pass changes nothing');

  const cleaned = await reconcileNode({ ...input, state: again.state, mode: 'cleanup' });
  assert.deepEqual(cleaned.namespaces.flatMap((n) => n.errors), [], 'removing chains and IPVS together reports no error');
  for (const ns of ['/run/netns/w1', '/run/netns/w2']) {
    assert.deepEqual(kernel.ipvsOf(ns), []);
    assert.deepEqual(kernel.chainsOf(ns), []);
  }
  assert.deepEqual(cleaned.state.namespaces, {});
});

const TWO_NETWORKS = `
version: 1
networks: { appnet: { subnet: 10.0.1.0/24 }, other: { subnet: 10.0.2.0/24 } }
nodes: { node-1: { address: 192.0.2.11, netns: /run/netns/h }, node-2: { address: 192.0.2.12 } }
services: { web: { vips: { appnet: 10.0.1.2 } }, api: { vips: { other: 10.0.2.2 } } }
tasks:
  web.1: { service: web, node: node-1, netns: /run/netns/w1, addresses: { appnet: 10.0.1.11 } }
  web.2: { service: web, node: node-1, netns: /run/netns/w2, addresses: { appnet: 10.0.1.12 } }
  api.1: { service: api, node: node-1, netns: /run/netns/a1, addresses: { other: 10.0.2.11 } }
`;

test('a changed-only pass reads and writes just the namespaces whose plan changed; a full pass still repairs the rest', async () => {
  const kernel = memoryKernel();
  const reads: string[] = [];
  const counted: Kernel = { ...kernel, readIptables: (netns, family) => (reads.push(netns ?? 'host'), kernel.readIptables(netns, family)) };
  const input = { node: 'node-1', kernel: counted, facts: facts(), now: 0, mode: 'apply' as const };
  const full = await reconcileNode({ ...input, catalog: catalogOf(TWO_NETWORKS), state: EMPTY_STATE });
  assert.deepEqual(full.namespaces.flatMap((n) => n.errors), []);
  assert.deepEqual(Object.keys(full.state.applied).sort(), ['/run/netns/a1', '/run/netns/w1', '/run/netns/w2']);

  reads.length = 0;
  const idle = await reconcileNode({ ...input, catalog: catalogOf(TWO_NETWORKS), state: full.state, scope: 'changed' });
  assert.deepEqual(reads, [], 'nothing changed, nothing read');
  assert.deepEqual([...idle.skipped].sort(), ['/run/netns/a1', '/run/netns/w1', '/run/netns/w2']);

  const scaled = TWO_NETWORKS + '  api.2: { service: api, node: node-2, netns: /run/netns/x, addresses: { other: 10.0.2.12 } }\n';
  const partial = await reconcileNode({ ...input, catalog: catalogOf(scaled), state: idle.state, scope: 'changed' });
  assert.deepEqual(reads, ['/run/netns/a1'], 'only the namespace that sees api is read');
  assert.deepEqual(kernel.ipvsOf('/run/netns/a1')[0]?.realServers.map((r) => r.address), ['10.0.2.11', '10.0.2.12']);
  assert.deepEqual(partial.namespaces.map((n) => n.key), ['/run/netns/a1']);

  // Drift in a skipped namespace waits for the next full pass, which repairs it.
  await kernel.restoreIptables('/run/netns/w1', 4, '*mangle\n-D OUTPUT -j VIPMESH-OUTPUT\n-X VIPMESH-OUTPUT\nCOMMIT\n');
  assert.ok(!kernel.chainsOf('/run/netns/w1').includes('mangle/VIPMESH-OUTPUT'));
  await reconcileNode({ ...input, catalog: catalogOf(scaled), state: partial.state, scope: 'changed' });
  assert.ok(!kernel.chainsOf('/run/netns/w1').includes('mangle/VIPMESH-OUTPUT'), 'a changed-only pass does not look');
  await reconcileNode({ ...input, catalog: catalogOf(scaled), state: partial.state });
  assert.ok(kernel.chainsOf('/run/netns/w1').includes('mangle/VIPMESH-OUTPUT'), 'the full pass repairs it');
});

test('conntrack entries for 127.0.0.11:53 are dropped only where the resolver\'s ports moved', async () => {
  const kernel = memoryKernel();
  const catalog = catalogOf(CATALOG);
  const ports = (w1: number) => ({ ...facts(), resolverPorts: new Map([
    ['/run/netns/w1', { udp: w1, tcp: w1 + 1 }], ['/run/netns/w2', { udp: 5000, tcp: 5001 }],
  ]) });
  const input = { catalog, node: 'node-1', kernel, now: 0, mode: 'apply' as const };
  const first = await reconcileNode({ ...input, facts: ports(4000), state: EMPTY_STATE });
  assert.deepEqual(kernel.forgotten, [], 'a first redirect has no old flows to forget');
  const same = await reconcileNode({ ...input, facts: ports(4000), state: first.state });
  assert.deepEqual(kernel.forgotten, []);
  await reconcileNode({ ...input, facts: ports(4100), state: same.state });
  assert.deepEqual(kernel.forgotten, ['/run/netns/w1']);
});

// Counting what `vipmesh reconcile` printed: fed the text src/reconcile/summary.ts
// writes for changes src/reconcile/diff-ipvs.ts made, so the counter follows the
// real wording.
import assert from 'node:assert/strict';
import test from 'node:test';
import { tallyText } from '../../../bench/reconcile-output.js';
import type { VirtualService } from '../../../src/plan/types.js';
import { diffIpvs } from '../../../src/reconcile/diff-ipvs.js';
import type { NamespaceResult, ReconcileResult } from '../../../src/reconcile/run.js';
import { summarize } from '../../../src/reconcile/summary.js';
import { NO_WRITES, type Change } from '../../../src/reconcile/types.js';
import { EMPTY_STATE } from '../../../src/state/store.js';

function services(count: number, reals: number): VirtualService[] {
  return Array.from({ length: count }, (_, i) => ({
    balances: { kind: 'vip', service: `svc-${i}`, network: 'net' },
    label: `svc-${i}/net`, fwmark: 0x56900000 + i, scheduler: 'rr', persistence: 0, drainTimeout: 0,
    realServers: Array.from({ length: reals }, (_, j) => ({ address: `10.1.${i}.${j + 2}`, port: 0, weight: 1, task: `svc-${i}.${j + 1}` })),
  }));
}

function fromEmpty(desired: readonly VirtualService[]): Change[] {
  return diffIpvs(desired, { available: true, services: [] }, { manageDns: true, now: 0, drainStarted: new Map(), taskRunning: () => true }).changes;
}

function namespace(key: string, changes: readonly Change[], errors = 0): NamespaceResult {
  return {
    key, netns: key, role: 'task', changes, warnings: [], gone: false, writes: NO_WRITES,
    errors: Array.from({ length: errors }, () => ({ kind: 'other' as const, message: 'boom' })),
  };
}

function printed(namespaces: NamespaceResult[]): string {
  const result: ReconcileResult = { namespaces, skipped: [], notHandled: [], state: EMPTY_STATE, dnsManaged: true };
  return summarize('reconcile', result, false).stdout;
}

test('services and real servers added, the namespaces written, and the closing line', () => {
  const text = printed([
    namespace('/run/netns/a', [{ text: '+ -A VIPMESH-OUTPUT -d 10.1.0.1/32 -j MARK', drift: true }, ...fromEmpty(services(3, 4))]),
    namespace('/run/netns/b', []),
    namespace('/run/netns/c', fromEmpty(services(2, 5))),
  ]);
  const t = tallyText(text);
  assert.deepEqual(t.written, ['/run/netns/a', '/run/netns/c']);
  assert.equal(t.ipvsServices, 5);
  assert.equal(t.realServers, 22);
  assert.deepEqual(t.summary, { namespaces: 3, changed: 2, failed: 0 });
});

test('a failed namespace is counted from the closing line', () => {
  const t = tallyText(printed([namespace('/run/netns/a', [], 1), namespace('/run/netns/b', fromEmpty(services(1, 1)))]));
  assert.deepEqual(t.summary, { namespaces: 2, changed: 1, failed: 1 });
  assert.equal(t.ipvsServices, 1);
  assert.equal(t.realServers, 1);
});

test('no closing line: no summary (the process died before it)', () => {
  assert.equal(tallyText('# netns /run/netns/a\n+ ipvs fwmark 1 rr (x/net)\n').summary, undefined);
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { z } from 'zod';
import { plainNamedTask, plainService, plainTask, plainTopLevel } from '../../../src/catalog/plain-entries.js';
import { serviceSchema, taskSchema, topLevelSchema } from '../../../src/catalog/schema.js';

/** Holds a plain reader to its schema: it declines, or it returns what the schema returns. */
function agrees(read: (raw: unknown) => unknown, schema: z.ZodType, raw: unknown): boolean {
  const plain = read(raw);
  if (read === plainTask) {
    const named = plainNamedTask(raw, 'web.1');
    assert.equal(JSON.stringify(named), plain === undefined ? undefined : JSON.stringify({ name: 'web.1', ...plain }));
  }
  if (plain === undefined) return false;
  const parsed = schema.safeParse(raw);
  assert.ok(parsed.success, `the schema accepts what the plain reader took: ${JSON.stringify(raw)}`);
  assert.deepEqual(plain, parsed.data);
  assert.equal(JSON.stringify(plain), JSON.stringify(parsed.data), 'same keys in the same order');
  return true;
}

const TASKS: readonly Record<string, unknown>[] = [
  { service: 'web', node: 'node-1', netns: '/run/netns/web-1', addresses: { appnet: '10.0.1.3', ingress: '10.255.0.7' } },
  { node: 'node-1', netns: '/run/netns/loner' },
  { service: 'web', node: 'node-2', netns: '/run/netns/w', addresses: {}, state: 'shutdown', health: 'unhealthy', weight: 0 },
  { service: 'web', node: 'node-2', netns: '/run/netns/w', addresses: { v6: 'fd00:1::a' }, health: 'healthy', weight: 65535 },
];

const SERVICES: readonly Record<string, unknown>[] = [
  { vips: { appnet: '10.0.1.2' } },
  { vips: { appnet: '10.0.1.2', ingress: '10.255.0.3' }, aliases: ['www'], ports: [{ target: 80, published: 8080 }] },
  { endpointMode: 'dnsrr', networks: ['appnet', 'other'], ports: [{ target: 53, published: 53, protocol: 'udp', mode: 'host', network: 'appnet' }] },
  { vips: { appnet: '10.0.1.2' }, lb: { scheduler: 'wlc', persistence: 600, drainTimeout: 5 } },
  { vips: { appnet: '10.0.1.2' }, lb: { scheduler: 'sh' }, ports: [] },
];

/** Values that are wrong somewhere, or right in an unusual way. */
const ODD: readonly unknown[] = [
  undefined, null, true, 0, -0, 1, -1, 1.5, 65535, 65536, 2 ** 53, Number.NaN, Infinity, '', 'x', 'RUNNING', 'running',
  'ingress', 'host', 'udp', 'sctp', 'rr', 'vip', 'dnsrr', '/run/netns/x', '/a\0b', 'relative/path', '10.0.1.4', '10.0.1.256',
  '010.0.0.1', 'fd00::1', 'FD00:0::1', '10.0.1.4/24', 'fe80::1%eth0', [], ['x'], [1], {}, { a: '10.0.1.9' }, { a: 1 },
  new Date(0), Object.create(null) as unknown,
];

function mutations(base: Record<string, unknown>, fields: readonly string[], random: () => number): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  for (let i = 0; i < 400; i++) {
    const copy: Record<string, unknown> = structuredClone(base);
    for (let n = 1 + Math.floor(random() * 2); n > 0; n--) {
      const r = random();
      const field = pick(fields);
      if (r < 0.2) delete copy[field];
      else if (r < 0.9) copy[field] = pick(ODD);
      else copy[pick(['extra', 'Node', '__proto__'])] = 1;
    }
    out.push(copy);
  }
  // Nested values too: a port, an lb, an address.
  return out;
}

test('plain tasks and services read exactly as their schemas, or not at all', () => {
  let seed = 11;
  const random = (): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  let taken = 0;
  let total = 0;
  const taskFields = ['service', 'node', 'netns', 'pid', 'addresses', 'state', 'health', 'weight'];
  for (const task of TASKS) {
    assert.ok(agrees(plainTask, taskSchema, task), JSON.stringify(task));
    for (const raw of mutations(task, taskFields, random)) {
      total++;
      if (agrees(plainTask, taskSchema, raw)) taken++;
    }
  }
  const serviceFields = ['endpointMode', 'vips', 'networks', 'aliases', 'ports', 'lb', 'healthcheck'];
  for (const service of SERVICES) {
    assert.ok(agrees(plainService, serviceSchema, service), JSON.stringify(service));
    for (const raw of mutations(service, serviceFields, random)) {
      total++;
      if (agrees(plainService, serviceSchema, raw)) taken++;
    }
    for (const field of ['ports', 'lb'] as const) {
      const nested = service[field];
      if (nested === undefined) continue;
      const inner = Array.isArray(nested) ? nested[0] as Record<string, unknown> | undefined : nested as Record<string, unknown>;
      if (inner === undefined) continue;
      for (const raw of mutations(inner, Object.keys(inner), random)) {
        total++;
        if (agrees(plainService, serviceSchema, { ...service, [field]: Array.isArray(nested) ? [raw] : raw })) taken++;
      }
    }
  }
  assert.ok(taken > total / 10, `the plain readers took ${taken} of ${total}`);
});

test('what the plain readers leave to zod', () => {
  const base = TASKS[0] ?? {};
  assert.equal(plainTask({ ...base, pid: 12, netns: undefined }), undefined, 'a pid');
  assert.equal(plainTask({ ...base, service: undefined }), undefined, 'a key given as undefined');
  assert.equal(plainTask(JSON.parse('{"node": "n", "netns": "/x", "addresses": {"__proto__": "10.0.0.1"}}')), undefined);
  assert.equal(plainTask([base]), undefined);
  assert.equal(plainService({ vips: { a: '10.0.1.2' }, healthcheck: { tcp: 80 } }), undefined, 'a healthcheck');
  assert.equal(plainService({ vips: { a: '10.0.1.2' }, ports: [, { target: 1, published: 1 }] }), undefined, 'a hole');
});

test('the top level is certainly fine, or zod looks', () => {
  const fine = [{ version: 1 }, { version: 1, networks: {}, nodes: null, services: Object.create(null) as unknown, tasks: { a: 1 } }];
  for (const raw of fine) {
    assert.equal(plainTopLevel(raw), true);
    assert.equal(topLevelSchema.safeParse(raw).success, true);
  }
  for (const raw of [{ version: 2 }, { version: 1, extra: 1 }, { version: 1, tasks: [] }, { version: 1, nodes: 'x' }, {}]) {
    assert.equal(plainTopLevel(raw), false, JSON.stringify(raw));
    assert.equal(topLevelSchema.safeParse(raw).success, false, JSON.stringify(raw));
  }
});

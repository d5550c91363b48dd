// Enum fields name the value they refuse, whichever reader met the entry first.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCatalog } from '../../../src/catalog/load.js';
import { plainService, plainTask } from '../../../src/catalog/plain-entries.js';
import { formatProblems } from '../../../src/catalog/problems.js';

function problemsOf(text: string): string[] {
  const result = parseCatalog(text);
  if (result.ok) assert.fail('expected the catalog to be rejected');
  return formatProblems(result.problems).split('\n');
}

const HEAD = `
version: 1
networks: { appnet: { subnet: 10.0.1.0/24 } }
nodes: { node-1: { address: 192.0.2.11 } }
`;

const SCHEDULERS = 'rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos';

interface Case {
  /** The entry as YAML flow text, with VALUE where the enum goes. */
  readonly service?: string;
  readonly task?: string;
  readonly path: string;
  readonly list: string;
}

const CASES: readonly Case[] = [
  { service: '{ vips: { appnet: 10.0.1.2 }, endpointMode: VALUE }', path: 'services.web.endpointMode', list: 'vip, dnsrr' },
  { service: '{ vips: { appnet: 10.0.1.2 }, lb: { scheduler: VALUE } }', path: 'services.web.lb.scheduler', list: SCHEDULERS },
  { service: '{ vips: { appnet: 10.0.1.2 }, ports: [{ target: 80, published: 80, protocol: VALUE }] }', path: 'services.web.ports[0].protocol', list: 'tcp, udp, sctp' },
  { service: '{ vips: { appnet: 10.0.1.2 }, ports: [{ target: 80, published: 80, mode: VALUE }] }', path: 'services.web.ports[0].mode', list: 'ingress, host' },
  { task: '{ node: node-1, netns: /run/netns/t, health: VALUE }', path: 'tasks.t.health', list: 'healthy, unhealthy, unknown' },
];

/** The same entry, once as the hand-written readers see it first and once as only zod sees it. */
function bothWays(c: Case, value: string): { plain: string; zod: string } {
  if (c.service !== undefined) {
    const entry = c.service.replace('VALUE', value);
    return {
      plain: `${HEAD}services:\n  web: ${entry}\n`,
      // A healthcheck is beyond the hand-written reader.
      zod: `${HEAD}services:\n  web: ${entry.replace(/ }$/, ', healthcheck: { tcp: 80 } }')}\n`,
    };
  }
  const entry = (c.task ?? '').replace('VALUE', value);
  // A pid is beyond the hand-written reader.
  return { plain: `${HEAD}tasks:\n  t: ${entry}\n`, zod: `${HEAD}tasks:\n  t: ${entry.replace('netns: /run/netns/t', 'pid: 7')}\n` };
}

test('an enum field names the value it refuses, and the same way on either reader', () => {
  const refused: readonly (readonly [string, string])[] = [
    ['fastest', '"fastest"'], ['"RR"', '"RR"'], ['6', '6'], ['true', 'true'], ['[tcp]', 'a list'], ['{ a: 1 }', 'a map'], ['null', 'null'],
  ];
  for (const c of CASES) {
    for (const [value, shown] of refused) {
      const { plain, zod } = bothWays(c, value);
      const expected = [`${c.path}: ${shown} is not one of: ${c.list}`];
      assert.deepEqual(problemsOf(plain), expected, `${c.path} = ${value}, plain entry`);
      assert.deepEqual(problemsOf(zod), expected, `${c.path} = ${value}, zod only`);
    }
  }
});

test('the hand-written readers refuse exactly the values outside the lists, and leave the naming to zod', () => {
  const service = { vips: { appnet: '10.0.1.2' } };
  assert.equal(plainService({ ...service, lb: { scheduler: 'fastest' } }), undefined);
  assert.equal(plainService({ ...service, lb: { scheduler: 'twos' } })?.lb.scheduler, 'twos');
  assert.equal(plainService({ ...service, endpointMode: 'VIP' }), undefined);
  assert.equal(plainService({ ...service, ports: [{ target: 1, published: 1, protocol: 'icmp' }] }), undefined);
  assert.equal(plainService({ ...service, ports: [{ target: 1, published: 1, mode: 'global' }] }), undefined);
  const task = { node: 'n', netns: '/run/netns/t' };
  assert.equal(plainTask({ ...task, health: 'fine' }), undefined);
  assert.equal(plainTask({ ...task, health: 'healthy' })?.health, 'healthy');
  assert.equal(plainTask({ ...task, state: 'Running' }), undefined);
});

test('a task state names the value it refuses, on either reader', () => {
  for (const [value, shown] of [['Running', '"Running"'], ['"shut down"', '"shut down"'], ['3', '3'], ['""', '""']] as const) {
    const c: Case = { task: `{ node: node-1, netns: /run/netns/t, state: ${value} }`, path: 'tasks.t.state', list: '' };
    const { plain, zod } = bothWays(c, value);
    const expected = [`tasks.t.state: ${shown} is not a lowercase word such as running, shutdown or failed`];
    assert.deepEqual(problemsOf(plain), expected, value);
    assert.deepEqual(problemsOf(zod), expected, value);
  }
});

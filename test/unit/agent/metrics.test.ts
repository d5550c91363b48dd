// The metrics registry, read the way Prometheus reads it: by scraping its text.
import assert from 'node:assert/strict';
import test from 'node:test';
import { FAILURE_REASONS, createAgentMetrics } from '../../../src/agent/metrics.js';

/** name{labels} → value, for every sample line of a scrape. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    assert.ok(match, `not a sample line of the text format: ${line}`);
    out.set(match[1]!, Number(match[2]));
  }
  return out;
}

const typeOf = (text: string, name: string): string | undefined => new RegExp(`^# TYPE ${name} (\\w+)$`, 'm').exec(text)?.[1];

test('every metric SPEC §5 and §6 name is there from the start, with its type and every fixed label value at 0', async () => {
  const metrics = createAgentMetrics();
  const text = await metrics.scrape();
  const values = samples(text);
  const expected: [string, string][] = [
    ['vipmesh_sync_duration_seconds', 'histogram'],
    ['vipmesh_sync_last_success_timestamp_seconds', 'gauge'],
    ['vipmesh_sync_failures_total', 'counter'],
    ['vipmesh_network_programming_duration_seconds', 'histogram'],
    ['vipmesh_namespaces', 'gauge'],
    ['vipmesh_iptables_rules', 'gauge'],
    ['vipmesh_ipvs_services', 'gauge'],
    ['vipmesh_ipvs_real_servers', 'gauge'],
    ['vipmesh_catalog_valid', 'gauge'],
    ['vipmesh_catalog_source_up', 'gauge'],
    ['vipmesh_tasks_serving', 'gauge'],
    ['vipmesh_dns_queries_total', 'counter'],
    ['vipmesh_dns_forward_duration_seconds', 'histogram'],
    ['vipmesh_probe_results_total', 'counter'],
  ];
  for (const [name, type] of expected) assert.equal(typeOf(text, name), type, `${name} is a ${type}`);
  const zero = [
    'vipmesh_sync_duration_seconds_count{pass="full"}',
    'vipmesh_sync_duration_seconds_count{pass="changed"}',
    ...['no_ipvs', 'namespace_gone', 'iptables_rejected', 'ipvs_rejected', 'timeout', 'other'].map((r) => `vipmesh_sync_failures_total{reason="${r}"}`),
    ...['task', 'host', 'sandbox'].map((k) => `vipmesh_namespaces{kind="${k}"}`),
    'vipmesh_ipvs_real_servers{state="active"}',
    'vipmesh_ipvs_real_servers{state="draining"}',
    ...['local', 'nodata', 'forwarded', 'servfail', 'refused', 'formerr'].map((o) => `vipmesh_dns_queries_total{outcome="${o}"}`),
    'vipmesh_probe_results_total{result="pass"}',
    'vipmesh_probe_results_total{result="fail"}',
    'vipmesh_sync_last_success_timestamp_seconds',
    'vipmesh_catalog_valid',
    'vipmesh_catalog_source_up',
  ];
  for (const series of zero) assert.equal(values.get(series), 0, series);
  assert.deepEqual([...FAILURE_REASONS], ['no_ipvs', 'namespace_gone', 'iptables_rejected', 'ipvs_rejected', 'timeout', 'other']);
  // prom-client's default process metrics come along.
  for (const name of ['process_cpu_user_seconds_total', 'process_start_time_seconds', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes']) {
    assert.ok(typeOf(text, name), `${name} (a default metric)`);
  }
  assert.match(metrics.contentType, /^text\/plain; version=0\.0\.4/);
});

test('sync duration buckets run from 1 ms to 16 s, doubling', async () => {
  const values = samples(await createAgentMetrics().scrape());
  const bounds = [...values.keys()]
    .filter((k) => k.startsWith('vipmesh_sync_duration_seconds_bucket{') && k.includes('pass="full"'))
    .map((k) => /le="([^"]+)"/.exec(k)![1]!);
  assert.deepEqual(bounds, [...Array.from({ length: 15 }, (_, i) => String(0.001 * 2 ** i)), '+Inf']);
});

test('recordPass: the duration by kind, the last success time, failures by reason', async () => {
  const metrics = createAgentMetrics();
  metrics.recordPass({ kind: 'full', durationSeconds: 0.2, endedAt: 1_700_000_000_500, outcome: { status: 'ok' } });
  metrics.recordPass({
    kind: 'changed',
    durationSeconds: 0.003,
    endedAt: 1_700_000_005_000,
    outcome: { status: 'failed', reasons: ['namespace_gone', 'namespace_gone', 'iptables_rejected'] },
  });
  const values = samples(await metrics.scrape());
  assert.equal(values.get('vipmesh_sync_duration_seconds_count{pass="full"}'), 1);
  assert.equal(values.get('vipmesh_sync_duration_seconds_count{pass="changed"}'), 1);
  assert.equal(values.get('vipmesh_sync_duration_seconds_bucket{le="0.256",pass="full"}'), 1);
  assert.equal(values.get('vipmesh_sync_duration_seconds_bucket{le="0.128",pass="full"}'), 0);
  assert.equal(values.get('vipmesh_sync_last_success_timestamp_seconds'), 1_700_000_000.5, 'a failed pass leaves it');
  assert.equal(values.get('vipmesh_sync_failures_total{reason="namespace_gone"}'), 2);
  assert.equal(values.get('vipmesh_sync_failures_total{reason="iptables_rejected"}'), 1);
  assert.equal(values.get('vipmesh_sync_failures_total{reason="other"}'), 0);
});

test('the node state, the catalog, DNS and probes', async () => {
  const metrics = createAgentMetrics();
  metrics.setProgrammed({
    namespaces: { task: 12, host: 1, sandbox: 2 },
    iptablesRules: 340,
    ipvsServices: 25,
    realServers: { active: 60, draining: 3 },
  });
  metrics.setTasksServing(11);
  metrics.setCatalogValid(true);
  metrics.setCatalogSourceUp(true);
  metrics.recordProgrammingLatency(1.3);
  metrics.countDnsQueries({ answered: 5, nodata: 1, forwarded: 2, dropped: 4 });
  metrics.countDnsQueries({ answered: 2, servfail: 0, refused: -3 });
  metrics.recordDnsForward(0.012);
  metrics.countProbeResult('pass');
  metrics.countProbeResult('fail');
  metrics.countProbeResult('pass');
  const values = samples(await metrics.scrape());
  const want: Record<string, number> = {
    'vipmesh_namespaces{kind="task"}': 12,
    'vipmesh_namespaces{kind="host"}': 1,
    'vipmesh_namespaces{kind="sandbox"}': 2,
    vipmesh_iptables_rules: 340,
    vipmesh_ipvs_services: 25,
    'vipmesh_ipvs_real_servers{state="active"}': 60,
    'vipmesh_ipvs_real_servers{state="draining"}': 3,
    vipmesh_tasks_serving: 11,
    vipmesh_catalog_valid: 1,
    vipmesh_catalog_source_up: 1,
    vipmesh_network_programming_duration_seconds_count: 1,
    'vipmesh_network_programming_duration_seconds_bucket{le="1"}': 0,
    'vipmesh_network_programming_duration_seconds_bucket{le="2"}': 1,
    'vipmesh_dns_queries_total{outcome="local"}': 7,
    'vipmesh_dns_queries_total{outcome="nodata"}': 1,
    'vipmesh_dns_queries_total{outcome="forwarded"}': 2,
    'vipmesh_dns_queries_total{outcome="servfail"}': 0,
    'vipmesh_dns_queries_total{outcome="refused"}': 0,
    vipmesh_dns_forward_duration_seconds_count: 1,
    'vipmesh_probe_results_total{result="pass"}': 2,
    'vipmesh_probe_results_total{result="fail"}': 1,
  };
  for (const [series, value] of Object.entries(want)) assert.equal(values.get(series), value, series);
  assert.ok(![...values.keys()].some((k) => k.includes('dropped')), 'a dropped query has no label in the spec');

  metrics.setCatalogValid(false);
  metrics.setCatalogSourceUp(false);
  const after = samples(await metrics.scrape());
  assert.equal(after.get('vipmesh_catalog_valid'), 0);
  assert.equal(after.get('vipmesh_catalog_source_up'), 0);
});

test('two registries do not share series (each agent, each test, its own)', async () => {
  const a = createAgentMetrics();
  const b = createAgentMetrics();
  a.setTasksServing(5);
  assert.equal(samples(await b.scrape()).get('vipmesh_tasks_serving'), 0);
});

test('a degraded pass (only permanent failures) moves the last success time and still counts its failures', async () => {
  const metrics = createAgentMetrics();
  metrics.recordPass({ kind: 'full', durationSeconds: 0.1, endedAt: 1_700_000_000_000, outcome: { status: 'ok' } });
  metrics.recordPass({ kind: 'full', durationSeconds: 0.1, endedAt: 1_700_000_010_000, outcome: { status: 'degraded', reasons: ['no_ipvs', 'no_ipvs'] } });
  let values = samples(await metrics.scrape());
  assert.equal(values.get('vipmesh_sync_last_success_timestamp_seconds'), 1_700_000_010);
  assert.equal(values.get('vipmesh_sync_failures_total{reason="no_ipvs"}'), 2);
  metrics.recordPass({ kind: 'changed', durationSeconds: 0.1, endedAt: 1_700_000_020_000, outcome: { status: 'failed', reasons: ['no_ipvs', 'timeout'] } });
  values = samples(await metrics.scrape());
  assert.equal(values.get('vipmesh_sync_last_success_timestamp_seconds'), 1_700_000_010, 'a failed pass leaves it');
  assert.equal(values.get('vipmesh_sync_failures_total{reason="timeout"}'), 1);
});

test('tasks found with their namespace gone are counted, from 0; a non-increase adds nothing', async () => {
  const metrics = createAgentMetrics();
  const text = await metrics.scrape();
  assert.equal(typeOf(text, 'vipmesh_tasks_namespace_gone_total'), 'counter');
  assert.equal(samples(text).get('vipmesh_tasks_namespace_gone_total'), 0);
  metrics.countNamespacesGone(2);
  metrics.countNamespacesGone(0);
  metrics.countNamespacesGone(-1);
  metrics.countNamespacesGone(1);
  assert.equal(samples(await metrics.scrape()).get('vipmesh_tasks_namespace_gone_total'), 3);
});

// --listen parsing, and the HTTP endpoint on a real socket bound to port 0 on
// loopback (no root, nothing left behind).
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { createServer } from 'node:net';
import test, { type TestContext } from 'node:test';
import { createAgentMetrics } from '../../../src/agent/metrics.js';
import { DEFAULT_LISTEN, ListenError, parseListen, startHttp, type HealthStatus, type HttpOptions } from '../../../src/agent/http.js';

const SYNC_PERIOD_MS = 30_000;
const NOW = Date.UTC(2026, 0, 2, 3, 4, 5);

test('--listen takes ADDR:PORT and [IPV6]:PORT', () => {
  const strict = { allowWildcard: false };
  assert.deepEqual(parseListen(DEFAULT_LISTEN, strict), { ok: true, address: { host: '127.0.0.1', port: 9641 } });
  assert.deepEqual(parseListen('[::1]:9641', strict), { ok: true, address: { host: '::1', port: 9641 } });
  assert.deepEqual(parseListen('192.0.2.10:65535', strict), { ok: true, address: { host: '192.0.2.10', port: 65535 } });
  assert.deepEqual(parseListen('[fe80::1%eth0]:9641', strict), { ok: true, address: { host: 'fe80::1%eth0', port: 9641 } });
});

test('--listen refuses what it cannot bind, with one message naming the problem', () => {
  const strict = { allowWildcard: false };
  const problem = (text: string) => {
    const parsed = parseListen(text, strict);
    assert.equal(parsed.ok, false, text);
    return parsed.ok ? '' : parsed.problem;
  };
  assert.match(problem('127.0.0.1'), /^--listen 127\.0\.0\.1: give ADDR:PORT/);
  assert.match(problem('localhost:9641'), /localhost is not an IP address/);
  assert.match(problem(':9641'), /the address is not an IP address/);
  assert.match(problem('::1:9641'), /not an IP address|brackets/);
  assert.match(problem('[127.0.0.1]:9641'), /brackets are for IPv6/);
  assert.match(problem('127.0.0.1:0'), /port must be a number from 1 to 65535, not "0"/);
  assert.match(problem('127.0.0.1:65536'), /not "65536"/);
  assert.match(problem('127.0.0.1:http'), /not "http"/);
  assert.match(problem('127.0.0.1:'), /not ""/);
});

test('--listen refuses a wildcard address unless wildcards are allowed', () => {
  for (const text of ['0.0.0.0:9641', '[::]:9641', '[0:0::0]:9641', '[::ffff:0.0.0.0]:9641']) {
    const refused = parseListen(text, { allowWildcard: false });
    assert.equal(refused.ok, false, text);
    assert.match(refused.ok ? '' : refused.problem, /wildcard address/);
    assert.equal(parseListen(text, { allowWildcard: true }).ok, true, `${text} when allowed`);
  }
});

interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

function call(port: number, path: string, method = 'GET'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

function healthy(): HealthStatus {
  return { lastSuccessfulSync: NOW - 4000, pendingSince: undefined, currentTime: NOW, catalog: { state: 'valid' }, source: { state: 'up' } };
}

async function serve(t: TestContext, overrides: Partial<HttpOptions> = {}) {
  let health = healthy();
  let alive = true;
  const errors: Error[] = [];
  const server = await startHttp({
    address: { host: '127.0.0.1', port: 0 },
    metrics: createAgentMetrics(),
    health: () => health,
    syncPeriodMs: SYNC_PERIOD_MS,
    alive: () => alive,
    onError: (error) => errors.push(error),
    ...overrides,
  });
  t.after(() => server.close());
  return {
    port: server.address.port,
    server,
    errors,
    setHealth(next: Partial<HealthStatus>) {
      health = { ...health, ...next };
    },
    setAlive(value: boolean) {
      alive = value;
    },
  };
}

test('/metrics serves the registry in the Prometheus text format', async (t) => {
  const { port } = await serve(t);
  const reply = await call(port, '/metrics');
  assert.equal(reply.status, 200);
  assert.match(String(reply.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  assert.match(reply.body, /^# TYPE vipmesh_sync_duration_seconds histogram$/m);
  assert.match(reply.body, /^vipmesh_sync_failures_total\{reason="no_ipvs"\} 0$/m);
});

test('/metrics answers 500 when collecting fails, and keeps serving', async (t) => {
  let fail = true;
  const { port } = await serve(t, {
    metrics: {
      contentType: 'text/plain',
      scrape: async () => {
        if (fail) throw new Error('collector broke');
        return 'up 1\n';
      },
    },
  });
  const reply = await call(port, '/metrics');
  assert.equal(reply.status, 500);
  assert.match(reply.body, /collector broke/);
  fail = false;
  assert.equal((await call(port, '/metrics')).body, 'up 1\n');
});

test('/healthz: 200 with the JSON body once a pass has succeeded and nothing is late', async (t) => {
  const { port } = await serve(t);
  const reply = await call(port, '/healthz');
  assert.equal(reply.status, 200);
  assert.equal(reply.headers['content-type'], 'application/json');
  assert.deepEqual(JSON.parse(reply.body), {
    lastSuccessfulSync: '2026-01-02T03:04:01.000Z',
    pendingSince: null,
    currentTime: '2026-01-02T03:04:05.000Z',
    catalog: { state: 'valid' },
    source: { state: 'up' },
  });
});

test('/healthz: 503 until the first pass has succeeded', async (t) => {
  const s = await serve(t);
  s.setHealth({ lastSuccessfulSync: undefined, pendingSince: NOW - 1000 });
  const reply = await call(s.port, '/healthz');
  assert.equal(reply.status, 503);
  assert.equal(JSON.parse(reply.body).lastSuccessfulSync, null);
});

test('/healthz: a pending change turns it 503 only once it has waited more than 2 × the sync period', async (t) => {
  const s = await serve(t);
  s.setHealth({ pendingSince: NOW - 2 * SYNC_PERIOD_MS });
  assert.equal((await call(s.port, '/healthz')).status, 200);
  s.setHealth({ pendingSince: NOW - 2 * SYNC_PERIOD_MS - 1 });
  const late = await call(s.port, '/healthz');
  assert.equal(late.status, 503);
  assert.equal(JSON.parse(late.body).pendingSince, '2026-01-02T03:03:04.999Z');
});

test('/healthz: a bad catalog or an unreachable source is reported, but the last good state keeps it healthy', async (t) => {
  const s = await serve(t);
  s.setHealth({
    catalog: { state: 'invalid', since: NOW - 60_000, problems: 3 },
    source: { state: 'down', since: NOW - 10_000, error: 'etcd 192.0.2.5:2379: connection refused' },
  });
  const reply = await call(s.port, '/healthz');
  assert.equal(reply.status, 200);
  const body = JSON.parse(reply.body);
  assert.deepEqual(body.catalog, { state: 'invalid', since: '2026-01-02T03:03:05.000Z', problems: 3 });
  assert.deepEqual(body.source, { state: 'down', since: '2026-01-02T03:03:55.000Z', error: 'etcd 192.0.2.5:2379: connection refused' });
});

test('/livez: 200 while alive, 503 when the agent says its loop is stuck', async (t) => {
  const s = await serve(t);
  assert.deepEqual(await call(s.port, '/livez').then((r) => [r.status, r.body]), [200, 'ok\n']);
  s.setAlive(false);
  assert.equal((await call(s.port, '/livez')).status, 503);
});

test('other paths are 404, other methods 405; HEAD is answered without a body; query strings are ignored', async (t) => {
  const { port } = await serve(t);
  assert.equal((await call(port, '/')).status, 404);
  assert.equal((await call(port, '/metricsx')).status, 404);
  const post = await call(port, '/metrics', 'POST');
  assert.equal(post.status, 405);
  assert.equal(post.headers['allow'], 'GET, HEAD');
  assert.equal((await call(port, '/healthz', 'DELETE')).status, 405);
  const head = await call(port, '/healthz', 'HEAD');
  assert.equal(head.status, 200);
  assert.equal(head.body, '');
  assert.equal((await call(port, '/livez?verbose=1')).status, 200);
});

test('close() returns even with a keep-alive connection open, and frees the port', async (t) => {
  const s = await serve(t);
  await new Promise<void>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: s.port, path: '/livez', headers: { Connection: 'keep-alive' } }, (res) => {
      res.resume();
      res.on('end', resolve);
    });
    req.on('error', reject);
    req.end();
  });
  await s.server.close();
  await assert.rejects(call(s.port, '/livez'), /ECONNREFUSED/);
});

test('a port in use is a ListenError naming the address, not a crash', async (t) => {
  const holder = createServer();
  await new Promise<void>((resolve) => holder.listen({ host: '127.0.0.1', port: 0 }, resolve));
  t.after(() => new Promise<void>((resolve) => holder.close(() => resolve())));
  const { port } = holder.address() as { port: number };
  const started = startHttp({
    address: { host: '127.0.0.1', port },
    metrics: createAgentMetrics(),
    health: healthy,
    syncPeriodMs: SYNC_PERIOD_MS,
    alive: () => true,
    onError: () => {},
  });
  await assert.rejects(started, (error: unknown) => {
    assert.ok(error instanceof ListenError);
    assert.equal(error.message, `cannot listen on 127.0.0.1:${port}: the port is in use`);
    return true;
  });
});

// The log's line format, caught from a stream instead of stdout.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import test from 'node:test';
import { createLogger } from '../../../src/agent/log.js';

function catcher() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString().split('\n').filter((l) => l !== ''));
      done();
    },
  });
  return { lines, destination };
}

test('one JSON object per line, with an ISO time, the level by name, the pid and the fields', () => {
  const { lines, destination } = catcher();
  const log = createLogger({ destination });
  log.info({ pass: 'full', durationMs: 182, namespacesChanged: 2 }, 'pass done');
  log.warn({ reason: 'namespace_gone', netns: '/run/netns/w1' }, 'namespace failed');
  assert.equal(lines.length, 2);
  const first = JSON.parse(lines[0]!);
  assert.equal(first.level, 'info');
  assert.equal(first.pid, process.pid);
  assert.equal(first.msg, 'pass done');
  assert.deepEqual([first.pass, first.durationMs, first.namespacesChanged], ['full', 182, 2]);
  assert.match(first.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.equal(first.hostname, undefined, 'the journal records the host');
  assert.equal(JSON.parse(lines[1]!).level, 'warn');
});

test('below the level nothing is written', () => {
  const { lines, destination } = catcher();
  const log = createLogger({ destination, level: 'warn' });
  log.info('quiet');
  log.debug('quieter');
  log.error({ err: new Error('boom') }, 'loud');
  assert.equal(lines.length, 1);
  const line = JSON.parse(lines[0]!);
  assert.equal(line.level, 'error');
  assert.equal(line.err.message, 'boom');
});

// The guest-console reader, on console text shaped like a real lane run: serial
// line ends, kernel lines, subtests, a failure with YAML, a skip, a file that failed to load.
import assert from 'node:assert/strict';
import test from 'node:test';
import { lastLines, parseGuestConsole } from './tap.js';

const CONSOLE = [
  'kernel-lane: 6.1.0-56-cloud-amd64, running 2 scenario file(s)',
  'TAP version 13',
  '# Subtest: alpha \\# one',
  '    # Subtest: inner',
  '    not ok 1 - inner',
  '    1..1',
  'ok 1 - alpha \\# one',
  '  ---',
  '  duration_ms: 1.4',
  '  ...',
  '# server web.1 listening',
  '# Subtest: beta fails',
  'not ok 2 - beta fails',
  '  ---',
  '  duration_ms: 1.0',
  "  failureType: 'testCodeFailure'",
  '  error: |-',
  '    one is not two',
  '  ...',
  '# Subtest: gamma',
  'ok 3 - gamma # SKIP needs sctp',
  '  ---',
  '  duration_ms: 0.1',
  '  ...',
  '# Error: load failure',
  '# Subtest: /vipmesh/dist/test/vm/broken.scenario.js',
  'not ok 2 - /vipmesh/dist/test/vm/broken.scenario.js',
  '  ---',
  "  error: 'test failed'",
  '  ...',
  '1..4',
  '# tests 4',
  '[  216.5] reboot: Power down',
  'VIPMESH-LANE-EXIT 1',
].map((l) => `${l}\r`).join('\n');

test('top-level results with names, directives, YAML and output', () => {
  const run = parseGuestConsole(CONSOLE);
  assert.equal(run.status, 1);
  assert.deepEqual(run.results.map((r) => [r.ok, r.name, r.directive]), [
    [true, 'alpha # one', undefined],
    [false, 'beta fails', undefined],
    [true, 'gamma', 'SKIP'],
    [false, '/vipmesh/dist/test/vm/broken.scenario.js', undefined],
  ]);
  assert.equal(run.results[1]!.yaml, "duration_ms: 1.0\nfailureType: 'testCodeFailure'\nerror: |-\n  one is not two");
  assert.equal(run.results[1]!.output, 'server web.1 listening');
  assert.equal(run.results[2]!.reason, 'needs sctp');
  assert.equal(run.results[3]!.output, 'Error: load failure');
});

test('no marker: no status', () => {
  const run = parseGuestConsole('SeaBIOS\nok 1 - a\n');
  assert.equal(run.status, undefined);
  assert.equal(run.results.length, 1);
  assert.equal(lastLines('a\r\nb\r\nc\r\n', 2), 'b\nc');
});

test('results belong to the group announced before them; a group may report nothing', () => {
  const run = parseGuestConsole([
    'kernel-lane: 6.1.0-56-cloud-amd64, running 1 scenario file(s) and 2 kernel test file(s)',
    'VIPMESH-LANE-GROUP scenarios',
    'TAP version 13',
    'ok 1 - vip',
    '# tests 1',
    'VIPMESH-LANE-GROUP test/kernel/adapters.test.js',
    'TAP version 13',
    '# this kernel has IPVS',
    'ok 1 - reads IPVS',
    'VIPMESH-LANE-GROUP test/kernel/reconcile.test.js',
    'VIPMESH-LANE-EXIT 1',
  ].join('\n'));
  assert.deepEqual(run.groups, ['scenarios', 'test/kernel/adapters.test.js', 'test/kernel/reconcile.test.js']);
  assert.deepEqual(run.results.map((r) => [r.group, r.name, r.output]), [
    ['scenarios', 'vip', ''],
    ['test/kernel/adapters.test.js', 'reads IPVS', 'this kernel has IPVS'],
  ]);
  assert.equal(run.status, 1);
});

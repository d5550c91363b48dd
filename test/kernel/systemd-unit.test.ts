// systemd/vipmesh.service as systemd reads it. `systemd-analyze verify` needs no
// running systemd; it does insist that ExecStart's program exists, and
// /usr/bin/vipmesh is where a global npm install puts it, not where a checkout
// has it. So the unit is verified as a copy whose ExecStart program (and only
// that) is a script in a temporary directory, and every other line is held to a
// clean verify.
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'node:test';
import { createRunner } from '../../src/kernel/exec.js';
import { ROOT } from '../helpers/paths.js';
import { requireTool } from '../helpers/tools.js';

const UNIT = join(ROOT, 'systemd', 'vipmesh.service');
const PROGRAM = '/usr/bin/vipmesh';

/** `Key=value` lines by section, in order (a key may repeat). */
function directives(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(\w+)\]$/.exec(line);
    if (header) {
      section = header[1]!;
      continue;
    }
    const eq = line.indexOf('=');
    assert.ok(eq > 0, `not a directive: ${line}`);
    const key = `${section}.${line.slice(0, eq)}`;
    out.set(key, [...(out.get(key) ?? []), line.slice(eq + 1)]);
  }
  return out;
}

test('the unit carries what SPEC §5 asks of it', () => {
  const unit = directives(readFileSync(UNIT, 'utf8'));
  const one = (key: string) => {
    const values = unit.get(key);
    assert.equal(values?.length, 1, `${key} once`);
    return values[0];
  };
  assert.equal(one('Service.Type'), 'notify');
  assert.equal(one('Service.NotifyAccess'), 'all');
  assert.equal(one('Service.Restart'), 'on-failure');
  assert.equal(one('Service.WatchdogSec'), '30');
  assert.equal(one('Service.ExecReload'), '/bin/kill -HUP $MAINPID');
  assert.equal(one('Service.RuntimeDirectory'), 'vipmesh');
  assert.equal(one('Service.RuntimeDirectoryPreserve'), 'yes');
  assert.equal(one('Service.ExecStart'), `${PROGRAM} agent`);
  const capabilities = one('Service.CapabilityBoundingSet')!.split(/\s+/);
  for (const needed of ['CAP_NET_ADMIN', 'CAP_SYS_ADMIN', 'CAP_SYS_PTRACE']) assert.ok(capabilities.includes(needed), needed);
  assert.equal(one('Install.WantedBy'), 'multi-user.target');
});

test('every capability it names is one systemd knows (an unknown name is dropped without a word)', async () => {
  await requireTool('systemd-analyze'); // Debian package: systemd
  const unit = directives(readFileSync(UNIT, 'utf8'));
  const names = (unit.get('Service.CapabilityBoundingSet') ?? []).flatMap((v) => v.split(/\s+/)).filter((n) => n !== '');
  assert.ok(names.length > 0);
  const result = await createRunner().run({ file: 'systemd-analyze', args: ['capability', ...names] });
  assert.equal(result.exitCode, 0, `${result.command}: ${result.stderr}`);
  for (const name of names) assert.match(result.stdout, new RegExp(`^${name.toLowerCase()}\\s+\\d+$`, 'm'));
});

test('systemd-analyze verify finds nothing to say about it', async (t) => {
  await requireTool('systemd-analyze');
  const dir = mkdtempSync(join(tmpdir(), 'vipmesh-unit-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const standIn = join(dir, 'vipmesh');
  writeFileSync(standIn, '#!/bin/sh\nexit 0\n');
  chmodSync(standIn, 0o755);

  const text = readFileSync(UNIT, 'utf8');
  const start = `ExecStart=${PROGRAM} `;
  assert.equal(text.split(start).length, 2, 'one ExecStart line to point elsewhere');
  const copy = join(dir, 'vipmesh.service');
  writeFileSync(copy, text.replace(start, `ExecStart=${standIn} `));

  const result = await createRunner().run({ file: 'systemd-analyze', args: ['verify', '--man=no', copy] });
  assert.equal(result.failure, undefined, result.command);
  assert.deepEqual(
    { exitCode: result.exitCode, output: (result.stdout + result.stderr).trim() },
    { exitCode: 0, output: '' },
    'verify prints warnings (unknown keys, bad values) and still exits 0: its output must be empty',
  );
});

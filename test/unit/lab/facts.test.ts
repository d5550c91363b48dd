// The demo's facts and the transcript it prints, read back as the kernel test reads it.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import test from 'node:test';
import { loadCatalog } from '../../../src/catalog/load.js';
import { type DemoPlan, demoPlan, digAddresses, dnsrrFact, parseTranscript, parseWhoami, publishedFact, spreadFact, tasksFact, transcriptText, vipFact } from '../../../src/lab/facts.js';
import { labTopology } from '../../../src/lab/topology.js';
import { FIXTURES } from '../../helpers/paths.js';

async function plan(): Promise<DemoPlan> {
  const loaded = await loadCatalog(join(FIXTURES, 'lab.yaml'));
  assert.ok(loaded.ok);
  const topology = labTopology(loaded.catalog);
  assert.ok(topology.ok);
  const planned = demoPlan(loaded.catalog, topology.topology);
  assert.ok(planned.ok, planned.ok ? '' : planned.problem);
  return planned.plan;
}

test('the demo of fixtures/lab.yaml: whoami from the client task, backend as the dnsrr service, 8080 on both nodes', async () => {
  const p = await plan();
  assert.deepEqual(p.client, { task: 'client', ns: 'vipmesh-lab-client' });
  assert.equal(p.service, 'whoami');
  assert.equal(p.vip, '10.0.1.2');
  assert.deepEqual([...p.tasks], [['whoami.1', '10.0.1.11'], ['whoami.2', '10.0.1.12'], ['whoami.3', '10.0.1.13']]);
  assert.deepEqual(p.published, { port: 8080, outside: 'vipmesh-lab-outside', nodes: [{ name: 'node-1', address: '192.0.2.11' }, { name: 'node-2', address: '192.0.2.12' }] });
  assert.deepEqual(p.dnsrr, { service: 'backend', addresses: ['10.0.1.21', '10.0.1.22'] });
});

test('dig +short output: addresses only', () => {
  assert.deepEqual(digAddresses(['10.0.1.2', ';; connection timed out; no servers could be reached', 'web.example.', ' 10.0.1.3 ']), ['10.0.1.2', '10.0.1.3']);
});

test('a whoami line parses; anything else does not', () => {
  assert.deepEqual(parseWhoami('whoami.2 10.0.1.12 from 10.0.1.250'), { task: 'whoami.2', address: '10.0.1.12', client: '10.0.1.250' });
  assert.equal(parseWhoami('curl: (7) Failed to connect to whoami port 80 after 4 ms: Could not connect to server'), undefined);
});

test('the facts hold on the right output and fail, saying why, on a wrong one', async () => {
  const p = await plan();
  assert.ok(vipFact(p, ['10.0.1.2']).ok);
  const wrongVip = vipFact(p, ['10.0.1.11', '10.0.1.12']);
  assert.ok(!wrongVip.ok);
  assert.match(wrongVip.text, /should answer the VIP 10\.0\.1\.2, and answered 10\.0\.1\.11 10\.0\.1\.12/);
  assert.ok(tasksFact(p, ['10.0.1.13', '10.0.1.11', '10.0.1.12']).ok);
  assert.ok(!tasksFact(p, ['10.0.1.13', '10.0.1.11']).ok);
  assert.ok(dnsrrFact(p, ['10.0.1.22', '10.0.1.21'])!.ok);
  assert.ok(!dnsrrFact(p, ['10.0.1.21'])!.ok);

  const spread = Array.from({ length: 10 }, (_, i) => `whoami.${(i % 3) + 1} 10.0.1.1${(i % 3) + 1} from 10.0.1.250`);
  assert.ok(spreadFact(p, spread).ok, spreadFact(p, spread).text);
  const twoOnly = spread.map((l) => l.replace(/^whoami\.3 10\.0\.1\.13/, 'whoami.1 10.0.1.11'));
  assert.match(spreadFact(p, twoOnly).text, /landing on all of them; 10 were, on 2 \(whoami\.1, whoami\.2\)/);
  const oneFailed = [...spread.slice(0, 9), 'curl: (28) Operation timed out'];
  assert.ok(!spreadFact(p, oneFailed).ok, 'nine answers of ten is not the fact');
  const wrongAddress = spread.map((l) => l.replace('whoami.1 10.0.1.11', 'whoami.1 10.0.1.12'));
  assert.ok(!spreadFact(p, wrongAddress).ok, 'a task answering at another task\'s address is not the fact');

  const node = { name: 'node-2', address: '192.0.2.12' };
  assert.ok(publishedFact(p, node, ['whoami.3 10.255.0.13 from 10.255.0.3']).ok);
  assert.ok(!publishedFact(p, node, ['curl: (7) Failed to connect', '(exit 7)']).ok);
});

test('a transcript reads back into its steps; comments, verdicts and blank lines are not output', () => {
  const text = [
    transcriptText({ command: 'ip netns exec vipmesh-lab-client dig +short whoami', output: ['10.0.1.2'] }),
    '# a comment says what comes next\n',
    '\n',
    transcriptText({ command: 'ip netns exec vipmesh-lab-client dig +short tasks.whoami', output: ['10.0.1.11', '10.0.1.12'] }),
    'ok: dig whoami answers the VIP 10.0.1.2',
  ].join('');
  const steps = parseTranscript(text);
  assert.equal(steps.length, 2);
  assert.equal(steps[0]!.command, 'ip netns exec vipmesh-lab-client dig +short whoami');
  assert.deepEqual(steps[0]!.output, ['10.0.1.2']);
  assert.deepEqual(steps[1]!.output, ['10.0.1.11', '10.0.1.12']);
});

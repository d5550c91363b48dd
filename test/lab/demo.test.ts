// `vipmesh lab demo` as a user runs it (SPEC §7, issue 14's acceptance), from the
// built CLI: its own output shows what seed article 003 shows with Docker. On a
// kernel without IPVS it runs inside the kernel-lane guest (minutes under QEMU),
// so it runs last in `npm test`; `npm run test:lab` runs it alone.
import assert from 'node:assert/strict';
import test from 'node:test';
import { type Step, digAddresses, parseTranscript, parseWhoami } from '../../src/lab/facts.js';
import { VIP, catalog, cli, whoamiTasks } from '../helpers/lab-fixture.js';
import { requireRoot } from '../helpers/netns.js';


function stepMatching(steps: readonly Step[], command: RegExp, output: string): Step {
  const step = steps.find((s) => command.test(s.command));
  assert.ok(step !== undefined, `the demo ran no command matching ${command}:\n${output}`);
  return step;
}

/** The facts of issue 14, read from the demo's output (not from its own verdict lines). */
function checkDemo(result: { exitCode?: number | undefined; all?: unknown }): void {
  const output = String(result.all ?? '');
  const steps = parseTranscript(output);
  assert.deepEqual(digAddresses(stepMatching(steps, /^ip netns exec vipmesh-lab-client dig \+short whoami$/, output).output), [VIP], output);
  assert.deepEqual(digAddresses(stepMatching(steps, /^ip netns exec vipmesh-lab-client dig \+short tasks\.whoami$/, output).output).sort(),
    whoamiTasks.map((t) => t.addresses['appnet']!).sort(), output);

  const answers = stepMatching(steps, /^for i in \$\(seq 10\); do ip netns exec vipmesh-lab-client curl -sS -m \d+ http:\/\/whoami\/; done$/, output).output.map(parseWhoami);
  assert.equal(answers.length, 10, output);
  for (const a of answers) {
    assert.ok(a !== undefined, output);
    assert.equal(a.address, catalog.tasks[a.task]?.addresses['appnet'], `${a.task} answered at its own overlay address:\n${output}`);
  }
  assert.equal(new Set(answers.map((a) => a!.task)).size, 3, `ten requests land on three distinct tasks:\n${output}`);

  for (const node of Object.values(catalog.nodes)) {
    const answer = parseWhoami(stepMatching(steps, new RegExp(`^ip netns exec vipmesh-lab-outside curl -sS -m \\d+ http://${node.address.replaceAll('.', '\\.')}:8080/$`), output).output[0] ?? '');
    assert.ok(answer !== undefined && answer.task.startsWith('whoami.'), `${node.name}'s published port answers from outside:\n${output}`);
  }
  assert.equal(result.exitCode, 0, output);
}

// The guest boots under emulation and runs the whole lab there: 5–8 minutes on
// 2 loaded cores (load average 10). The limit only catches a hang, and two of
// them must still fit CI's 90 minutes beside the rest of the suite.
const DEMO_TIMEOUT_MS = 20 * 60_000;
// The demo is stopped (SIGTERM: it ends the guest and runs down) a minute before
// the test's own limit, so a hang still leaves nothing behind.
const DEMO_RUN_MS = DEMO_TIMEOUT_MS - 60_000;

test('lab demo: dig whoami is the VIP, tasks.whoami the three tasks, ten requests land on three tasks, 8080 answers on both nodes', { timeout: DEMO_TIMEOUT_MS }, async () => {
  requireRoot();
  checkDemo(await cli(['lab', 'demo'], DEMO_RUN_MS));
});

test('lab demo --etcd: the same, with the agents reading the catalog from the lab\'s etcd', { timeout: DEMO_TIMEOUT_MS }, async () => {
  requireRoot();
  const result = await cli(['lab', 'demo', '--etcd'], DEMO_RUN_MS);
  assert.match(String(result.all), /the agents read etcd:\/\/127\.0\.0\.1:\d+\/vipmesh-lab/);
  checkDemo(result);
});


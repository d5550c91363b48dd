// Guest-only scenario (kernel lane): the agent, not a one-shot reconcile, keeps
// a VIP's IPVS service in step with the catalog while a client keeps opening
// connections to it. The removed task's server keeps running, so a connection
// wrongly sent there would answer with its name and be seen.
import assert from 'node:assert/strict';
import test from 'node:test';
import { startAgent } from './helpers/agent.js';
import type { StreamRecord } from './helpers/client.js';
import { Lab, tally } from './helpers/lab.js';
import { VIP, vipCluster } from './helpers/vip-cluster.js';

const three = [{}, {}, {}];
const VICTIM = 1; // web.2 leaves and comes back
const victim = `web.${VICTIM + 1}`;
const victimAddress = `10.0.1.${11 + VICTIM}`;
/** 20 connections a second. */
const PERIOD_MS = 50;
/** The stream lasts at least this long, and each phase sees at least PER_PHASE connections opened. */
const STREAM_MS = 20_000;
const PER_PHASE = 40;

const backend = (r: StreamRecord): string | undefined => ('answer' in r ? r.answer.split(' ')[0] : undefined);
const show = (records: readonly StreamRecord[]): string => records.map((r) => JSON.stringify(r)).join('\n');

/** The victim's real server line in `ipvsadm -Ln`: its weight, or undefined when it is gone. */
function victimWeight(ipvs: string): number | undefined {
  const match = new RegExp(`-> ${victimAddress.replaceAll('.', '\\.')}:0\\s+Masq\\s+(\\d+)\\s`).exec(ipvs);
  return match === null ? undefined : Number(match[1]);
}

async function until(what: string, holds: () => boolean): Promise<void> {
  const deadline = Date.now() + 180_000; // only a hang: the stream opens a connection every PERIOD_MS
  while (!holds()) {
    if (Date.now() > deadline) throw new Error(`still waiting for ${what} after 180 s`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

test('agent: a service scaled down and back up under a steady stream of connections to its VIP', async (t) => {
  const lab = new Lab(t);
  const c = await vipCluster(lab, 3);
  const agent = startAgent(t, c.write(three), c.runDir, 'node-1', ['--sync-period', '30s', '--min-sync-period', '1s']);
  // Ready comes after the first full pass, with the catalog watch armed.
  await agent.line('the agent ready after its first pass', (l) => l.event === 'ready');
  assert.equal(victimWeight(await c.ipvs()), 1, `the agent's first pass programmed ${victim}:\n${await c.ipvs()}`);

  const stream = lab.stream(c.client, VIP, 80, PERIOD_MS);
  const streamStarted = Date.now();
  const openedSince = (at: number) => stream.records.filter((r) => r.start >= at).length;
  await until(`${PER_PHASE} connections before the change, ${victim} among them`, () =>
    stream.records.length >= PER_PHASE && stream.records.some((r) => backend(r) === victim));

  // Scale down: web.2 leaves the catalog while its task still runs, so its real server drains (weight 0, SPEC §2).
  let mark = agent.lines.length;
  const removalWritten = Date.now();
  c.write(three.map((s, i) => (i === VICTIM ? { omit: true } : s)));
  await agent.programmed(mark);
  // From here on no new connection may reach the victim: the pass that programmed its removal has ended.
  const removed = Date.now();
  const drained = victimWeight(await c.ipvs());
  assert.ok(drained === undefined || drained === 0, `after the pass, ${victim}'s real server is draining (weight 0) or gone, not weight ${drained}:\n${await c.ipvs()}`);
  await until(`${PER_PHASE} connections opened while ${victim} is out`, () => openedSince(removed) >= PER_PHASE);

  // Scale back up.
  mark = agent.lines.length;
  const readdWritten = Date.now();
  c.write(three);
  await agent.programmed(mark);
  const readded = Date.now();
  assert.equal(victimWeight(await c.ipvs()), 1, `after the pass, ${victim} is back at weight 1:\n${await c.ipvs()}`);
  await until(`${PER_PHASE} connections opened since ${victim} came back, and ${STREAM_MS} ms of stream`, () =>
    openedSince(readded) >= PER_PHASE && Date.now() - streamStarted >= STREAM_MS);
  const records = await stream.stop();

  const failed = records.filter((r) => 'error' in r);
  assert.deepEqual(failed, [], `every connection answers (${failed.length} of ${records.length} failed):\n${show(failed)}`);
  // Opened after the removal was programmed and before the re-add was even written: the victim must be in none.
  const whileOut = records.filter((r) => r.start >= removed && r.start < readdWritten);
  const strays = whileOut.filter((r) => backend(r) === victim);
  assert.deepEqual(strays, [], `no connection reaches ${victim} once its removal is programmed (${strays.length} of ${whileOut.length} did):\n${show(strays)}`);
  assert.deepEqual(Object.keys(tally(whileOut.map((r) => ('answer' in r ? r.answer : '')))).sort(), ['web.1', 'web.3'], `the surviving tasks share the connections while ${victim} is out`);
  const before = records.filter((r) => r.start < removalWritten);
  assert.ok(before.some((r) => backend(r) === victim), `${victim} served before it was removed:\n${show(before)}`);
  const after = records.filter((r) => r.start >= readded);
  assert.ok(after.some((r) => backend(r) === victim), `${victim} gets connections again once re-added:\n${show(after)}`);
  t.diagnostic(`${records.length} connections over ${Math.round((Date.now() - streamStarted) / 1000)} s; ` +
    `removal programmed ${removed - removalWritten} ms and re-add ${readded - readdWritten} ms after the catalog was written; ` +
    `while out: ${JSON.stringify(tally(whileOut.map((r) => ('answer' in r ? r.answer : ''))))}`);

  const ipvsBefore = await c.ipvs();
  assert.deepEqual(await agent.stop(), { code: 0, signal: null }, 'the agent exits 0 on SIGTERM');
  assert.equal(victimWeight(await c.ipvs()), 1, `the stopped agent leaves IPVS in place:\nbefore:\n${ipvsBefore}\nafter:\n${await c.ipvs()}`);
});

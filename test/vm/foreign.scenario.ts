// Guest-only scenario (kernel lane): IPVS services and rules vipmesh did not
// create survive reconcile and cleanup, byte for byte.
import assert from 'node:assert/strict';
import test from 'node:test';
import { Lab, inNs, vipmesh } from './helpers/lab.js';
import { vipCluster } from './helpers/vip-cluster.js';

test('scenario 6: a foreign IPVS service and foreign rules survive reconcile and cleanup', async (t) => {
  const lab = new Lab(t);
  const c = await vipCluster(lab, 2);
  const ns = c.client;
  await inNs(ns, 'ipvsadm', ['-A', '-t', '10.9.9.9:80', '-s', 'wlc']);
  await inNs(ns, 'ipvsadm', ['-a', '-t', '10.9.9.9:80', '-r', '10.9.9.10:80', '-m', '-w', '2']);
  await inNs(ns, 'ipvsadm', ['-A', '-f', '100', '-s', 'rr']);
  await inNs(ns, 'iptables', ['-t', 'mangle', '-A', 'OUTPUT', '-d', '10.9.9.9/32', '-j', 'MARK', '--set-mark', '100']);
  await inNs(ns, 'iptables', ['-t', 'nat', '-N', 'FOREIGN']);
  await inNs(ns, 'iptables', ['-t', 'nat', '-A', 'POSTROUTING', '-j', 'FOREIGN']);
  const foreignIpvs = async () => (await inNs(ns, 'ipvsadm', ['-Sn'])).split('\n').filter((l) => !/-f 14\d{8}\b/.test(l));
  const foreignRules = async () => (await inNs(ns, 'iptables-save', [])).split('\n').filter((l) => l !== '' && !l.startsWith('#') && !l.includes('VIPMESH-'));
  const ipvsBefore = await foreignIpvs();
  const rulesBefore = await foreignRules();
  assert.equal(ipvsBefore.length, 3, ipvsBefore.join('\n'));

  await c.reconcile([{}, {}]);
  assert.match(await inNs(ns, 'ipvsadm', ['-Sn']), /-A -f 14\d{8} -s rr/, 'vipmesh programmed its own service');
  assert.deepEqual(await foreignIpvs(), ipvsBefore);
  assert.deepEqual(await foreignRules(), rulesBefore);

  const catalogFile = `${lab.dir}/catalog.yaml`;
  const cleanup = await vipmesh(c.runDir, 'cleanup', '-c', catalogFile, '--node', 'node-1');
  assert.equal(cleanup.exitCode, 0, `${cleanup.stdout}\n${cleanup.stderr}`);
  const after = await inNs(ns, 'ipvsadm', ['-Sn']);
  assert.doesNotMatch(after, /-f 14\d{8}/, 'no vipmesh IPVS service is left');
  assert.deepEqual(await foreignIpvs(), ipvsBefore);
  assert.deepEqual(await foreignRules(), rulesBefore);
  assert.ok(!(await inNs(ns, 'iptables-save', [])).includes('VIPMESH-'));
});

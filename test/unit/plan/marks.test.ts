import assert from 'node:assert/strict';
import test from 'node:test';
import { assignVipMarks, isVipMark, isVipmeshMark, portMark, vipHomeMark } from '../../../src/plan/marks.js';

function collidingPair(): [string, string] {
  const seen = new Map<number, string>();
  for (let i = 0; ; i++) {
    const label = `s${i}/net`;
    const home = vipHomeMark(label);
    const other = seen.get(home);
    if (other !== undefined) return [other, label];
    seen.set(home, label);
  }
}

test('port marks follow 0x56000000 + 0x10000 × protocol + port and stay out of the VIP block', () => {
  assert.equal(portMark('tcp', 8080), 0x56000000 + 6 * 0x10000 + 8080);
  assert.equal(portMark('udp', 53), 0x56000000 + 17 * 0x10000 + 53);
  for (const mark of [portMark('tcp', 65535), portMark('udp', 65535), portMark('sctp', 65535)]) {
    assert.ok(isVipmeshMark(mark));
    assert.ok(!isVipMark(mark), `port mark ${mark.toString(16)} must not fall in the VIP block`);
  }
});

test('VIP marks are stable when other services come and go', () => {
  const labels = Array.from({ length: 500 }, (_, i) => `svc${i}/appnet`);
  const all = assignVipMarks(labels, undefined);
  const fewer = assignVipMarks(labels.filter((_, i) => i % 3 !== 0), undefined);
  const more = assignVipMarks([...labels, 'newcomer/appnet', 'another/appnet'], undefined);
  for (const [label, mark] of fewer) assert.equal(mark, all.get(label), label);
  for (const [label, mark] of all) assert.equal(more.get(label), mark, label);
  assert.equal(new Set(all.values()).size, labels.length, 'marks are unique');
  for (const mark of all.values()) assert.ok(isVipMark(mark));
});

test('a hash collision probes past the taken slot in name order', () => {
  const [first, second] = collidingPair();
  const home = vipHomeMark(first);
  const marks = assignVipMarks([second, first], undefined);
  const [lower, higher] = first < second ? [first, second] : [second, first];
  assert.equal(marks.get(lower), home);
  assert.equal(marks.get(higher), home + 1);
});

test('a mark already programmed is kept even when a newcomer hashes to it', () => {
  const [first, second] = collidingPair();
  const home = vipHomeMark(first);
  const [lower, higher] = first < second ? [first, second] : [second, first];
  // The later name got the home slot first (it existed alone); adding the earlier
  // name must not take it away.
  const marks = assignVipMarks([lower, higher], new Map([[higher, home]]));
  assert.equal(marks.get(higher), home);
  assert.equal(marks.get(lower), home + 1);
});

test('existing marks outside the VIP block or for unwanted VIPs are ignored', () => {
  const marks = assignVipMarks(['a/n'], new Map([['a/n', 0x100], ['gone/n', vipHomeMark('a/n')]]));
  assert.equal(marks.get('a/n'), vipHomeMark('a/n'));
  assert.equal(marks.size, 1);
});

import assert from 'node:assert/strict';
import test from 'node:test';
import { bytesText, memoryDelta, parseMeminfo, parseSlabinfo } from '../../../bench/kernel-memory.js';

const slabinfo = (kmalloc: number, conn: number) => `slabinfo - version: 2.1
# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>
ip_vs_conn             ${conn}      64    288   28    2 : tunables    0    0    0 : slabdata      2      2      0
kmalloc-512         ${kmalloc}   1024    512   32    4 : tunables    0    0    0 : slabdata     32     32      0
`;

const meminfo = (available: number, sunreclaim: number) =>
  `MemTotal:        3000000 kB\nMemAvailable:    ${available} kB\nSlab:            ${sunreclaim + 100} kB\nSUnreclaim:      ${sunreclaim} kB\nPercpu:             512 kB\nHugePages_Total:       0\n`;

test('meminfo in kB, slabinfo as active objects and object size', () => {
  const m = parseMeminfo(meminfo(2000000, 40000));
  assert.equal(m.get('MemAvailable'), 2000000);
  assert.equal(m.has('HugePages_Total'), false, 'no kB unit: not a size');
  assert.deepEqual(parseSlabinfo(slabinfo(100, 3)).get('kmalloc-512'), { objects: 100, size: 512 });
  assert.equal(parseSlabinfo(slabinfo(100, 3)).size, 2, 'the header lines are no caches');
});

test('the difference: slab objects by cache, meminfo in bytes, MemAvailable as a drop', () => {
  const before = { meminfo: parseMeminfo(meminfo(2000000, 40000)), slabs: parseSlabinfo(slabinfo(100, 3)) };
  const after = { meminfo: parseMeminfo(meminfo(1990000, 48000)), slabs: parseSlabinfo(slabinfo(1100, 3)) };
  const d = memoryDelta(before, after);
  assert.equal(d.slabObjects, 1000 * 512);
  assert.equal(d.sunreclaim, 8000 * 1024);
  assert.equal(d.slab, 8000 * 1024);
  assert.equal(d.percpu, 0);
  assert.equal(d.availableDrop, 10000 * 1024);
  assert.deepEqual(d.caches, [{ name: 'kmalloc-512', objects: 1000, bytes: 512000 }]);
  assert.equal(memoryDelta({ meminfo: before.meminfo }, after).slabObjects, undefined, 'no slabinfo: no slab objects');
});

test('sizes in binary units', () => {
  assert.equal(bytesText(512), '512 B');
  assert.equal(bytesText(1536), '1.5 KiB');
  assert.equal(bytesText(5 * 1024 * 1024), '5.0 MiB');
  assert.equal(bytesText(1.5 * 1024 ** 3), '1.50 GiB');
});

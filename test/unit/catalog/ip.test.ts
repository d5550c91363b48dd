import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Address4 } from 'ip-address';
import { contains, dottedQuadValue, parseCidr, parseIp, placeV4, reservedRole, type Cidr } from '../../../src/catalog/ip.js';

function random(seed: number): () => number {
  return () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
}

test('dotted quads are read without ip-address, to the same value and text', () => {
  const next = random(3);
  for (let i = 0; i < 5000; i++) {
    const value = Math.floor(next() * 2 ** 32);
    const text = Address4.fromBigInt(BigInt(value)).correctForm();
    assert.equal(dottedQuadValue(text), value);
    const parsed = parseIp(text);
    assert.ok(parsed.ok);
    assert.deepEqual(parsed.value, { family: 4, value: BigInt(value), text });
  }
  for (const text of ['0.0.0.0', '255.255.255.255', '10.0.1.2']) assert.equal(dottedQuadValue(text), Number(new Address4(text).bigInt()));
});

test('dottedQuadValue accepts exactly what ip-address\'s dotted-quad pattern accepts', () => {
  const PATTERN = /^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$/;
  const next = random(17);
  const parts = ['0', '00', '01', '1', '9', '10', '99', '100', '199', '200', '249', '250', '255', '256', '299', '300', '999', '1000', '0255', '', 'a', '-1', ' 1', '1 '];
  const texts: string[] = ['0.0.0.0', '255.255.255.255', '1.2.3.4\n', '1.2.3.4.', '.1.2.3.4', '1..2.3', '1.2.3'];
  for (let i = 0; i < 20000; i++) {
    const count = next() < 0.9 ? 4 : Math.floor(next() * 6);
    texts.push(Array.from({ length: count }, () => parts[Math.floor(next() * parts.length)]).join(next() < 0.97 ? '.' : ','));
  }
  for (const text of texts) {
    const m = PATTERN.exec(text);
    const expected = m === null ? undefined : ((Number(m[1]) * 256 + Number(m[2])) * 256 + Number(m[3])) * 256 + Number(m[4]);
    assert.equal(dottedQuadValue(text), expected, JSON.stringify(text));
  }
});

test('what is not a plain dotted quad takes the general path, with its verdicts', () => {
  for (const text of ['010.0.0.1', '1.2.3', '1.2.3.4.5', '256.1.1.1', ' 1.2.3.4', '1.2.3.4 ', '1.2.3.-4', '::ffff:1.2.3.4', '']) {
    assert.equal(dottedQuadValue(text), undefined, text);
  }
  assert.deepEqual(parseIp('010.0.0.1'), { ok: false, message: '010.0.0.1 is not a valid IPv4 or IPv6 address' });
  assert.deepEqual(parseIp('FD00:0::1'), { ok: true, value: { family: 6, value: 0xfd000000000000000000000000000001n, text: 'fd00::1' } });
  assert.deepEqual(parseCidr('10.1.0.0/16'), { ok: true, value: { family: 4, base: 0x0a010000n, prefix: 16, text: '10.1.0.0/16' } });
  assert.deepEqual(parseCidr('10.1.2.0/16'), { ok: false, message: '10.1.2.0/16 has host bits set; the network is 10.1.0.0/16' });
});

test('placeV4 says what contains() and reservedRole() say', () => {
  const next = random(5);
  const cidrs: Cidr[] = [];
  for (const prefix of [0, 1, 8, 16, 24, 29, 30, 31, 32]) {
    const value = Math.floor(next() * 2 ** 32);
    const base = value - (value % 2 ** (32 - prefix));
    const parsed = parseCidr(`${Address4.fromBigInt(BigInt(base)).correctForm()}/${prefix}`);
    assert.ok(parsed.ok);
    cidrs.push(parsed.value);
  }
  for (const cidr of cidrs) {
    const base = Number(cidr.base);
    const size = 2 ** (32 - cidr.prefix);
    const candidates = [base, base + 1, base + size - 1, base + size, base - 1, Math.floor(next() * 2 ** 32)]
      .filter((v) => v >= 0 && v < 2 ** 32);
    for (const value of candidates) {
      const ip = { family: 4 as const, value: BigInt(value), text: '' };
      const expected = !contains(cidr, ip) ? 'outside' : reservedRole(cidr, ip) ?? 'host';
      assert.equal(placeV4(cidr, value), expected, `${cidr.text} ${value}`);
    }
  }
});

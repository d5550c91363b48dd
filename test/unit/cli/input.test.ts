import assert from 'node:assert/strict';
import test from 'node:test';
import { UsageError } from '../../../src/cli/errors.js';
import { parseKernelRelease, parseNodeName, quoted } from '../../../src/cli/input.js';

test('kernel releases as uname -r prints them are accepted unchanged', () => {
  for (const release of [
    '6.1.0-28-cloud-amd64', '5.4.0-150-generic', '6.1', '6.8.12', '6.1.21-v8+', '6.1.21+', '6.2.0-rc3+',
    '5.15.90.1-microsoft-standard-WSL2', '4.18.0-513.5.1.el8_9.x86_64', '6.6.1-arch1-1', '3.10.0-1160.el7.x86_64',
  ]) {
    assert.equal(parseKernelRelease(release), release);
  }
});

test('anything else is a usage error that quotes it on one line', () => {
  for (const bad of ['garbage', '', '6', 'v6.1.0', '6.1.0 ', ' 6.1', '6.1.0\n-x', '6..1', '6.1.0-a b', '6.1.x', '6.1.0.', `6.1.0-${'x'.repeat(80)}`]) {
    assert.throws(() => parseKernelRelease(bad), (error: unknown) => {
      assert.ok(error instanceof UsageError, JSON.stringify(bad));
      assert.match(error.message, /is not a kernel release: give it as uname -r prints it, MAJOR\.MINOR\[\.PATCH\]\[-suffix\]/);
      assert.doesNotMatch(error.message, /\n/);
      return true;
    });
  }
});

test('a node name is an RFC 1123 label; anything else names no node', () => {
  for (const name of ['node-1', 'docker-manager01', 'a', 'constructor', 'toString', 'x'.repeat(63)]) assert.equal(parseNodeName(name), name);
  for (const bad of ['__proto__', '', '-a', 'a-', 'a.b', 'a\nb', 'x'.repeat(64), 'x'.repeat(10 * 1024 * 1024)]) {
    assert.throws(() => parseNodeName(bad), (error: unknown) => {
      assert.ok(error instanceof UsageError);
      assert.match(error.message, /^--node ".*"(?:… \(\d+ characters\))? is not a node name: /);
      assert.doesNotMatch(error.message, /\n/);
      assert.ok(error.message.length < 300, 'a huge name is shortened');
      return true;
    });
  }
});

test('a value is quoted as a JSON string, and a long one is cut with its length', () => {
  assert.equal(quoted('a"b\n'), '"a\\"b\\n"');
  assert.equal(quoted('x'.repeat(100)), `"${'x'.repeat(64)}"… (100 characters)`);
});

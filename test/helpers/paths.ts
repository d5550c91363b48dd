import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

// Compiled tests live in dist/test/helpers; the repo root is three levels up.
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const FIXTURES = join(ROOT, 'fixtures');
export const GOLDEN = join(ROOT, 'test', 'golden');
export const CLI = join(ROOT, 'dist', 'src', 'cli', 'bin.js');

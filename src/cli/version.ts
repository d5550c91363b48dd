// The version `vipmesh --version` prints: package.json's, read when asked, from the
// package this file was installed with (dist/src/cli/ → the package root).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const PACKAGE_JSON = fileURLToPath(new URL('../../../package.json', import.meta.url));

export function packageVersion(file = PACKAGE_JSON): string {
  try {
    const version = (JSON.parse(readFileSync(file, 'utf8')) as { version?: unknown }).version;
    if (typeof version === 'string') return version;
    return `unknown (${file} has no version)`;
  } catch (error) {
    return `unknown (cannot read ${file}: ${(error as Error).message})`;
  }
}

// Option values checked before anything runs. Values are quoted back in messages
// as JSON strings, shortened: a 10 MB --node or one holding a newline still makes
// one readable line.
import { isLabel } from '../catalog/check-names.js';
import { UsageError } from './errors.js';

const SHOWN_MAX = 64;

/** A value typed by the user, as a message quotes it. */
export function quoted(value: string): string {
  if (value.length <= SHOWN_MAX) return JSON.stringify(value);
  return `${JSON.stringify(value.slice(0, SHOWN_MAX))}… (${value.length} characters)`;
}

/**
 * `uname -r`: MAJOR.MINOR[.PATCH] and whatever the kernel's build appended
 * (`6.1.0-28-cloud-amd64`, `6.1.21-v8+`, `6.1.21+`, `5.15.90.1-microsoft-standard-WSL2`,
 * `4.18.0-513.el8.x86_64`). The kernel keeps it under 65 bytes.
 */
const KERNEL_RELEASE = /^\d{1,6}\.\d{1,6}(?:\.\d{1,6})*(?:[-+_~][0-9A-Za-z._+~-]*)?$/;

export function parseKernelRelease(value: string): string {
  if (value.length <= 64 && KERNEL_RELEASE.test(value)) return value;
  throw new UsageError(
    `--kernel-release ${quoted(value)} is not a kernel release: give it as uname -r prints it, ` +
      'MAJOR.MINOR[.PATCH][-suffix] (e.g. 6.1.0-28-cloud-amd64)',
  );
}

/** Catalog node names are RFC 1123 labels, so anything else names no node. */
export function parseNodeName(value: string): string {
  if (isLabel(value)) return value;
  throw new UsageError(
    `--node ${quoted(value)} is not a node name: nodes are named by 1 to 63 letters, digits and hyphens, ` +
      'not starting or ending with a hyphen',
  );
}

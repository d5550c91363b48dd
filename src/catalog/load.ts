import { constants, type Stats } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { parseText } from './parse-text.js';
import { problem, sortProblems } from './problems.js';
import type { Catalog, CatalogProblem } from './types.js';
import { validateCatalog } from './validate.js';

export type LoadResult =
  | { ok: true; catalog: Catalog }
  | { ok: false; problems: CatalogProblem[] };

/** Pure: parses YAML or JSON text and validates it, reporting every problem found. */
export function parseCatalog(text: string): LoadResult {
  return parseCatalogText(text).result;
}

export interface ParsedCatalog {
  readonly result: LoadResult;
  /** The plain document the text holds (before validation normalizes it), when it parsed at all. */
  readonly document?: unknown;
}

/** parseCatalog, keeping the plain document too: `catalog push` stores the file's own values, not defaults filled in. */
export function parseCatalogText(text: string): ParsedCatalog {
  const parsed = parseText(text);
  if (!('value' in parsed)) return { result: { ok: false, problems: sortProblems(parsed.problems) } };
  const validated = validateCatalog(parsed.value);
  if (parsed.problems.length === 0) return { result: validated, document: parsed.value };
  // YAML warnings (an unknown tag) leave a usable document; report them with whatever else is wrong.
  return {
    result: { ok: false, problems: sortProblems([...parsed.problems, ...(validated.ok ? [] : validated.problems)]) },
    document: parsed.value,
  };
}

/** A catalog file that could not be read, as the single problem loadCatalog reports. */
export const unreadableCatalog = (file: string, reason: string): LoadResult =>
  ({ ok: false, problems: [problem('', `can't read the catalog ${file}: ${reason}`)] });

/**
 * The largest catalog file read. The biggest catalog the benchmarks plan, 10 000
 * services × 10 tasks, is 20 MB as indented JSON; 64 MiB leaves room for three
 * times that, and keeps a mistaken `-c` (a log, a disk image) from being read
 * into memory and parsed, which for YAML takes seconds per megabyte.
 */
export const MAX_CATALOG_BYTES = 64 * 1024 * 1024;
const MAX_SHOWN = '64 MiB';

/**
 * Reads the file (utf8), then parseCatalog; a file that can't be read is a
 * single problem. Only a regular file (after symlinks) is opened at all: a FIFO
 * would block the read until a writer came, a device could be endless
 * (/dev/zero) or act on being opened.
 */
export async function loadCatalog(file: string): Promise<LoadResult> {
  const read = await readCatalogFile(file);
  if (!read.ok) return unreadableCatalog(file, read.reason);
  return parseCatalog(read.text);
}

export type CatalogText = { ok: true; text: string } | { ok: false; reason: string };

/** The file's text, read as loadCatalog reads it; `catalog push` needs the text itself. */
export async function readCatalogFile(file: string): Promise<CatalogText> {
  let handle: FileHandle | undefined;
  try {
    const refused = refusal(await stat(file));
    if (refused !== undefined) return { ok: false, reason: refused };
    // The path may have changed since stat: O_NONBLOCK keeps a FIFO put there
    // from blocking the open, and the handle is judged again before any read.
    handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
    const info = await handle.stat();
    const again = refusal(info);
    if (again !== undefined) return { ok: false, reason: again };
    const bytes = await readAtMost(handle, info.size);
    if (bytes === undefined) return { ok: false, reason: `it grew past ${MAX_SHOWN} while being read, more than a catalog may be` };
    return { ok: true, text: bytes.toString('utf8') };
  } catch (e) {
    return { ok: false, reason: reason(e) };
  } finally {
    await handle?.close();
  }
}

/** Why a file with these stats is not read, if it isn't. */
function refusal(info: Stats): string | undefined {
  if (!info.isFile()) return `it is ${kindOf(info)}, not a regular file`;
  if (info.size > MAX_CATALOG_BYTES) return `it is ${info.size} bytes, more than the ${MAX_SHOWN} a catalog may be`;
  return undefined;
}

function kindOf(info: Stats): string {
  if (info.isDirectory()) return 'a directory';
  if (info.isFIFO()) return 'a FIFO (named pipe)';
  if (info.isCharacterDevice()) return 'a character device';
  if (info.isBlockDevice()) return 'a block device';
  if (info.isSocket()) return 'a socket';
  return 'not a file';
}

/**
 * Every byte through the handle, or undefined past MAX_CATALOG_BYTES: the size
 * fstat gave is where reading starts, not a promise (the file may be growing).
 */
async function readAtMost(handle: FileHandle, expected: number): Promise<Buffer | undefined> {
  let buffer = Buffer.allocUnsafe(Math.min(expected, MAX_CATALOG_BYTES) + 1);
  let length = 0;
  for (;;) {
    if (length === buffer.length) {
      if (length > MAX_CATALOG_BYTES) return undefined;
      const bigger = Buffer.allocUnsafe(Math.min(length * 2, MAX_CATALOG_BYTES + 1));
      buffer.copy(bigger, 0, 0, length);
      buffer = bigger;
    }
    const { bytesRead } = await handle.read(buffer, length, buffer.length - length, null);
    if (bytesRead === 0) return buffer.subarray(0, length);
    length += bytesRead;
  }
}

const KNOWN: ReadonlyMap<string, string> = new Map([
  ['ENOENT', 'no such file'], ['EACCES', 'permission denied'], ['ENOTDIR', 'a parent is not a directory'],
  ['ELOOP', 'too many levels of symbolic links'],
]);

function reason(e: unknown): string {
  if (e instanceof Error && 'code' in e) {
    const code = String(e.code);
    return KNOWN.get(code) ?? `${code}: ${e.message}`;
  }
  return e instanceof Error ? e.message : String(e);
}

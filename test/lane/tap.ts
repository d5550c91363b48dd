// Reads the guest's console: node's TAP reporter output mixed with kernel and /init
// lines. Only top-level results count (subtests are indented and roll up into them).
// /init runs one `node --test` per group (the scenarios, each kernel test file) and
// announces it on a VIPMESH-LANE-GROUP line; TAP itself does not name files.

export interface GuestResult {
  readonly ok: boolean;
  readonly name: string;
  /** The group announced before it, if any. */
  readonly group?: string;
  readonly directive?: 'SKIP' | 'TODO';
  readonly reason?: string;
  /** The result's YAML block (error, expected, actual, stack), dedented. */
  readonly yaml: string;
  /** What the test printed: `# ` comment lines since the previous result. */
  readonly output: string;
}

export interface GuestRun {
  readonly results: GuestResult[];
  /** Every group announced, in order, whether or not it reported a result. */
  readonly groups: string[];
  /** The status on the VIPMESH-LANE-EXIT line, if the guest got that far. */
  readonly status?: number;
}

const RESULT = /^(not ok|ok) \d+ - ((?:[^\\#]|\\.)*?)(?: # (SKIP|TODO)\b ?(.*))?$/;
const MARKER = /^VIPMESH-LANE-EXIT (\d+)$/;
const GROUP = /^VIPMESH-LANE-GROUP (.+)$/;
const OUTPUT_LINES = 40;

/** node's TAP reporter escapes `\` and `#` in names; undo it. */
const unescape = (name: string) => name.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));

export function parseGuestConsole(text: string): GuestRun {
  const lines = text.split('\n').map((l) => l.replace(/\r$/, ''));
  const results: GuestResult[] = [];
  const groups: string[] = [];
  let group: string | undefined;
  let status: number | undefined;
  let output: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const marker = MARKER.exec(line);
    if (marker) status = Number(marker[1]);
    const announced = GROUP.exec(line);
    if (announced) {
      group = announced[1]!;
      groups.push(group);
      output = [];
    }
    if (line.startsWith('# ') && !line.startsWith('# Subtest: ')) output.push(line.slice(2));
    const m = RESULT.exec(line);
    if (!m) continue;
    const yaml: string[] = [];
    if (lines[i + 1] === '  ---') {
      for (i += 2; i < lines.length && lines[i] !== '  ...'; i++) yaml.push(lines[i]!.slice(2));
    }
    results.push({
      ok: m[1] === 'ok',
      name: unescape(m[2]!),
      ...(group === undefined ? {} : { group }),
      ...(m[3] ? { directive: m[3] as 'SKIP' | 'TODO', reason: m[4] ?? '' } : {}),
      yaml: yaml.join('\n'),
      output: output.slice(-OUTPUT_LINES).join('\n'),
    });
    output = [];
  }
  return status === undefined ? { results, groups } : { results, groups, status };
}

export function lastLines(text: string, n: number): string {
  return text.replace(/\r/g, '').trimEnd().split('\n').slice(-n).join('\n');
}

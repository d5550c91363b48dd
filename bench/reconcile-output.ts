// What `vipmesh reconcile` printed, counted line by line as it streams (a large
// per-task node prints millions of lines, more than is worth holding): the
// namespaces it changed, the IPVS services and real servers it added, and its
// closing line (src/reconcile/summary.ts writes both).
export interface ReconcileTally {
  /** Namespaces with at least one change, in the order printed. */
  readonly written: string[];
  ipvsServices: number;
  realServers: number;
  lines: number;
  /** From the closing "<verb>: N namespaces, M changed, F failed" line. */
  summary?: { namespaces: number; changed: number; failed: number };
}

export function createTally(): ReconcileTally {
  return { written: [], ipvsServices: 0, realServers: 0, lines: 0 };
}

const HEADER = /^# netns (.+)$/;
const SUMMARY = /^\w+: (\d+) namespaces?, (\d+) (?:changed|would change), (\d+) failed$/;
const REAL_SERVER_ADDED = /^\+ ipvs fwmark \d+ real server /;
const SERVICE_ADDED = /^\+ ipvs (?!fwmark \d+ real server )/;

export function tallyLine(t: ReconcileTally, line: string): void {
  t.lines++;
  const header = HEADER.exec(line);
  if (header) {
    t.written.push(header[1]!);
    return;
  }
  if (REAL_SERVER_ADDED.test(line)) t.realServers++;
  else if (SERVICE_ADDED.test(line)) t.ipvsServices++;
  else {
    const summary = SUMMARY.exec(line);
    if (summary) t.summary = { namespaces: Number(summary[1]), changed: Number(summary[2]), failed: Number(summary[3]) };
  }
}

export function tallyText(text: string): ReconcileTally {
  const t = createTally();
  for (const line of text.split('\n')) if (line !== '') tallyLine(t, line);
  return t;
}

// What reconcile, diff and cleanup print: per namespace the changes (stdout), the
// failures (stderr), then one closing line.
import type { ReconcileResult } from './run.js';

export interface Printed {
  readonly stdout: string;
  readonly stderr: string;
  readonly drift: boolean;
  readonly failed: number;
}

export function summarize(verb: string, result: ReconcileResult, dryRun: boolean): Printed {
  let stdout = '';
  let stderr = '';
  let changed = 0;
  let failed = 0;
  let drift = false;
  const live = result.namespaces.filter((ns) => !ns.gone || ns.errors.length > 0);
  for (const ns of live) {
    if (ns.changes.length > 0) {
      changed++;
      stdout += `# netns ${ns.key}\n${ns.changes.map((c) => c.text + '\n').join('')}`;
    }
    if (ns.changes.some((c) => c.drift)) drift = true;
    if (ns.errors.length > 0) failed++;
    for (const e of ns.errors) stderr += `vipmesh: ${ns.key}: ${e.message}\n`;
    for (const w of ns.warnings) stderr += `vipmesh: ${ns.key}: warning: ${w}\n`;
  }
  const would = dryRun ? 'would change' : 'changed';
  stdout += `${verb}: ${live.length} namespace${live.length === 1 ? '' : 's'}, ${changed} ${would}, ${failed} failed\n`;
  if (result.skipped.length > 0) {
    stdout += `${verb}: ${result.skipped.length} more namespace${result.skipped.length === 1 ? '' : 's'} unchanged since the last pass, not read\n`;
  }
  if (result.notHandled.length > 0) {
    const n = result.notHandled.length;
    stdout += `${verb}: stopped early: ${n} more namespace${n === 1 ? '' : 's'} not handled this pass\n`;
  }
  if (!result.dnsManaged) {
    stdout += `${verb}: no agent holds resolver ports, so the DNS redirect (VIPMESH-DNS-*) was left as it is\n`;
  }
  return { stdout, stderr, drift, failed };
}

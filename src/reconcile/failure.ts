// Errors → the fixed failure kinds a pass reports (and the agent counts). The
// kernel adapters say what went wrong; the step that failed says which write a
// rejection was, since both iptables-restore and ipvsadm can refuse their input.
import { KernelError } from '../kernel/types.js';
import type { Failure, FailureKind } from './types.js';

export type Step = 'read' | 'iptables' | 'ipvs' | 'sysctl' | 'conntrack' | 'addresses';

export function failureKind(error: unknown, step: Step): FailureKind {
  if (!(error instanceof KernelError)) return 'other';
  switch (error.kind) {
    case 'no-namespace': return 'namespace_gone';
    case 'no-ipvs': return 'no_ipvs';
    case 'timeout': return 'timeout';
    case 'rejected': return step === 'iptables' ? 'iptables_rejected' : step === 'ipvs' ? 'ipvs_rejected' : 'other';
    case 'backend':
    case 'other':
      return 'other';
  }
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The failure of one step; `prefix` says which write it was, as the summary prints it. */
export function failure(error: unknown, step: Step, prefix = ''): Failure {
  return { kind: failureKind(error, step), message: `${prefix}${errorMessage(error)}` };
}

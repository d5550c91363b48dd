// How the command ends: exit codes (SPEC §4, README "Commands") and the one line
// an error prints. Nothing the user types reaches a stack trace; an unexpected
// error prints its message only, with the stack behind VIPMESH_DEBUG=1.
export const EXIT = { ok: 0, drift: 1, usage: 2, partial: 3 } as const;

/**
 * An unexpected error (a bug, or a machine vipmesh did not expect) exits 3, "not
 * everything was done": a reconcile it interrupts may have applied part of the plan,
 * and a script that treats 3 as "look at stderr" is right to.
 */
export const EXIT_INTERNAL = EXIT.partial;

/** Bad input: the message is printed after `vipmesh: ` and the command exits 2, nothing done. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** The reader of stdout went away (`vipmesh plan | head`): not an error of ours. */
export function isClosedPipe(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'EPIPE' || code === 'ERR_STREAM_DESTROYED';
}

export function debugEnabled(): boolean {
  return process.env['VIPMESH_DEBUG'] === '1';
}

/** `vipmesh: internal error: <message>`, and the stack only when asked for. */
export function internalErrorText(error: unknown, debug = debugEnabled()): string {
  const message = error instanceof Error ? error.message : String(error);
  const stack = debug && error instanceof Error && error.stack !== undefined ? `${error.stack}\n` : '';
  const hint = debug ? '' : ' (VIPMESH_DEBUG=1 prints where)';
  return `vipmesh: internal error: ${message}${hint}\n${stack}`;
}

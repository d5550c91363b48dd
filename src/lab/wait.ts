// How long `lab up` may wait for what it started, and whether it was told to stop.
export interface Wait {
  /** Epoch ms: past it, waiting is a failure. */
  readonly deadline: number;
  /** Aborted (SIGINT during up): the next pause throws. */
  readonly signal?: AbortSignal;
}

/** Waits `ms` between polls; throws once the wait is aborted. */
export async function pause(wait: Wait, ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
  wait.signal?.throwIfAborted();
}

// How fast the lab may expect things to go. Under the kernel lane's emulation
// (QEMU without KVM, on a machine that may run other guests too) everything is
// tens of times slower than on a host; the deadlines only catch what hangs.
export interface Pace {
  /** How long `up` may wait for its servers and agents, all told. */
  readonly readyTimeoutMs: number;
  /** The agents' --sync-period; undefined: their default. */
  readonly syncPeriod?: string;
  /** curl's -m in the demo: how long one request may take. */
  readonly requestTimeoutS: number;
}

export const HOST_PACE: Pace = { readyTimeoutMs: 300_000, requestTimeoutS: 10 };

/**
 * In the guest a full pass, every namespace read back with a few dozen emulated
 * program runs, takes about as long as the default 30 s period: the agents would
 * never rest, and the second one would start on CPUs the first keeps busy.
 */
export const EMULATED_PACE: Pace = { readyTimeoutMs: 40 * 60_000, syncPeriod: '5m', requestTimeoutS: 60 };

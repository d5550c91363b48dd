// The agent's log: JSON lines on stdout (SPEC §5), one per pass, per catalog
// change, per probe transition, never one per DNS query. systemd hands stdout to
// the journal, which adds the host and the unit, so a line carries only the pid
// (restarts stay apart) and a readable time and level.
import pino from 'pino';

export type Logger = pino.Logger;
export type LogLevel = pino.LevelWithSilent;

export interface LoggerOptions {
  readonly level?: LogLevel;
  /** Where lines go; standard output unless a test catches them. */
  readonly destination?: pino.DestinationStream;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    // Synchronous: the lines written just before exit (the last pass, "stopped")
    // must not be lost in a buffer. The agent logs a few lines a second at most.
    options.destination ?? pino.destination({ dest: 1, sync: true }),
  );
}

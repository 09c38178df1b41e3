/**
 * Structured logs: JSON lines in the home's `logs/lockstep.log`, and on the
 * terminal either pretty (a TTY) or the same JSON (a pipe, for collectors).
 * The log names every path of the folder and every user: its directory is
 * 0700 and the file 0600, whatever the umask.
 */
import { chmodSync, closeSync, fchmodSync, mkdirSync, openSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import type pretty from 'pino-pretty';

// Loaded only for a terminal (~15 ms of every device start otherwise).
const require = createRequire(import.meta.url);

export type { Logger };

/** Options of {@link createLogger}. */
export interface LogOptions {
  /** Directory for `lockstep.log`; none means the terminal only. */
  readonly dir?: string;
  /** Pretty output on stdout. @default process.stdout.isTTY */
  readonly pretty?: boolean;
  /** @default 'info', or $LOCKSTEP_LOG_LEVEL */
  readonly level?: string;
  /** Log to stdout at all. @default true */
  readonly stdout?: boolean;
}

/** The log file's name in its directory. */
export const LOG_FILE = 'lockstep.log';

/**
 * Makes the log directory `dir` (0700) and its log file (0600), or sets those
 * modes on existing ones.
 *
 * @returns the log file's path
 */
export function openPrivateLog(dir: string): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const file = join(dir, LOG_FILE);
  const fd = openSync(file, 'a', 0o600);
  try {
    fchmodSync(fd, 0o600);
  } finally {
    closeSync(fd);
  }
  return file;
}

/** Creates the device's logger. */
export function createLogger(opts: LogOptions = {}): Logger {
  const level = opts.level ?? process.env.LOCKSTEP_LOG_LEVEL ?? 'info';
  const streams: pino.StreamEntry[] = [];
  if (opts.stdout ?? true) {
    const usePretty = opts.pretty ?? process.stdout.isTTY === true;
    streams.push({
      level: level as pino.Level,
      stream: usePretty
        ? (require('pino-pretty') as typeof pretty)({
            colorize: true,
            translateTime: 'SYS:HH:MM:ss.l',
            ignore: 'pid,hostname',
          })
        : process.stdout,
    });
  }
  if (opts.dir !== undefined) {
    const file = openPrivateLog(opts.dir);
    streams.push({
      level: level as pino.Level,
      // `mode` too, for a file made again on reopen.
      stream: pino.destination({ dest: file, sync: false, mode: 0o600 }),
    });
  }
  return pino(
    { level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime },
    pino.multistream(streams),
  );
}

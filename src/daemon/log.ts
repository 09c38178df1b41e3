/**
 * Structured logs: JSON lines in the home's `logs/lockstep.log`, and on the
 * terminal either pretty (a TTY) or the same JSON (a pipe, for collectors).
 */
import { mkdirSync } from 'node:fs';
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
    mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
    streams.push({
      level: level as pino.Level,
      stream: pino.destination({ dest: join(opts.dir, 'lockstep.log'), sync: false }),
    });
  }
  return pino(
    { level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime },
    pino.multistream(streams),
  );
}

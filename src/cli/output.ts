/**
 * How commands end on an error: one line on stderr and the exit code scripts
 * rely on (DESIGN.md, "The command line, exactly").
 */
import { errorMessage, LockstepError, type ErrorCode } from '../base/errors.js';

/** Exit codes other than 1 (the request failed), by error code. */
const EXIT_CODES: Partial<Record<ErrorCode, number>> = {
  USAGE: 2,
};

/** The exit code for an error: 2 for usage errors, else 1. */
export function exitCodeOf(err: unknown): number {
  return err instanceof LockstepError ? (EXIT_CODES[err.code] ?? 1) : 1;
}

/**
 * Prints `lockstep: <message>` on stderr and exits: 2 for a
 * {@link LockstepError} with code `USAGE`, 1 for any other. An unexpected
 * error (a bug or an unforeseen fault) also exits 1; its stack is printed
 * when `$LOCKSTEP_DEBUG` is set.
 */
export function fail(err: unknown): never {
  let line = `lockstep: ${errorMessage(err)}`;
  if (!(err instanceof LockstepError)) {
    line = `lockstep: unexpected error: ${errorMessage(err)}`;
    if (process.env.LOCKSTEP_DEBUG && err instanceof Error && err.stack) line += `\n${err.stack}`;
  }
  process.stderr.write(`${line}\n`);
  process.exit(exitCodeOf(err));
}

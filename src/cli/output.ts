/**
 * How commands end on an error: one line on stderr and the exit code scripts
 * rely on (DESIGN.md, "The command line, exactly").
 */
import { errorMessage, LockstepError, type ErrorCode } from '../base/errors.js';

/** Exit codes other than 1 (the request failed), by error code. */
const EXIT_CODES: Partial<Record<ErrorCode, number>> = {
  USAGE: 2,
  UNREACHABLE: 3,
};

/** The exit code for an error: 2 for usage errors, 3 for a device that did not answer, else 1. */
export function exitCodeOf(err: unknown): number {
  return err instanceof LockstepError ? (EXIT_CODES[err.code] ?? 1) : 1;
}

/**
 * Prints `lockstep: <message>` on stderr and exits: 2 for a
 * {@link LockstepError} with code `USAGE`, 3 for `UNREACHABLE`, 1 for any other. An unexpected
 * error (a bug or an unforeseen fault) also exits 1; its stack is printed
 * when `$LOCKSTEP_DEBUG` is set. With `json`, stdout also gets the error as
 * the one JSON document a `--json` command prints: `{ error: { code, message } }`.
 */
export function fail(err: unknown, opts: { json?: boolean } = {}): never {
  if (opts.json === true) process.stdout.write(`${JSON.stringify(errorJson(err))}\n`);
  let line = `lockstep: ${errorMessage(err)}`;
  if (!(err instanceof LockstepError)) {
    line = `lockstep: unexpected error: ${errorMessage(err)}`;
    if (process.env.LOCKSTEP_DEBUG && err instanceof Error && err.stack) line += `\n${err.stack}`;
  }
  process.stderr.write(`${line}\n`);
  process.exit(exitCodeOf(err));
}

/** An error as JSON: `{ error: { code, message } }` (`INTERNAL` for a bug). */
export function errorJson(err: unknown): { error: { code: string; message: string } } {
  const remote = (err as { remoteCode?: unknown }).remoteCode;
  if (err instanceof LockstepError) {
    return {
      error: { code: typeof remote === 'string' ? remote : err.code, message: err.message },
    };
  }
  return { error: { code: 'INTERNAL', message: errorMessage(err) } };
}

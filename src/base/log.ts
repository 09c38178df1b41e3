/**
 * The logger every layer writes to: structured fields first, then a message
 * for people. Only the shape lives here; the device's composition root makes
 * the real one (pino, in `daemon/log.ts`), and tests may pass any object of
 * this shape.
 */

/** One level's method: `log.warn({ path }, 'cannot sync')` or `log.info('started')`. */
export interface LogFn {
  (fields: object, message?: string): void;
  (message: string): void;
}

/** A structured logger (pino's `Logger` is one). */
export interface Logger {
  readonly debug: LogFn;
  readonly info: LogFn;
  readonly warn: LogFn;
  readonly error: LogFn;
  /** A logger that adds `bindings` to every line. */
  child(bindings: Record<string, unknown>): Logger;
}

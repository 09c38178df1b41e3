/**
 * Time as a dependency: code that waits (lock expiry, retry backoff) takes a
 * {@link Clock}, so its tests move time by hand instead of sleeping.
 */

/** A timer set on a {@link Clock}, to cancel. */
export interface ClockTimer {
  cancel(): void;
}

/** The time now, and timers. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /**
   * Runs `fn` once after `ms`. A timer never keeps the process alive on its
   * own (Node's `unref`): what waits on it is also waiting on something else.
   */
  after(ms: number, fn: () => void): ClockTimer;
}

/** The longest delay a Node timer takes; longer ones fire at once. */
const MAX_DELAY_MS = 2 ** 31 - 1;

/** The real clock. */
export const systemClock: Clock = {
  now: () => Date.now(),
  after(ms, fn) {
    const t = setTimeout(fn, Math.max(0, Math.min(ms, MAX_DELAY_MS)));
    (t as { unref?: () => void }).unref?.();
    return { cancel: () => clearTimeout(t) };
  },
};

/**
 * Time as a dependency: what waits or expires (lock expiry, retry backoff)
 * takes a {@link Clock}, so a test moves time forward instead of sleeping.
 */

/** A timer a {@link Clock} started; `cancel` is safe to call twice. */
export interface Timer {
  cancel(): void;
}

/** The time now, and timers on it. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Runs `fn` once, `ms` from now; the timer never keeps the process alive. */
  after(ms: number, fn: () => void): Timer;
}

/** The longest delay a Node timer takes (about 24.8 days); longer ones are re-armed. */
const MAX_DELAY = 2 ** 31 - 1;

/** The real clock: `Date.now()` and unref'd timers. */
export const systemClock: Clock = {
  now: () => Date.now(),
  after(ms, fn) {
    let t: ReturnType<typeof setTimeout> | undefined;
    const due = Date.now() + Math.max(0, ms);
    const arm = () => {
      const left = due - Date.now();
      t = setTimeout(left > MAX_DELAY ? arm : fn, Math.min(Math.max(0, left), MAX_DELAY));
      (t as { unref?: () => void }).unref?.();
    };
    arm();
    return { cancel: () => clearTimeout(t) };
  },
};

/** A clock for tests: time stands still until {@link advance} moves it. */
export class ManualClock implements Clock {
  private timers: { due: number; seq: number; fn: () => void }[] = [];
  private seq = 0;

  constructor(private time = 0) {}

  now(): number {
    return this.time;
  }

  after(ms: number, fn: () => void): Timer {
    const t = { due: this.time + Math.max(0, ms), seq: this.seq++, fn };
    this.timers.push(t);
    return { cancel: () => (this.timers = this.timers.filter((x) => x !== t)) };
  }

  /** Timers waiting. */
  get pending(): number {
    return this.timers.length;
  }

  /** Moves time forward by `ms`, running every timer that comes due, in order of due time. */
  advance(ms: number): void {
    const end = this.time + ms;
    for (;;) {
      const next = this.timers
        .filter((t) => t.due <= end)
        .sort((a, b) => a.due - b.due || a.seq - b.seq)[0];
      if (next === undefined) break;
      this.timers = this.timers.filter((t) => t !== next);
      this.time = next.due;
      next.fn();
    }
    this.time = end;
  }
}

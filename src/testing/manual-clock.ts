/**
 * A clock for tests: time stands still until the test moves it, and timers
 * due by then run in order.
 */
import type { Clock, ClockTimer } from '../base/clock.js';

/** A {@link Clock} moved by hand with {@link ManualClock.advance}. */
export class ManualClock implements Clock {
  private timers: { at: number; seq: number; fn: () => void }[] = [];
  private seq = 0;

  constructor(private time = 1_000_000) {}

  now(): number {
    return this.time;
  }

  after(ms: number, fn: () => void): ClockTimer {
    const t = { at: this.time + Math.max(0, ms), seq: this.seq++, fn };
    this.timers.push(t);
    return { cancel: () => (this.timers = this.timers.filter((x) => x !== t)) };
  }

  /** Timers not yet run. */
  get pending(): number {
    return this.timers.length;
  }

  /** Moves time on by `ms`, running every timer that falls due on the way, in order. */
  advance(ms: number): void {
    const end = this.time + ms;
    for (;;) {
      const due = this.timers
        .filter((t) => t.at <= end)
        .sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (due === undefined) break;
      this.timers = this.timers.filter((t) => t !== due);
      this.time = Math.max(this.time, due.at);
      due.fn();
    }
    this.time = end;
  }
}

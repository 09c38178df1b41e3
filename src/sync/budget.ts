/**
 * A counting semaphore: bounds the bytes of chunks requested but not yet
 * written, or the files waiting for their fsync.
 */

/** A counting semaphore over bytes (or any unit): waiters are served in order. */
export class Budget {
  private waiting: { n: number; go: () => void }[] = [];
  constructor(private free: number) {}

  /** Waits until `n` units are free, then takes them. */
  async take(n: number): Promise<void> {
    if (this.waiting.length === 0 && this.free >= n) {
      this.free -= n;
      return;
    }
    await new Promise<void>((go) => this.waiting.push({ n, go }));
  }

  /** Gives `n` units back, waking the waiters they are enough for. */
  give(n: number): void {
    this.free += n;
    while (this.waiting.length > 0 && this.free >= (this.waiting[0] as { n: number }).n) {
      const w = this.waiting.shift() as { n: number; go: () => void };
      this.free -= w.n;
      w.go();
    }
  }
}

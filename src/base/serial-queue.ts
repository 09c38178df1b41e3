/**
 * A queue that runs async tasks one at a time, in order: the folder's single
 * line of work, so scans, watcher batches and (later) pulls never interleave.
 */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();
  private running = 0;

  /** Runs `task` after every task queued before it; resolves with its result. */
  run<T>(task: () => Promise<T>): Promise<T> {
    this.running++;
    const result = this.tail.then(task);
    this.tail = result.then(
      () => this.running--,
      () => this.running--,
    );
    return result;
  }

  /** Number of tasks queued or running. */
  get size(): number {
    return this.running;
  }

  /** Resolves once every task queued so far has finished. */
  async idle(): Promise<void> {
    await this.tail;
  }
}

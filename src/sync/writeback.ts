/**
 * Early write-back of a file being assembled: after every few MiB written,
 * an fdatasync starts on a pool thread (one at a time), so that the disk
 * writes while more data arrives and the fsync that ends the assembly has
 * little left to wait for. An error of such an early sync is kept and thrown
 * by {@link WriteBack.settle}: the kernel reports a write-back error to one
 * sync call only, so ignoring it would let the final fsync succeed.
 */
import * as fs from 'node:fs';

/** Bytes written between early syncs. */
export const WRITE_BACK_BYTES = 16 * 1024 * 1024;

export class WriteBack {
  private dirty = 0;
  private running: Promise<void> | undefined;
  private error: unknown;

  constructor(
    private readonly fd: number,
    private readonly every = WRITE_BACK_BYTES,
  ) {}

  /** Notes `n` bytes written; starts an early sync when enough are dirty and none runs. */
  wrote(n: number): void {
    this.dirty += n;
    if (this.dirty < this.every || this.running !== undefined) return;
    this.dirty = 0;
    this.running = new Promise<void>((resolve) =>
      fs.fdatasync(this.fd, (err) => {
        if (err) this.error ??= err;
        this.running = undefined;
        resolve();
      }),
    );
  }

  /** Waits for the early sync running (before the descriptor is closed). */
  async idle(): Promise<void> {
    await this.running;
  }

  /** Waits for the early sync running; throws the error an early sync had. */
  async settle(): Promise<void> {
    await this.running;
    if (this.error !== undefined) throw this.error;
  }
}

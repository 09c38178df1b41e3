/**
 * Open file descriptors kept for reading chunks: serving a file means
 * thousands of reads from it, and an open and a close per chunk cost more
 * than the read. Descriptors close after a short idle time, the least
 * recently used first when too many are open.
 */
import * as fs from 'node:fs';
import type { FolderFs } from '../confined/fs.js';

/** How often a cached descriptor is checked to still be the file at its path. */
const RECHECK_MS = 50;

/** A small cache of read-only file descriptors, by absolute path. */
export class FdCache {
  private readonly fds = new Map<
    string,
    { fd: number; used: number; ino: number; checked: number }
  >();
  private timer: NodeJS.Timeout | undefined;

  /**
   * @param folder - the folder, confined beneath its root: a file is
   *   opened (and looked at again) never through a symlink
   */
  constructor(
    private readonly folder: FolderFs,
    private readonly max = 64,
    private readonly idleMs = 2000,
  ) {}

  /**
   * Reads `length` bytes at `offset` of `file` synchronously (the page cache
   * usually answers at once; a thread hop would cost more than the read).
   * Returns undefined when the file is gone or shorter than that. With
   * `into`, the bytes are read into it at `at` (it must have room) and the
   * result is a view of it, so that a caller can reuse its buffers.
   */
  read(file: string, offset: number, length: number, into?: Buffer, at = 0): Buffer | undefined {
    let entry = this.fds.get(file);
    const now = Date.now();
    if (entry !== undefined && now - entry.checked > RECHECK_MS) {
      // A file replaced by a rename (an editor's atomic save, a pull) keeps
      // its old inode open here: look again at what the path names now.
      entry.checked = now;
      let ino: number | undefined;
      try {
        ino = Number(this.folder.lstat(file)?.ino);
      } catch {
        ino = undefined;
      }
      if (ino !== entry.ino) {
        this.forget(file);
        entry = undefined;
      }
    }
    if (entry === undefined) {
      let fd: number;
      try {
        // Non-blocking: a FIFO put where a file was must not stall the device.
        const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK } = fs.constants;
        fd = this.folder.open(file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
      } catch {
        return undefined;
      }
      const st = this.folder.fstat(fd);
      if (!st.isFile()) {
        fs.closeSync(fd);
        return undefined;
      }
      entry = { fd, used: 0, ino: Number(st.ino), checked: now };
      this.fds.set(file, entry);
      this.trim();
    } else {
      // Most recently used last: trim() closes from the front.
      this.fds.delete(file);
      this.fds.set(file, entry);
    }
    entry.used = Date.now();
    const buf = into === undefined ? Buffer.allocUnsafe(length) : into.subarray(at, at + length);
    if (buf.length !== length) throw new RangeError('FdCache.read: no room in the buffer');
    let done = 0;
    try {
      while (done < length) {
        const n = fs.readSync(entry.fd, buf, done, length - done, offset + done);
        if (n === 0) break;
        done += n;
      }
    } catch {
      this.forget(file);
      return undefined;
    }
    this.arm();
    return done === length ? buf : undefined;
  }

  /** Closes the descriptor of `file` (it changed or is gone). */
  forget(file: string): void {
    const e = this.fds.get(file);
    if (e === undefined) return;
    this.fds.delete(file);
    try {
      fs.closeSync(e.fd);
    } catch {
      // already closed
    }
  }

  /** Closes everything. */
  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const f of [...this.fds.keys()]) this.forget(f);
  }

  private trim(): void {
    while (this.fds.size > this.max) {
      const oldest = this.fds.keys().next().value as string;
      this.forget(oldest);
    }
  }

  private arm(): void {
    if (this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const cutoff = Date.now() - this.idleMs;
      for (const [f, e] of [...this.fds]) if (e.used < cutoff) this.forget(f);
      if (this.fds.size > 0) this.arm();
    }, this.idleMs);
    this.timer.unref();
  }
}

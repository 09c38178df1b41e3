/**
 * Group commit for the fsync of many small files.
 *
 * Every pulled file is fsynced through its own descriptor before it counts
 * (DESIGN.md); that never changes. But on a journaling file system each of
 * those fsyncs is a journal commit and a disk flush: 20,000 small files cost
 * seconds of commits, and every create meanwhile waits on the journal. When
 * many files are waiting at once, one `syncfs` (coreutils `sync -f`) writes
 * them all out in one go first; their fsyncs then find nothing left to write
 * and return at once. The syncfs is only a head start: a file counts when its
 * own fsync succeeded, and if `sync` is missing or fails, the fsyncs do all
 * the work as before.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import * as fs from 'node:fs';
import type { Readable, Writable } from 'node:stream';

/** Fewer files than this waiting are fsynced one by one (no process start). */
const GROUP_MIN = 16;
/** A syncfs slower than this (much dirty data of others on the disk) is not used for a while. */
const SLOW_MS = 5000;
const BACKOFF_MS = 60_000;

/** Writes out everything dirty on the file system that holds the folder. */
export type SyncFs = () => Promise<void>;

/**
 * A small shell kept running beside the device that runs `sync -f DIR`
 * (syncfs(2) of DIR's file system) whenever asked through its stdin: starting
 * a process from the device itself would copy its page tables each time,
 * milliseconds of the main thread per group.
 */
export function syncFsProcess(dir: string): SyncFs & { close(): void } {
  let child: ChildProcessByStdio<Writable, Readable, null> | undefined;
  let waiters: ((ok: boolean) => void)[] = [];
  let broken = false;
  const start = () => {
    const c = spawn(
      'sh',
      [
        '-c',
        'while read -r _; do if sync -f -- "$1"; then echo ok; else echo fail; fi; done',
        'sh',
        dir,
      ],
      { stdio: ['pipe', 'pipe', 'ignore'] },
    );
    c.unref();
    (c.stdin as unknown as { unref?: () => void }).unref?.();
    (c.stdout as unknown as { unref?: () => void }).unref?.();
    let buf = '';
    c.stdout.setEncoding('utf8');
    c.stdout.on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        waiters.shift()?.(line === 'ok');
      }
    });
    const gone = () => {
      if (child === c) child = undefined;
      const w = waiters;
      waiters = [];
      for (const f of w) f(false);
    };
    c.on('error', () => {
      broken = true;
      gone();
    });
    c.on('exit', gone);
    c.stdin.on('error', gone);
    return c;
  };
  const fn = (): Promise<void> => {
    if (broken) return Promise.reject(new Error('sync -f is not available'));
    child ??= start();
    const c = child;
    return new Promise((resolve, reject) => {
      waiters.push((ok) => (ok ? resolve() : reject(new Error('sync -f failed'))));
      c.stdin.write('x\n');
    });
  };
  return Object.assign(fn, {
    close: () => {
      broken = true;
      child?.stdin.end();
      child = undefined;
    },
  });
}

export class GroupSync {
  private waiting: { fd: number; done: (err: Error | null) => void }[] = [];
  private running = false;
  /** No syncfs before this time (unavailable, failing or slow). */
  private offUntil = 0;
  /** Groups written out with one syncfs, and files in them (for tests and benchmarks). */
  readonly stats = { groups: 0, files: 0 };

  private readonly syncfs: SyncFs & { close?(): void };

  constructor(dir: string, syncfs?: SyncFs) {
    this.syncfs = syncfs ?? syncFsProcess(dir);
  }

  /** Stops the helper process, if one runs. */
  close(): void {
    this.syncfs.close?.();
  }

  /** Resolves when `fd`'s file is on disk (its fsync succeeded); rejects with the fsync's error. */
  fsync(fd: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ fd, done: (err) => (err ? reject(err) : resolve()) });
      if (!this.running) {
        // Files that come in the same turn of the event loop form the first group.
        this.running = true;
        setImmediate(() => void this.drain());
      }
    });
  }

  /** Files that came while a group was written out form the next group. */
  private async drain(): Promise<void> {
    try {
      while (this.waiting.length > 0) {
        const group = this.waiting;
        this.waiting = [];
        if (group.length >= GROUP_MIN && Date.now() >= this.offUntil) {
          const t0 = performance.now();
          try {
            await this.syncfs();
            this.stats.groups++;
            this.stats.files += group.length;
            if (performance.now() - t0 > SLOW_MS) this.offUntil = Date.now() + BACKOFF_MS;
          } catch {
            // The fsyncs below do the work (and report any error per file).
            this.offUntil = Date.now() + BACKOFF_MS;
          }
        }
        await Promise.all(
          group.map(
            (w) =>
              new Promise<void>((resolve) =>
                fs.fsync(w.fd, (err) => {
                  w.done(err);
                  resolve();
                }),
              ),
          ),
        );
      }
    } finally {
      this.running = false;
    }
  }
}

/**
 * Locks follow what their holder does to the file, on the holder's device:
 * a locked file the holder renames takes its lock to the new name (the same
 * lock and fencing token), and one the holder deletes ends its lock, which
 * is announced as `dropped`. No lock outlives its file unseen.
 *
 * A rename reaches the index as a delete and a new path with the same
 * content, in one batch or in two (either first): new files are remembered
 * for {@link RENAME_WINDOW_MS}, and a delete whose new name has not
 * appeared waits as long for it before the lock ends.
 */
import { errorMessage } from '../base/errors.js';
import type { Logger } from '../base/log.js';
import type { LockRow } from '../core/lock-rules.js';
import { sameContent, type FileRecord } from '../core/record.js';
import type { LockService } from '../locks/lock-service.js';
import type { LockChange } from '../locks/lock-wire.js';

/** How long a deleted locked file waits for its new name before its lock ends. */
export const RENAME_WINDOW_MS = 500;
/** How often an end or a move that failed (authority away) is tried again. */
const RETRY_MS = 5000;

/** Options of a {@link LockFollower}. */
export interface LockFollowerOptions {
  /** This device's full ID. */
  readonly self: string;
  readonly locks: Pick<
    LockService,
    'all' | 'get' | 'covering' | 'dropDeleted' | 'moveLock' | 'on' | 'off'
  >;
  /** This device's record of `path` now. */
  record(path: string): FileRecord | undefined;
  readonly log: Logger;
}

/** A lock held here whose file was deleted, waiting for a new name. */
interface Pending {
  readonly lock: LockRow;
  readonly timer: NodeJS.Timeout;
}

/** Moves and ends the locks held at this device as their files are renamed and deleted. */
export class LockFollower {
  /** The last content of each file locked here, by lock ID (a deleted record has none). */
  private readonly content = new Map<string, FileRecord>();
  private readonly pending = new Map<string, Pending>();
  /** New files of the last {@link RENAME_WINDOW_MS}, oldest first: maybe a rename's new name. */
  private recent: { readonly r: FileRecord; readonly at: number }[] = [];
  private readonly retries = new Set<NodeJS.Timeout>();
  private closed = false;
  private readonly changed = (c: LockChange) => this.lockChanged(c);

  constructor(private readonly o: LockFollowerOptions) {
    o.locks.on('change', this.changed);
    for (const lock of o.locks.all()) {
      if (lock.device === o.self) this.lockChanged({ type: 'locked', lock });
    }
  }

  /** A batch of this device's own changes was recorded. */
  indexed(records: readonly FileRecord[]): void {
    if (this.closed) return;
    const fresh: FileRecord[] = [];
    for (const r of records) {
      if (r.deleted) continue;
      const lock = this.heldHere(r.path);
      if (lock !== undefined) this.content.set(lock.id, r);
      else if (r.type === 'file') fresh.push(r);
    }
    // New names first: a rename in this batch finds the delete waiting, or below.
    for (const r of fresh) this.newName(r);
    const now = Date.now();
    this.recent = this.recent.filter((x) => now - x.at < RENAME_WINDOW_MS);
    for (const r of fresh) this.recent.push({ r, at: now });
    for (const r of records) {
      if (!r.deleted) continue;
      const lock = this.heldHere(r.path);
      if (lock === undefined || this.pending.has(lock.id)) continue;
      const to = this.recent.find((x) => this.sameAsLocked(lock, x.r) && this.isLive(x.r));
      if (to !== undefined) this.move(lock, to.r.path);
      else this.wait(lock);
    }
  }

  /** Stops following (pending ends are left: the next start finds the file gone again). */
  close(): void {
    this.closed = true;
    this.o.locks.off('change', this.changed);
    for (const p of this.pending.values()) clearTimeout(p.timer);
    this.pending.clear();
    for (const t of this.retries) clearTimeout(t);
    this.retries.clear();
  }

  /** The lock held at this device on exactly `path`, if any. */
  private heldHere(path: string): LockRow | undefined {
    const lock = this.o.locks.get(path);
    return lock !== undefined && lock.device === this.o.self ? lock : undefined;
  }

  /** Whether `n` has the content last seen at `lock`'s file (and may take its lock). */
  private sameAsLocked(lock: LockRow, n: FileRecord): boolean {
    const old = this.content.get(lock.id);
    return (
      old !== undefined &&
      old.type === 'file' &&
      n.path !== lock.path &&
      this.o.locks.covering(n.path) === undefined &&
      sameContent(old, n)
    );
  }

  /** Whether this device's record of `r`'s path is still `r` (not changed or deleted since). */
  private isLive(r: FileRecord): boolean {
    const now = this.o.record(r.path);
    return now !== undefined && !now.deleted && now.sequence === r.sequence;
  }

  /** A new file: the new name of a locked file deleted a moment ago? */
  private newName(n: FileRecord): void {
    for (const [id, p] of this.pending) {
      if (!this.sameAsLocked(p.lock, n)) continue;
      clearTimeout(p.timer);
      this.pending.delete(id);
      this.move(p.lock, n.path);
      return;
    }
  }

  private wait(lock: LockRow): void {
    const timer = setTimeout(() => {
      this.pending.delete(lock.id);
      this.drop(lock);
    }, RENAME_WINDOW_MS);
    timer.unref();
    this.pending.set(lock.id, { lock, timer });
  }

  /** Ends `lock` if its file is still deleted and it is still held here. */
  private drop(lock: LockRow): void {
    if (this.closed || this.o.locks.get(lock.path)?.id !== lock.id) return;
    if (this.o.record(lock.path)?.deleted !== true) return; // back meanwhile
    this.o.locks.dropDeleted(lock).then(
      () => this.content.delete(lock.id),
      (err: unknown) => this.retry(`ending the lock on ${lock.path}`, err, () => this.drop(lock)),
    );
  }

  private move(lock: LockRow, to: string): void {
    if (this.closed || this.o.locks.get(lock.path)?.id !== lock.id) return;
    this.o.locks.moveLock(lock, to).then(
      () => this.content.delete(lock.id),
      (err: unknown) =>
        this.retry(`moving the lock on ${lock.path} to ${to}`, err, () => this.move(lock, to)),
    );
  }

  private retry(what: string, err: unknown, again: () => void): void {
    if (this.closed) return;
    this.o.log.warn(
      { err: errorMessage(err) },
      `${what} failed: ${errorMessage(err)}; trying again`,
    );
    const t = setTimeout(() => {
      this.retries.delete(t);
      again();
    }, RETRY_MS);
    t.unref();
    this.retries.add(t);
  }

  /** A lock begun here: its file's content now, to know it again under a new name. */
  private lockChanged(c: LockChange): void {
    if (c.type === 'locked' && c.lock.device === this.o.self) {
      const r = this.o.record(c.lock.path);
      if (r !== undefined && !r.deleted) this.content.set(c.lock.id, r);
    } else if (c.type !== 'moved' && c.type !== 'refreshed') {
      this.content.delete(c.lock.id);
    }
  }
}

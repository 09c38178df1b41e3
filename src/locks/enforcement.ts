/**
 * Enforcement of locks on this device's disk: a file locked by a user on
 * another device (itself, or a directory above it: see lock-scope.ts) is
 * read-only here, and writable again after the unlock; a
 * change made here anyway (root ignores read-only) is not synced but kept as
 * a conflict copy while the holder's version comes back. What to do with a
 * change is {@link lockVerdict}'s decision; this module carries it out
 * through {@link LockedFiles}, the only file operations it needs.
 */
import { errorMessage } from '../base/errors.js';
import type { Logger } from '../base/log.js';
import { lockVerdict, type LockPlace, type LockRow } from '../core/lock-rules.js';
import { covers, scopeOf } from '../core/lock-scope.js';

/**
 * The file operations enforcement needs, on folder-relative paths. Each
 * keeps the folder's safety rules: nothing follows a symlink, and nothing
 * acts outside the folder.
 */
export interface LockedFiles {
  /**
   * Makes the regular file at `path` read-only (`on`) or gives its owner the
   * write bit back.
   *
   * @returns false when no regular file is there (nothing to do)
   */
  setReadOnly(path: string, on: boolean): boolean;
  /**
   * Moves the file at `path` aside under a new conflict-copy name, writable
   * (the lock was on the path, not on the copy).
   *
   * @returns the copy's folder-relative path, or undefined when nothing is at `path`
   */
  setAside(path: string): string | undefined;
}

/** Options of a {@link LockEnforcement}. */
export interface LockEnforcementOptions {
  /** This device's full ID. */
  readonly self: string;
  /** The replica: the lock that covers a path (its own or a directory's above it), as this device knows it. */
  lockOf(path: string): LockRow | undefined;
  /** Every path below directory `dir` that this device knows of (any device's, not only its own). */
  pathsBelow(dir: string): Iterable<string>;
  readonly files: LockedFiles;
  readonly log: Logger;
  /** Runs `fn` on the device's serial queue (after the scan that found the change). */
  serially(fn: () => Promise<void>): void;
  /** Drops this device's record of `path`, so the holder's version is fetched again. */
  forgetLocal(path: string): void;
  /** Records `paths` (the conflict copies) now. */
  scanNow(paths: readonly string[]): Promise<unknown>;
  /** Plans `paths` again (the holder's version is fetched). */
  pullAgain(paths: readonly string[]): void;
  /** Tells clients that a change to a locked file was undone here; `copy` keeps it. */
  lockedChange(path: string, copy: string | undefined): void;
  deviceName(id: string): string;
}

/** Locks, enforced on this device's disk. */
export class LockEnforcement {
  /**
   * Paths made read-only for a lock held elsewhere: kept after the unlock
   * until a change applied after it has been made writable as well.
   */
  private readonly readOnlyForLock = new Set<string>();

  constructor(private readonly o: LockEnforcementOptions) {}

  /** Where the lock on `path` is held, seen from this device. */
  place(path: string): LockPlace {
    const lock = this.o.lockOf(path);
    if (lock === undefined) return 'none';
    return lock.device === this.o.self ? 'here' : 'elsewhere';
  }

  /**
   * Whether a local change of `path` must not become a version (the index's
   * guard): then it is handed to {@link restore} after the commit.
   */
  vetoes(path: string): boolean {
    return lockVerdict({ origin: 'local', lock: this.place(path) }) === 'restore';
  }

  /**
   * The fencing token a local change of `path` is written under: the token
   * of the lock that covers it when that lock is held at this device (as
   * this device knows it, which may be behind the authority: a version
   * written under a grant that has ended loses to one under the later
   * grant), else 0.
   */
  fencingToken(path: string): number {
    const lock = this.o.lockOf(path);
    return lock !== undefined && lock.device === this.o.self ? lock.token : 0;
  }

  /**
   * The paths `lock` covers that this device knows of: its own path, and for
   * a directory lock every path below it (conflict copies aside).
   */
  coveredBy(lock: LockRow): string[] {
    if (scopeOf(lock) !== 'directory') return [lock.path];
    const paths = [lock.path];
    for (const p of this.o.pathsBelow(lock.path)) if (covers(lock, p)) paths.push(p);
    return paths;
  }

  /**
   * Sets the permissions of the files under a lock (now begun, ended or changed).
   *
   * @returns the paths it covers ({@link coveredBy})
   */
  lockChanged(lock: LockRow): string[] {
    const paths = this.coveredBy(lock);
    for (const p of paths) this.enforce(p, false);
    return paths;
  }

  /** A pulled change of `path` is on disk: it gets the lock's permissions too. */
  applied(path: string): void {
    // Also after an unlock: a pull planned while the file was read-only for
    // the lock can finish after the unlock made it writable, and would leave
    // it read-only.
    if (this.o.lockOf(path) !== undefined || this.readOnlyForLock.has(path)) {
      this.enforce(path, true);
    }
  }

  /** Sets the permissions of every file under a lock (at start). */
  enforceAll(locks: readonly LockRow[]): void {
    for (const l of locks) this.lockChanged(l);
  }

  /**
   * Locked files changed here although a user on another device holds the
   * lock: each change is kept as a conflict copy and the holder's version
   * comes back (forgetting the local record makes the puller fetch it).
   */
  restore(paths: readonly string[]): void {
    this.o.serially(async () => {
      const copies: string[] = [];
      for (const path of paths) {
        try {
          const copy = this.o.files.setAside(path);
          if (copy !== undefined) copies.push(copy);
          this.o.lockedChange(path, copy);
          this.o.forgetLocal(path);
          const lock = this.o.lockOf(path);
          this.o.log.warn(
            { path, copy, holder: lock?.owner },
            `${path} is locked by ${lock ? `${lock.owner}@${this.o.deviceName(lock.device)}` : 'another user'}: the change made here is kept${copy !== undefined ? ` as ${copy}` : ''} and the holder's version is restored`,
          );
        } catch (err) {
          this.o.log.error({ path, err: errorMessage(err) }, `cannot restore locked file ${path}`);
        }
      }
      if (copies.length > 0) await this.o.scanNow(copies);
      this.o.pullAgain(paths);
    });
  }

  /** Makes a file read-only while a user on another device holds its lock; writable after. */
  private enforce(path: string, applied: boolean): void {
    const place = this.place(path);
    // Below a directory locked here, modes are the holder's own: the lock
    // does not give the write bit to every file below it.
    if (place === 'here' && this.o.lockOf(path)?.path !== path && !this.readOnlyForLock.has(path)) {
      return;
    }
    const elsewhere = place === 'elsewhere';
    try {
      if (!this.o.files.setReadOnly(path, elsewhere)) return;
      // Forgotten only once a change applied after the unlock was made writable too.
      if (elsewhere) this.readOnlyForLock.add(path);
      else if (applied) this.readOnlyForLock.delete(path);
    } catch (err) {
      this.o.log.warn(
        { path, err: errorMessage(err) },
        `cannot set the lock's permissions on ${path}`,
      );
    }
  }
}

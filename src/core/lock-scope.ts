/**
 * Which paths a lock covers, and which held lock a new one would overlap:
 * the one place these rules are written. The authorities (embedded, etcd),
 * the replica, enforcement, the API's 423 and the listing all ask here.
 *
 * A file lock covers its path. A directory lock covers the directory and
 * every path below it, now and later, except conflict copies: a change kept
 * aside below a locked directory (named by `conflictCopyName`, or anything
 * inside such a name) is not under the lock, so it syncs like any file and
 * is never kept aside again.
 */
import { isConflictCopyName } from './conflict-name.js';
import { describeHolder, type LockRow, type LockScope } from './lock-rules.js';

/** The part of a lock these rules look at. */
export type LockExtent = Pick<LockRow, 'path' | 'scope'>;

/** A lock's scope; a row without one (from before directory locks) is a file lock. */
export function scopeOf(lock: LockExtent): LockScope {
  return lock.scope ?? 'file';
}

/** Whether `lock` covers `path`. */
export function covers(lock: LockExtent, path: string): boolean {
  if (path === lock.path) return true;
  if (scopeOf(lock) !== 'directory' || !path.startsWith(`${lock.path}/`)) return false;
  return !path
    .slice(lock.path.length + 1)
    .split('/')
    .some((name) => isConflictCopyName(name));
}

/**
 * The lock that covers `path`: the lock on the path itself, else the
 * nearest directory lock above it that covers it.
 *
 * @param lockAt - the lock on exactly this path, if any
 */
export function coveringLock(
  path: string,
  lockAt: (path: string) => LockRow | undefined,
): LockRow | undefined {
  const own = lockAt(path);
  if (own !== undefined) return own;
  for (let i = path.lastIndexOf('/'); i > 0; i = path.lastIndexOf('/', i - 1)) {
    const above = lockAt(path.slice(0, i));
    if (above !== undefined && covers(above, path)) return above;
  }
  return undefined;
}

/**
 * A held lock that a new lock `want` would overlap, if any: one on the same
 * path, a directory lock above it, or (for a directory) any lock below it.
 */
export function conflictingLock(want: LockExtent, held: Iterable<LockRow>): LockRow | undefined {
  for (const h of held) if (covers(h, want.path) || covers(want, h.path)) return h;
  return undefined;
}

/** A directory lock's path as people see it: `proj/`; a file's as it is. */
export function lockedPathText(lock: LockExtent): string {
  return scopeOf(lock) === 'directory' ? `${lock.path}/` : lock.path;
}

/**
 * Why `want` cannot be granted while `held` is: names the holder and the
 * path that holds the lock. Starts with `<path> is already locked by` when
 * both are on the same path.
 */
export function conflictMessage(
  want: LockExtent,
  held: LockRow,
  deviceName: (id: string) => string,
): string {
  const holder = describeHolder(held, deviceName);
  if (held.path === want.path) return `${want.path} is already locked by ${holder}`;
  if (covers(held, want.path)) {
    return `${want.path} is inside ${lockedPathText(held)}, locked by ${holder}`;
  }
  return `${lockedPathText(want)} holds ${held.path}, locked by ${holder}; a directory can be locked once nothing below it is`;
}

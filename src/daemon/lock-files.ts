/**
 * Enforcement's file operations on the real folder ({@link LockedFiles}):
 * a locked file's write bits, and a change to a locked file moved aside as
 * a conflict copy. Nothing follows a symlink: parents are checked to be real
 * directories inside the folder, files are opened with O_NOFOLLOW and their
 * mode is changed through that descriptor, and where a file is found or
 * lands is checked against the descriptor's identity.
 */
import * as fs from 'node:fs';
import { constants } from 'node:fs';
import { errorCode } from '../base/errors.js';
import { conflictName } from '../core/plan.js';
import type { LockedFiles } from '../locks/enforcement.js';
import { ensureParents, inFolder, landedInside } from '../sync/temp-files.js';

/** Flags that open whatever is at a path without following a symlink or blocking on a FIFO. */
const NO_FOLLOW = constants.O_NOFOLLOW | constants.O_NONBLOCK;

/**
 * The lock file operations on the folder at `root`.
 *
 * @param localShort - this device's short ID, for conflict-copy names
 * @param now - the time in ms, for conflict-copy names
 */
export function folderLockFiles(
  root: string,
  localShort: string,
  now: () => number = Date.now,
): LockedFiles {
  const setReadOnly = (path: string, on: boolean): boolean => {
    if (!ensureParents(root, path, false)) return false;
    const abs = inFolder(root, path);
    const fd = openNoFollow(abs);
    if (fd === undefined) return false;
    try {
      const st = fs.fstatSync(fd, { bigint: true });
      if (!st.isFile()) return false;
      // The file opened is the one at `path` in the folder, not one a
      // parent swapped for a symlink led to.
      landedInside(root, path, abs, st, false);
      const mode = Number(st.mode) & 0o7777;
      const want = on ? mode & ~0o222 : mode | 0o200;
      if (want !== mode) fs.fchmodSync(fd, want);
      return true;
    } finally {
      fs.closeSync(fd);
    }
  };
  return {
    setReadOnly,
    setAside(path) {
      if (!ensureParents(root, path, false)) return undefined;
      const abs = inFolder(root, path);
      const st = fs.lstatSync(abs, { bigint: true, throwIfNoEntry: false });
      if (st === undefined) return undefined;
      const base = conflictName(path, BigInt(now()) * 1_000_000n, localShort);
      let copy = base;
      for (let n = 1; fs.lstatSync(inFolder(root, copy), { throwIfNoEntry: false }); n++) {
        copy = `${base}.${n}`;
      }
      ensureParents(root, path, false);
      fs.renameSync(abs, inFolder(root, copy));
      landedInside(root, copy, inFolder(root, copy), st, false);
      // The file was read-only because of the lock; the copy is not locked.
      if (st.isFile()) setReadOnly(copy, false);
      return copy;
    },
  };
}

/** Opens `abs` without following a symlink; undefined if nothing (or a symlink) is there. */
function openNoFollow(abs: string): number | undefined {
  try {
    return fs.openSync(abs, constants.O_RDONLY | NO_FOLLOW);
  } catch (err) {
    const code = errorCode(err);
    if (code === 'ENOENT' || code === 'ELOOP') return undefined;
    // A file its owner cannot read (mode 0200): its mode can still be set
    // through a descriptor opened for writing, which changes no content.
    if (code === 'EACCES') return fs.openSync(abs, constants.O_WRONLY | NO_FOLLOW);
    throw err;
  }
}

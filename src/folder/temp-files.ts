/**
 * Temp files beside their targets, and the checks that keep every write
 * inside the folder. The filesystem seam resolves every path beneath the
 * root without following a link (confined/root.ts), so a parent swapped
 * for a symlink fails the call. What it cannot rule out is a directory
 * moved away (out of the folder) between its resolution and the act: so
 * the parents are checked before a create or rename ({@link ensureParents})
 * and the result after ({@link landedInside}), in the same synchronous run.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { constants } from 'node:fs';
import { LockstepError, errorCode, errorMessage } from '../base/errors.js';
import { TEMP_PREFIX } from '../core/path.js';
import type { FolderFs } from '../confined/fs.js';

/** A file's identity: what a temp file was when made, checked where it lands. */
export type FileId = Pick<fs.BigIntStats, 'ino' | 'dev'>;

/** The temp file that assembles `abs`: in its directory, a name Lockstep always ignores. */
export function tempPath(abs: string): string {
  const slash = abs.lastIndexOf('/');
  const name = abs.slice(slash + 1);
  const tmpName =
    Buffer.byteLength(name) + TEMP_PREFIX.length <= 250
      ? `${TEMP_PREFIX}${name}`
      : `${TEMP_PREFIX}${createHash('sha256').update(name).digest('hex').slice(0, 40)}`;
  return abs.slice(0, slash + 1) + tmpName;
}

/**
 * The absolute path of `rel` in the folder at `root`. `rel` is a valid
 * folder path (checked where it entered: no empty, `.` or `..` segment, no
 * leading or trailing slash), so plain concatenation is `join` without its
 * normalizing, which a pull would otherwise pay several times per file.
 */
export function inFolder(root: string, rel: string): string {
  return root.endsWith('/') ? root + rel : `${root}/${rel}`;
}

/**
 * Makes sure every directory above `rel` is a real directory inside the
 * folder, creating missing ones: a parent that is a symlink or a file would
 * lead a write or delete elsewhere, possibly outside the folder.
 *
 * @param create - make missing parents; without it, report them missing
 * @param fsys - the filesystem (the real one unless a test injects faults)
 * @returns whether every parent exists (always true with `create`)
 * @throws LockstepError `PATH_INVALID` naming the parent that is in the way
 */
export function ensureParents(root: string, rel: string, create: boolean, fsys: FolderFs): boolean {
  const slash = rel.lastIndexOf('/');
  if (slash < 0) return true;
  const parent = rel.slice(0, slash);
  // One call for the whole chain: the confined filesystem walks it (a
  // directory at a time, never through a link) and names what is in the way.
  try {
    if (create) {
      fsys.mkdir(inFolder(root, parent), true);
      return true;
    }
    const st = fsys.lstat(inFolder(root, parent));
    if (st === undefined) return false;
    if (st.isDirectory()) return true;
    throw new LockstepError(
      'PATH_INVALID',
      `${parent} is ${st.isSymbolicLink() ? 'a symlink' : 'not a directory'} here`,
    );
  } catch (err) {
    if (errorCode(err) !== 'PATH_INVALID') throw err;
    throw new LockstepError('PATH_INVALID', `Cannot write ${rel}: ${errorMessage(err)}`, {
      cause: err,
    });
  }
}

/**
 * Checks that `abs` (the file with identity `st`, just created, opened or
 * renamed there, folder path `rel`) is where it should be: the directory
 * the call used must still be the one reached from the root (one moved out
 * of the folder meanwhile would have taken the file along). If it is not,
 * the file is removed through that same directory when it is ours (`ours`:
 * this device made it; same inode) and this throws.
 *
 * @returns the lstat of `abs`
 * @throws LockstepError `PATH_INVALID`
 */
export function landedInside(
  rel: string,
  abs: string,
  st: FileId,
  ours: boolean,
  fsys: FolderFs,
): fs.BigIntStats {
  const here = fsys.parentStillThere(abs) ? fsys.lstat(abs) : undefined;
  if (here !== undefined && here.ino === st.ino && here.dev === st.dev) return here;
  if (!ours) {
    throw new LockstepError(
      'PATH_INVALID',
      `Cannot write ${rel}: a directory above it was replaced (by a symlink?); nothing was written outside the folder`,
    );
  }
  try {
    // Through the directory this run resolved (where it went), if still held.
    const there = fsys.lstat(abs);
    if (there !== undefined && there.ino === st.ino && there.dev === st.dev) fsys.unlink(abs);
  } catch {
    // Gone already, or the path no longer resolves.
  }
  throw new LockstepError(
    'PATH_INVALID',
    `Cannot write ${rel}: a directory above it was replaced (by a symlink?) while it was written; nothing was left outside the folder`,
  );
}

/** Writes all of `data` at `position`. */
export function writeAll(fd: number, data: Buffer, position: number): void {
  let done = 0;
  while (done < data.length) {
    done += fs.writeSync(fd, data, done, data.length - done, position + done);
  }
}

/**
 * Opens the temp file `tmp` for reading and writing: created afresh
 * (`created`), or the one an interrupted pull left, whose verified chunks
 * are reused. Never follows a symlink at `tmp`.
 */
export function openTemp(fsys: FolderFs, tmp: string): { fd: number; created: boolean } {
  const { O_RDWR, O_CREAT, O_EXCL, O_NOFOLLOW } = constants;
  try {
    return { fd: fsys.open(tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600), created: true };
  } catch (err) {
    if (errorCode(err) !== 'EEXIST') throw err;
  }
  return { fd: fsys.open(tmp, O_RDWR | O_NOFOLLOW), created: false };
}

/**
 * Replacing a file that someone may be saving at that moment. The writer
 * re-checks the file against the index and then renames the pulled file
 * over it; the two cannot be one step, so a save in place (an editor
 * writing the file it opened, an append) that lands between them would be
 * overwritten unseen. So the old file keeps a second name (a hard link,
 * a temp name the scanner ignores) across the rename and is looked at once
 * more afterwards: unchanged, the name is dropped; changed, the file is put
 * back at its path and the change waits for the rescan (which records the
 * save; the replan then makes the conflict, so nothing is lost).
 *
 * A save through a descriptor that is still writing after that second look
 * goes to a file no longer in the folder: a rename cannot be undone for a
 * writer that holds the old file open (as with any tool that replaces files
 * atomically).
 */
import { randomBytes } from 'node:crypto';
import { errorCode } from '../base/errors.js';
import { TEMP_PREFIX } from '../core/path.js';
import type { FileRecord } from '../core/record.js';
import type { FolderFs } from '../confined/fs.js';
import { sameFile, unlinkIfThere } from './entries.js';

/** The old file's second name; `changed` if it no longer is the recorded file; `unheld` where hard links are not supported. */
export type Held = HeldFile | 'changed' | 'unheld';

/** A file kept under a second name `at`, as recorded by `local`. */
export interface HeldFile {
  readonly at: string;
  readonly local: FileRecord;
}

/**
 * Gives the file at `abs`, recorded as `local`, a second name beside it,
 * and checks that the name holds the recorded file (the same inode, size
 * and modification time).
 */
export function holdFile(fsys: FolderFs, abs: string, local: FileRecord): Held {
  const at = `${abs.slice(0, abs.lastIndexOf('/'))}/${TEMP_PREFIX}${randomBytes(8).toString('hex')}.held`;
  try {
    fsys.link(abs, at);
  } catch (err) {
    // Gone meanwhile: a change to rescan. A filesystem without hard links: replaced as before.
    return errorCode(err) === 'ENOENT' ? 'changed' : 'unheld';
  }
  const st = fsys.lstat(at);
  if (st !== undefined && sameFile(st, local)) return { at, local };
  unlinkIfThere(fsys, at);
  return 'changed';
}

/**
 * After the pulled file took the path: drops the old file's second name
 * and returns true if it is still the recorded file; otherwise puts it
 * back at `abs` (over the pulled file, which the peers still have) and
 * returns false.
 */
export function releaseFile(fsys: FolderFs, abs: string, held: HeldFile): boolean {
  const st = fsys.lstat(held.at);
  if (st === undefined) return true;
  if (sameFile(st, held.local)) {
    fsys.unlink(held.at);
    return true;
  }
  fsys.rename(held.at, abs);
  return false;
}

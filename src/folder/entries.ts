/**
 * Small checks of entries in the folder for the writer, all through the
 * (confined) filesystem seam.
 */
import type { BigIntStats } from 'node:fs';
import { errorCode } from '../base/errors.js';
import type { EntryType, FileRecord } from '../core/record.js';
import type { FolderFs } from '../confined/fs.js';

/** Whether the disk still holds what the local record says (nothing, for no record or a tombstone). */
export function diskMatches(fsys: FolderFs, abs: string, local: FileRecord | undefined): boolean {
  const st = fsys.lstat(abs);
  if (local === undefined || local.deleted) return st === undefined;
  if (st === undefined) return false;
  switch (local.type) {
    case 'file':
      return sameFile(st, local);
    case 'directory':
      return st.isDirectory();
    case 'symlink':
      return st.isSymbolicLink() && fsys.readlink(abs) === local.target;
  }
}

/** Whether `st` is the regular file `local` records: the same inode, size and modification time. */
export function sameFile(st: BigIntStats, local: FileRecord): boolean {
  return (
    st.isFile() &&
    Number(st.size) === local.size &&
    st.mtimeNs === local.mtimeNs &&
    Number(st.ino) === local.inode
  );
}

export function isEmptyDir(fsys: FolderFs, abs: string): boolean {
  try {
    return fsys.readdir(abs).length === 0;
  } catch {
    return true;
  }
}

export function typeOf(st: { isDirectory(): boolean; isSymbolicLink(): boolean }): EntryType {
  return st.isDirectory() ? 'directory' : st.isSymbolicLink() ? 'symlink' : 'file';
}

/** The lstat of `abs`, which must exist (as `fs.lstatSync` would throw ENOENT). */
export function mustLstat(fsys: FolderFs, abs: string): NonNullable<ReturnType<FolderFs['lstat']>> {
  const st = fsys.lstat(abs);
  if (st === undefined) {
    throw Object.assign(new Error(`ENOENT: no such file or directory, lstat '${abs}'`), {
      code: 'ENOENT',
      syscall: 'lstat',
      path: abs,
    });
  }
  return st;
}

export function unlinkIfThere(fsys: FolderFs, abs: string): void {
  try {
    fsys.unlink(abs);
  } catch (err) {
    if (errorCode(err) !== 'ENOENT') throw err;
  }
}

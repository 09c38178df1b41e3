/**
 * The index database is readable by this user only: it lists every path of
 * the folder, and lock owners and reasons. SQLite gives its `-wal` and
 * `-shm` files the database file's mode, so the database file is created
 * 0600 (whatever the umask) before SQLite opens it; an existing one, and its
 * `-wal` and `-shm`, are set to 0600 too.
 */
import * as fs from 'node:fs';
import { errorCode } from '../base/errors.js';

/** The mode of the database and its companions. */
const PRIVATE = 0o600;

/**
 * Creates the database file `file` if it is missing and sets it and its
 * `-wal` / `-shm` to 0600. A file of another user (EPERM) is left as it is.
 * `:memory:` and `''` (SQLite's in-memory and temporary databases) are skipped.
 */
export function makeDatabasePrivate(file: string): void {
  if (file === ':memory:' || file === '') return;
  // 'a': created if missing, never truncated; the database is not written here.
  const fd = fs.openSync(file, 'a', PRIVATE);
  try {
    setMode(() => fs.fchmodSync(fd, PRIVATE));
  } finally {
    fs.closeSync(fd);
  }
  for (const companion of [`${file}-wal`, `${file}-shm`]) {
    setMode(() => fs.chmodSync(companion, PRIVATE));
  }
}

/** Runs a chmod, ignoring a missing file or one this user may not change. */
function setMode(chmod: () => void): void {
  try {
    chmod();
  } catch (err) {
    const code = errorCode(err);
    if (code !== 'ENOENT' && code !== 'EPERM') throw err;
  }
}

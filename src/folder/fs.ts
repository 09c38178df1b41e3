/**
 * The filesystem seam behind the folder writer: only the calls that put
 * changes in the folder and check them, so a test can hand the writer (and
 * the puller's finish) a filesystem that fails chosen calls ({@link
 * FaultyFs} in faulty-fs.ts) instead of waiting for a full disk.
 * Synchronous where the callers must check and act in one run of the event
 * loop (Node has no openat: a check and the act it guards stay microseconds
 * apart); only the slow calls of an upload (write, fsync) are async.
 */
import * as fs from 'node:fs';
import { constants } from 'node:fs';
import { errorCode } from '../base/errors.js';

/** A call of the seam, by name (what a {@link FaultyFs} rule matches). */
export type FsOp =
  | 'lstat'
  | 'fstat'
  | 'readlink'
  | 'readdir'
  | 'realpath'
  | 'rename'
  | 'unlink'
  | 'rmdir'
  | 'mkdir'
  | 'symlink'
  | 'chmod'
  | 'fchmod'
  | 'open'
  | 'write'
  | 'fsync'
  | 'close';

/** The calls the folder writer makes; paths are absolute. */
export interface FolderFs {
  /** The entry at `path` itself (never what a link points to), or undefined if there is none. */
  lstat(path: string): fs.BigIntStats | undefined;
  fstat(fd: number): fs.BigIntStats;
  readlink(path: string): string;
  readdir(path: string): string[];
  realpath(path: string): string;
  rename(from: string, to: string): void;
  unlink(path: string): void;
  rmdir(path: string): void;
  /** Makes a directory; `recursive` makes its missing parents too (and accepts one that exists). */
  mkdir(path: string, recursive?: boolean): void;
  symlink(target: string, path: string): void;
  /** Sets permission bits (follows a link: callers lstat first). */
  chmod(path: string, mode: number): void;
  /** Sets permission bits of an open file. */
  fchmod(fd: number, mode: number): void;
  open(path: string, flags: number, mode?: number): number;
  /** Writes all of `data` at `position`. */
  write(fd: number, data: Uint8Array, position: number): Promise<void>;
  fsync(fd: number): Promise<void>;
  close(fd: number): void;
}

/** The real filesystem. */
export const nodeFs: FolderFs = {
  lstat: (path) => fs.lstatSync(path, { bigint: true, throwIfNoEntry: false }),
  fstat: (fd) => fs.fstatSync(fd, { bigint: true }),
  readlink: (path) => fs.readlinkSync(path),
  readdir: (path) => fs.readdirSync(path),
  realpath: (path) => fs.realpathSync(path),
  rename: (from, to) => fs.renameSync(from, to),
  unlink: (path) => fs.unlinkSync(path),
  rmdir: (path) => fs.rmdirSync(path),
  mkdir: (path, recursive = false) => void fs.mkdirSync(path, { recursive }),
  symlink: (target, path) => fs.symlinkSync(target, path),
  chmod: (path, mode) => fs.chmodSync(path, mode),
  fchmod: (fd, mode) => fs.fchmodSync(fd, mode),
  open: (path, flags, mode) => fs.openSync(path, flags, mode),
  write: async (fd, data, position) => {
    let done = 0;
    while (done < data.length) {
      const at = done;
      done += await new Promise<number>((resolve, reject) =>
        fs.write(fd, data, at, data.length - at, position + at, (err, n) =>
          err ? reject(err) : resolve(n),
        ),
      );
    }
  },
  fsync: (fd) =>
    new Promise<void>((resolve, reject) => fs.fsync(fd, (err) => (err ? reject(err) : resolve()))),
  close: (fd) => fs.closeSync(fd),
};

/** Opens `abs` without following a symlink or blocking on a FIFO; undefined if nothing (or a link) is there. */
export function openNoFollow(fsys: FolderFs, abs: string): number | undefined {
  const { O_RDONLY, O_WRONLY, O_NOFOLLOW, O_NONBLOCK } = constants;
  try {
    return fsys.open(abs, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  } catch (err) {
    const code = errorCode(err);
    if (code === 'ENOENT' || code === 'ELOOP') return undefined;
    // A file its owner cannot read (mode 0200): its mode can still be set
    // through a descriptor opened for writing, which changes no content.
    if (code === 'EACCES') return fsys.open(abs, O_WRONLY | O_NOFOLLOW | O_NONBLOCK);
    throw err;
  }
}

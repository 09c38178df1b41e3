/**
 * The filesystem seam behind the folder writer: only the calls that put
 * changes in the folder and check them, so a test can hand the writer (and
 * the puller's finish) a filesystem that fails chosen calls (`FaultyFs` in
 * folder/faulty-fs.ts) instead of waiting for a full disk. The real one,
 * {@link confinedFs}, resolves every path beneath the folder root without
 * following a symlink (see root.ts). Synchronous where the callers check
 * and act in one run of the event loop (directories opened in that run are
 * shared); only the slow calls of an upload (write, fsync) are async.
 */
import * as fs from 'node:fs';
import { constants } from 'node:fs';
import { LockstepError, errorCode } from '../base/errors.js';
import { ConfinedRoot, O_PATH, fdPath, splitPath } from './root.js';

/** A call of the seam, by name (what a {@link FaultyFs} rule matches). */
export type FsOp =
  | 'lstat'
  | 'fstat'
  | 'readlink'
  | 'readdir'
  | 'parentStillThere'
  | 'rename'
  | 'link'
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

/** The calls the folder writer makes; paths are absolute (and beneath the folder, see {@link confinedFs}). */
export interface FolderFs {
  /** The entry at `path` itself (never what a link points to), or undefined if there is none. */
  lstat(path: string): fs.BigIntStats | undefined;
  fstat(fd: number): fs.BigIntStats;
  readlink(path: string): string;
  readdir(path: string): string[];
  /**
   * Whether the directory holding `path` is reached from the root through
   * real directories and is still the one this run of the event loop used
   * (it may have been moved away, out of the folder, since).
   */
  parentStillThere(path: string): boolean;
  rename(from: string, to: string): void;
  /** Gives the file at `from` (never what a link there points to) a second name `to`. */
  link(from: string, to: string): void;
  unlink(path: string): void;
  rmdir(path: string): void;
  /** Makes a directory; `recursive` makes its missing parents too (and accepts one that exists). */
  mkdir(path: string, recursive?: boolean): void;
  symlink(target: string, path: string): void;
  /** Sets permission bits of the entry at `path` (never through a link; no new setuid/setgid/sticky bit). */
  chmod(path: string, mode: number): void;
  /** Sets permission bits of an open file. */
  fchmod(fd: number, mode: number): void;
  open(path: string, flags: number, mode?: number): number;
  /** Writes all of `data` at `position`. */
  write(fd: number, data: Uint8Array, position: number): Promise<void>;
  fsync(fd: number): Promise<void>;
  close(fd: number): void;
}

/**
 * The real filesystem, confined beneath `root` (see {@link ConfinedRoot}):
 * every path must be the root or beneath it (no `..`, `.` or empty segment:
 * PATH_INVALID), and is resolved without following a symlink anywhere on
 * the way; the last component is never followed either (`open` always adds
 * `O_NOFOLLOW`; `chmod` acts on what is there, never through a link, and
 * adds no setuid, setgid or sticky bit the entry did not have; `readlink` of
 * the root itself is refused).
 */
export function confinedFs(root: string | ConfinedRoot): FolderFs {
  const r = typeof root === 'string' ? new ConfinedRoot(root) : root;
  const rel = (abs: string): string => {
    if (abs === r.path) return '';
    if (abs.startsWith(r.path.endsWith('/') ? r.path : `${r.path}/`)) {
      return abs.slice(r.path.length + (r.path.endsWith('/') ? 0 : 1));
    }
    throw new LockstepError('PATH_INVALID', `${abs} is outside the folder ${r.path}; not touched`);
  };
  const at = (abs: string): string => r.at(rel(abs));
  return {
    lstat: (path) => {
      if (rel(path) === '') return fs.fstatSync(r.dir(''), { bigint: true });
      let p: string;
      try {
        p = at(path);
      } catch (err) {
        if (errorCode(err) === 'ENOENT') return undefined;
        throw err;
      }
      return fs.lstatSync(p, { bigint: true, throwIfNoEntry: false });
    },
    fstat: (fd) => fs.fstatSync(fd, { bigint: true }),
    readlink: (path) => {
      // at('') names the root's descriptor, whose own link is the root's real path.
      if (rel(path) === '') {
        throw new LockstepError('PATH_INVALID', `${path} is the folder root, not a symlink`);
      }
      return fs.readlinkSync(at(path));
    },
    readdir: (path) => fs.readdirSync(fdPath(r.dir(rel(path)))),
    parentStillThere: (path) => r.stillThere(splitPath(rel(path)).dir),
    rename: (from, to) => {
      fs.renameSync(at(from), at(to));
      r.forget(rel(from));
      r.forget(rel(to));
    },
    // link(2) does not follow a symlink at `from`: the link itself gets the name.
    link: (from, to) => fs.linkSync(at(from), at(to)),
    unlink: (path) => fs.unlinkSync(at(path)),
    rmdir: (path) => {
      fs.rmdirSync(at(path));
      r.forget(rel(path));
    },
    mkdir: (path, recursive = false) => {
      if (recursive) r.dir(rel(path), true);
      else fs.mkdirSync(at(path));
    },
    symlink: (target, path) => fs.symlinkSync(target, at(path)),
    chmod: (path, mode) => {
      const fd = fs.openSync(at(path), O_PATH | constants.O_NOFOLLOW);
      try {
        const st = fs.fstatSync(fd);
        if (st.isSymbolicLink()) {
          throw new LockstepError('PATH_INVALID', `${path} is a symlink; its mode is not changed`);
        }
        fs.chmodSync(fdPath(fd), safeMode(st.mode, mode));
      } finally {
        fs.closeSync(fd);
      }
    },
    fchmod: (fd, mode) => fs.fchmodSync(fd, safeMode(fs.fstatSync(fd).mode, mode)),
    open: (path, flags, mode) => fs.openSync(at(path), flags | constants.O_NOFOLLOW, mode),
    write: async (fd, data, position) => {
      let done = 0;
      while (done < data.length) {
        const from = done;
        done += await new Promise<number>((resolve, reject) =>
          fs.write(fd, data, from, data.length - from, position + from, (err, n) =>
            err ? reject(err) : resolve(n),
          ),
        );
      }
    },
    fsync: (fd) =>
      new Promise<void>((resolve, reject) =>
        fs.fsync(fd, (err) => (err ? reject(err) : resolve())),
      ),
    close: (fd) => fs.closeSync(fd),
  };
}

/**
 * The permission bits to set when `want` is asked of an entry whose mode
 * is `current`: setuid, setgid and sticky bits only where the entry had
 * them already (a synced mode never adds them: as root, that would make a
 * folder user's program run as root).
 */
export function safeMode(current: number, want: number): number {
  return (want & 0o777) | (want & current & 0o7000);
}

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

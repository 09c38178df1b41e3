/**
 * Paths confined beneath the folder root. Every path Lockstep uses in the
 * folder is resolved here one component at a time, from a descriptor of
 * the root, never following a symlink: each directory is opened with
 * `O_NOFOLLOW | O_DIRECTORY` relative to the descriptor of its parent
 * (through `/proc/self/fd/N/NAME`, since Node has no `openat`), and the
 * call itself then names `/proc/self/fd/PARENT/NAME`. The kernel resolves
 * that from the directory the descriptor holds, whatever has been renamed
 * or swapped for a symlink since: there is no window between the check of
 * the parents and the act. The last component is never followed either
 * (callers use lstat, `O_NOFOLLOW`, or calls that act on a link itself).
 *
 * Opened directories are kept until the current synchronous run of the
 * event loop ends (a microtask closes them), so the many calls one change
 * makes in one directory walk the path once. A directory this process
 * renames or removes is forgotten at once ({@link ConfinedRoot.forget}).
 * Calls that wait (async reads of a directory, hashing in a worker) take a
 * descriptor of their own for as long as they run ({@link ConfinedRoot.withDir}).
 *
 * This is the one module that turns a folder path into something the
 * kernel resolves; everything else goes through it (see docs/security.md).
 */
import * as fs from 'node:fs';
import { constants } from 'node:fs';
import { LockstepError, errorCode } from '../base/errors.js';

/** `O_PATH` (Linux): a descriptor that only names a directory; Node's constants lack it. */
export const O_PATH = 0o10000000;
const DIR_FLAGS = O_PATH | constants.O_DIRECTORY | constants.O_NOFOLLOW;

/** The path through which the kernel resolves `name` in the directory open as `fd`. */
export function fdPath(fd: number, name?: string): string {
  return name === undefined ? `/proc/self/fd/${fd}` : `/proc/self/fd/${fd}/${name}`;
}

/** An empty, `.` or `..` segment: a path that would not stay beneath the directory it starts from. */
const NOT_A_NAME = /(?:^|\/)\.{0,2}(?:\/|$)/;

/**
 * Refuses a folder path (not `''`, the root) with an empty, `.` or `..`
 * segment: `..` from a directory descriptor leads to its parent, out of
 * the folder from the root (callers check paths where they enter; this is
 * the last line).
 */
function checkPath(rel: string): void {
  if (NOT_A_NAME.test(rel)) {
    throw new LockstepError(
      'PATH_INVALID',
      `${JSON.stringify(rel)} is not a path in the folder (it has an empty, "." or ".." part); nothing is touched`,
    );
  }
}

/** Why a path cannot be reached beneath the root. */
function notConfined(upTo: string, err: unknown): LockstepError {
  return new LockstepError(
    'PATH_INVALID',
    `${upTo} is not a directory in the folder (a symlink or a file is there); nothing beyond it is touched`,
    { cause: err },
  );
}

/** The parent directory part and the last name of a folder path (`''` is the root). */
export function splitPath(rel: string): { dir: string; name: string } {
  const slash = rel.lastIndexOf('/');
  return slash < 0
    ? { dir: '', name: rel }
    : { dir: rel.slice(0, slash), name: rel.slice(slash + 1) };
}

/**
 * The folder at `path` (absolute, as configured; a symlink there is the
 * administrator's choice and is followed once, when the root is opened),
 * and every path beneath it resolved without following anything.
 */
export class ConfinedRoot {
  /** Directories opened in this synchronous run, by folder path (`''`: the root). */
  private readonly open = new Map<string, number>();
  private flushQueued = false;

  constructor(readonly path: string) {}

  /**
   * The descriptor of the directory `rel` (a valid folder path, `''` for
   * the root), valid until the current synchronous run ends. `create` makes
   * missing directories on the way (mode 0755 before the umask).
   *
   * @throws an fs error `ENOENT` when a directory on the way is missing (without `create`)
   * @throws LockstepError `PATH_INVALID` when something other than a directory is on the way, or `rel` has an empty, `.` or `..` segment
   */
  dir(rel: string, create = false): number {
    const known = this.open.get(rel);
    if (known !== undefined) return known;
    let fd: number;
    if (rel === '') {
      fd = fs.openSync(this.path, constants.O_RDONLY | constants.O_DIRECTORY);
    } else {
      checkPath(rel);
      const { dir, name } = splitPath(rel);
      const parent = this.dir(dir, create);
      fd = openChild(parent, name, rel, create);
    }
    this.open.set(rel, fd);
    if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(() => this.flush());
    }
    return fd;
  }

  /**
   * The path through which the kernel reaches `rel` from its parent's
   * descriptor, valid until the current synchronous run ends. For `''`,
   * the root's descriptor itself: a path to open or list, not to lstat
   * (that would see the descriptor's link).
   */
  at(rel: string, create = false): string {
    if (rel === '') return fdPath(this.dir(''));
    checkPath(rel);
    const { dir, name } = splitPath(rel);
    return fdPath(this.dir(dir, create), name);
  }

  /**
   * Whether the directory `rel` as this run holds it is still the one a
   * fresh walk from the root reaches (it was not moved away meanwhile).
   */
  stillThere(rel: string): boolean {
    const held = this.open.get(rel);
    if (held === undefined) return true; // nothing held: the next call walks afresh
    const fresh = new ConfinedRoot(this.path);
    try {
      const a = fs.fstatSync(held);
      const b = fs.fstatSync(fresh.dir(rel));
      return a.ino === b.ino && a.dev === b.dev;
    } catch {
      return false;
    } finally {
      fresh.flush();
    }
  }

  /** Forgets `rel` and everything below it (this process renamed or removed that directory). */
  forget(rel: string): void {
    for (const [k, fd] of this.open) {
      if (k === rel || k.startsWith(`${rel}/`) || rel === '') {
        this.open.delete(k);
        closeQuietly(fd);
      }
    }
  }

  /** Closes every directory opened in this run. */
  flush(): void {
    this.flushQueued = false;
    for (const fd of this.open.values()) closeQuietly(fd);
    this.open.clear();
  }

  /**
   * Runs `fn` with a path to the directory `rel` that stays valid until
   * `fn` settles (a descriptor of its own, not shared with other runs), for
   * calls that wait: `fn` gets `/proc/self/fd/N`, to which it appends names.
   */
  async withDir<T>(rel: string, fn: (dirPath: string) => Promise<T>): Promise<T> {
    // Through the descriptor's own magic link, which names that directory.
    const fd = fs.openSync(fdPath(this.dir(rel)), O_PATH | constants.O_DIRECTORY);
    try {
      return await fn(fdPath(fd));
    } finally {
      closeQuietly(fd);
    }
  }
}

/** Opens the directory `name` in the directory open as `parent`, never through a link. */
function openChild(parent: number, name: string, rel: string, create: boolean): number {
  const at = fdPath(parent, name);
  try {
    return fs.openSync(at, DIR_FLAGS);
  } catch (err) {
    const code = errorCode(err);
    if (code === 'ENOENT' && create) {
      try {
        fs.mkdirSync(at, 0o755);
      } catch (e) {
        if (errorCode(e) !== 'EEXIST') throw e;
      }
      return openChild(parent, name, rel, false);
    }
    if (code === 'ENOTDIR' || code === 'ELOOP') throw notConfined(rel, err);
    throw err;
  }
}

function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // Closed already.
  }
}

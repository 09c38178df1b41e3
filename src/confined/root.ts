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
 * Opened directories are kept, and checked again (a stat per level, no
 * open) before their first use in each synchronous run of the event loop,
 * so the many calls of one change, and the changes that follow in the same
 * directories, do not walk the path again. A directory this process renames
 * or removes is forgotten at once ({@link ConfinedRoot.forget}). Calls that
 * wait (async reads of a directory, hashing in a worker) take a descriptor
 * of their own for as long as they run ({@link ConfinedRoot.withDir}).
 *
 * This is the one module that turns a folder path into something the
 * kernel resolves; everything else goes through it (see docs/security.md).
 */
import * as fs from 'node:fs';
import { constants } from 'node:fs';
import { LockstepError, errorCode, errorMessage } from '../base/errors.js';

/** `O_PATH` (Linux): a descriptor that only names a directory; Node's constants lack it. */
export const O_PATH = 0o10000000;
const DIR_FLAGS = O_PATH | constants.O_DIRECTORY | constants.O_NOFOLLOW;

/** The path through which the kernel resolves `name` in the directory open as `fd`. */
export function fdPath(fd: number, name?: string): string {
  return name === undefined ? `/proc/self/fd/${fd}` : `/proc/self/fd/${fd}/${name}`;
}

/**
 * The message of `err` as a person reads it: the `/proc/self/fd/N/` this
 * layer puts before a name (in Node's "EACCES: …, open '…'") is left out.
 */
export function folderMessage(err: unknown): string {
  return errorMessage(err).replace(/\/proc\/self\/fd\/\d+\/?/g, '');
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
function notConfined(upTo: string, at: string, err: unknown): LockstepError {
  let what = 'not a directory';
  try {
    if (fs.lstatSync(at).isSymbolicLink()) what = 'a symlink';
  } catch {
    // Gone meanwhile: still not a directory to go through.
  }
  return new LockstepError(
    'PATH_INVALID',
    `${upTo} is ${what} here; nothing beyond it is touched`,
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

/** A directory held open, and what it was when opened. */
interface Held {
  readonly fd: number;
  readonly ino: bigint;
  readonly dev: bigint;
}

/** Directories kept open between runs, per root (the least recently used closed first). */
const MAX_HELD = 256;
/**
 * Directories kept open are all closed once unused this long: a held
 * directory keeps its inode, and inotify reports a watched directory's
 * deletion (the folder root's too) only once the last reference is gone.
 */
const IDLE_MS = 100;
/**
 * How long the root's descriptor is taken to be what the root's path names
 * without looking again (a stat of the whole path). A root deleted
 * meanwhile can hold nothing (a directory is removed only empty, and
 * nothing can be made in a deleted one); one renamed away keeps what is
 * written for this long, where its owner moved it, and the safety stop
 * then sees the folder's marker gone.
 */
const ROOT_RECHECK_MS = 100;

/**
 * The folder at `path` (absolute, as configured; a symlink there is the
 * administrator's choice and is followed), and every path beneath it
 * resolved without following anything.
 *
 * Directories stay open between runs of the event loop (at most
 * {@link MAX_HELD}), but each is checked again before its first use in a
 * run: the root must still be what its path names, and every directory the
 * entry of its name in its (checked) parent, the same inode. That is what a
 * fresh walk would find, for a stat per level instead of an open and a
 * close. A directory held by a descriptor keeps its inode, so a match is
 * never a reused number.
 */
export class ConfinedRoot {
  /** Directories held open, by folder path (`''`: the root), least recently used first. */
  private readonly held = new Map<string, Held>();
  /** Those checked in the current synchronous run. */
  private readonly checked = new Set<string>();
  private clearQueued = false;
  private lastUse = 0;
  private rootCheckedAt = -Infinity;
  private idleTimer: NodeJS.Timeout | undefined;

  /**
   * @param keep - keep directories open between runs (checked again at
   *   each run's first use, closed after {@link IDLE_MS} unused); without
   *   it every run ends by closing them
   */
  constructor(
    readonly path: string,
    private readonly keep = true,
  ) {}

  /**
   * The descriptor of the directory `rel` (a valid folder path, `''` for
   * the root), checked for this synchronous run. `create` makes missing
   * directories on the way.
   *
   * @throws an fs error `ENOENT` when a directory on the way is missing (without `create`)
   * @throws LockstepError `PATH_INVALID` when something other than a directory is on the way, or `rel` has an empty, `.` or `..` segment
   */
  dir(rel: string, create = false): number {
    const known = this.held.get(rel);
    if (known !== undefined && this.checked.has(rel)) return known.fd;
    let h: Held | undefined = known;
    if (rel === '') {
      const now = Date.now();
      if (h === undefined || now - this.rootCheckedAt >= ROOT_RECHECK_MS) {
        const st = fs.statSync(this.path, { bigint: true });
        if (h !== undefined && (h.ino !== st.ino || h.dev !== st.dev)) h = this.drop('');
        h ??= this.hold(fs.openSync(this.path, constants.O_RDONLY | constants.O_DIRECTORY));
        this.rootCheckedAt = now;
      }
    } else {
      checkPath(rel);
      const { dir, name } = splitPath(rel);
      const parent = this.dir(dir, create);
      if (h !== undefined) {
        const st = fs.lstatSync(fdPath(parent, name), { bigint: true, throwIfNoEntry: false });
        if (st?.ino !== h.ino || st.dev !== h.dev) h = this.drop(rel);
      }
      h ??= this.hold(openChild(parent, name, rel, create));
    }
    // Most recently used last.
    this.held.delete(rel);
    this.held.set(rel, h);
    this.checked.add(rel);
    if (!this.clearQueued) {
      this.clearQueued = true;
      queueMicrotask(() => this.flush());
      this.lastUse = Date.now();
      this.idleTimer ??= setTimeout(() => this.idle(), IDLE_MS).unref();
    }
    this.trim();
    return h.fd;
  }

  /**
   * The path through which the kernel reaches `rel` from its parent's
   * descriptor, valid in the current synchronous run. For `''`, the root's
   * descriptor itself: a path to open or list, not to lstat (that would
   * see the descriptor's link).
   */
  at(rel: string, create = false): string {
    if (rel === '') return fdPath(this.dir(''));
    checkPath(rel);
    const { dir, name } = splitPath(rel);
    return fdPath(this.dir(dir, create), name);
  }

  /**
   * Whether the directory `rel` is reached from the root through real
   * directories and, if this run used it, is still the one it used (it was
   * not moved away since). The root itself is the safety stop's to watch.
   */
  stillThere(rel: string): boolean {
    if (!this.checked.has(rel)) {
      try {
        this.dir(rel);
        return true;
      } catch {
        return false;
      }
    }
    for (let cur = rel; cur !== ''; cur = splitPath(cur).dir) {
      const { dir, name } = splitPath(cur);
      const h = this.held.get(cur);
      const parent = this.held.get(dir);
      if (h === undefined || parent === undefined) return false;
      const st = fs.lstatSync(fdPath(parent.fd, name), { bigint: true, throwIfNoEntry: false });
      if (st?.ino !== h.ino || st.dev !== h.dev) return false;
    }
    return true;
  }

  /**
   * Forgets `rel` and everything below it (this process renamed or removed
   * that directory). Only what this run checked needs it: anything else is
   * checked again before its next use anyway.
   */
  forget(rel: string): void {
    for (const k of this.checked) {
      if (k === rel || rel === '' || k.startsWith(`${rel}/`)) this.drop(k);
    }
  }

  /** Ends the current run: every directory is checked again before its next use. */
  flush(): void {
    this.clearQueued = false;
    this.checked.clear();
    if (!this.keep) for (const k of [...this.held.keys()]) this.drop(k);
  }

  /** Closes every directory held (the root is no longer used). */
  close(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    for (const k of [...this.held.keys()]) this.drop(k);
    this.flush();
  }

  /** Closes everything once unused for {@link IDLE_MS}; else looks again later. */
  private idle(): void {
    this.idleTimer = undefined;
    const left = this.lastUse + IDLE_MS - Date.now();
    if (left > 0 && this.held.size > 0) {
      this.idleTimer = setTimeout(() => this.idle(), left).unref();
    } else if (this.checked.size === 0) {
      for (const k of [...this.held.keys()]) this.drop(k);
    }
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

  private hold(fd: number): Held {
    const st = fs.fstatSync(fd, { bigint: true });
    return { fd, ino: st.ino, dev: st.dev };
  }

  /** Closes and forgets `rel`; always undefined (what it held is gone). */
  private drop(rel: string): undefined {
    const h = this.held.get(rel);
    if (h !== undefined) closeQuietly(h.fd);
    this.held.delete(rel);
    this.checked.delete(rel);
    return undefined;
  }

  /** Closes the least recently used directories over the limit, never one this run uses. */
  private trim(): void {
    if (this.held.size <= MAX_HELD) return;
    for (const k of this.held.keys()) {
      if (this.held.size <= MAX_HELD) break;
      if (!this.checked.has(k)) this.drop(k);
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
    if (code === 'ENOTDIR' || code === 'ELOOP') throw notConfined(rel, at, err);
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

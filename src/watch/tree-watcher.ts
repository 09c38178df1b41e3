/**
 * The filesystem watcher that feeds the indexer: one non-recursive `fs.watch`
 * per directory. libuv shares one inotify fd, so this costs one inotify watch
 * per directory (not per file) and reports within about a millisecond, where
 * recursive `fs.watch` loses renamed directories, @parcel/watcher debounces
 * for 51 ms and chokidar holds a watch per file.
 */

import { lstatSync, watch, type BigIntStats, type FSWatcher } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { ConfinedRoot, fdPath } from '../confined/root.js';
import { basename, dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { errorCode, errorMessage } from '../base/errors.js';
import { coalesce, type ChangedPath } from '../core/coalesce.js';
import { isTempName, joinRel, parentOf } from '../core/path.js';

/** Options of a {@link TreeWatcher}. */
export interface TreeWatcherOptions {
  /** The absolute path of the folder root. */
  root: string;
  /** Paths (folder-relative) neither watched nor reported; should include Lockstep's own files. */
  ignored: (relPath: string, isDir: boolean) => boolean;
  /** Receives coalesced changes; never called after {@link TreeWatcher.close}. */
  onBatch: (batch: ChangedPath[]) => void;
  /** Receives problems that do not stop the watcher; `relPath` is '' for the root. */
  onError: (err: Error, relPath: string) => void;
  /**
   * Whether what is at `relPath` now is exactly the file this device itself
   * just wrote and recorded there (a pull renamed into place): such an event
   * needs no report, since a scan would find nothing new. `look` lstats the
   * path (call it only for a path written, to keep other events cheap).
   */
  echo?: (relPath: string, look: () => BigIntStats | undefined) => boolean;
  /** Deliver a batch after this long without new events (ms, default 2). */
  quietMs?: number;
  /** ...but never later than this after the first pending event (ms, default 100). */
  maxDelayMs?: number;
}

/** One open watch; `key` identifies the directory it was opened on (see `keyOf`). */
type Watch = { watcher: FSWatcher; key: string };

/**
 * How hard `reconcile` looks, weakest first; merged runs take the strongest.
 * CHECK: a watched directory with the same identity is left alone.
 * DEEP: also walk below it for unwatched directories (a null-filename event).
 * FRESH: a directory entry (re)appeared under this name; rewatch it unless
 * birth times prove it is the directory already watched.
 */
const CHECK = 0;
const DEEP = 1;
const FRESH = 2;
type Mode = typeof CHECK | typeof DEEP | typeof FRESH;

/** Whether an error means the path is no longer there (or no longer a directory). */
const gone = (err: unknown): boolean => ['ENOENT', 'ENOTDIR'].includes(errorCode(err) ?? '');

/** lstat with exact times; a path gone (or unreadable) reads as undefined, i.e. absent. */
const lstatOrUndefined = (abs: string): Promise<BigIntStats | undefined> =>
  lstat(abs, { bigint: true }).catch(() => undefined);

/**
 * Whether lstat reports real birth times. Without statx, libuv copies ctime
 * into them, so one path (the root or an ancestor) whose ctime moved past
 * its birth time proves they are real.
 */
async function birthTimesReal(root: string): Promise<boolean> {
  for (let p = root; ; p = dirname(p)) {
    const st = await lstatOrUndefined(p);
    if (st !== undefined && st.birthtimeNs !== 0n && st.birthtimeNs !== st.ctimeNs) return true;
    if (dirname(p) === p) return false;
  }
}

/**
 * How `watchTree` treats a directory already watched under the same identity.
 * new: skip it (another walk owns it). rewalk: keep its watch, walk below.
 * replace: open a new watch before closing the old (if the old one was still
 * alive, libuv shares its inotify watch, so no event is lost), walk below.
 */
type Walk = 'new' | 'rewalk' | 'replace';

/**
 * Watches every non-ignored directory of a folder and reports changed paths
 * in coalesced batches. New directories are watched whole before they are
 * reported (as `subtree`), so nothing created in them is missed; directories
 * that go away have their watches closed. Symlinks are never followed.
 *
 * The watches keep the process alive until {@link TreeWatcher.close}. The
 * watcher cannot see everything (the root's parent being renamed, a full
 * inotify table): a periodic rescan is still needed.
 */
export class TreeWatcher {
  private readonly o: Required<TreeWatcherOptions>;
  private readonly watches = new Map<string, Watch>();
  /** Parent path to child paths, for every watched directory and its ancestors: O(subtree) unwatch. */
  private readonly links = new Map<string, Set<string>>();
  /** Per-path reconcile runs: one in flight, plus "run again" at the strongest mode asked. */
  private readonly busy = new Map<string, { again: boolean; mode: Mode }>();
  private readonly pending = new Map<string, boolean>();
  private firstAt: number | undefined;
  private lastAt = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private rootKey = '';
  /** Whether birth times identify directories (statx works, the filesystem records them). */
  private btime = false;
  private started = false;
  private closed = false;
  private rootLost = false;
  private limitReported = false;

  /** The root's own name (events on the root itself come under it). */
  private readonly rootBase: string;

  constructor(opts: TreeWatcherOptions) {
    this.o = {
      ...opts,
      echo: opts.echo ?? (() => false),
      quietMs: opts.quietMs ?? 2,
      maxDelayMs: opts.maxDelayMs ?? 100,
    };
    this.rootBase = basename(opts.root);
    this.dir = new ConfinedRoot(opts.root);
  }

  /** The folder, every path beneath the root resolved without following a link. */
  private readonly dir: ConfinedRoot;

  /** The number of directories currently watched (one inotify watch each). */
  get watchedDirs(): number {
    return this.watches.size;
  }

  /**
   * Watches the root and every non-ignored directory below it. Rejects if the
   * root is not a directory or cannot be watched; other directories that
   * cannot be watched go to `onError`.
   */
  async start(): Promise<void> {
    if (this.started) throw new Error('TreeWatcher.start() called twice');
    this.started = true;
    const st = await lstat(this.o.root, { bigint: true });
    if (!st.isDirectory()) throw new Error(`the folder root ${this.o.root} is not a directory`);
    // The root's filesystem must record birth times, and lstat must report them.
    this.btime = st.birthtimeNs !== 0n && (await birthTimesReal(this.o.root));
    this.rootKey = this.keyOf(st);
    await this.watchTree('', 'new');
    if (!this.closed && !this.watches.has('')) {
      throw new Error(`cannot watch the folder root ${this.o.root}`);
    }
  }

  /** Closes every watch and timer; nothing is reported afterwards. Idempotent. */
  close(): void {
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.pending.clear();
    this.closeAll();
    this.dir.close();
  }

  /**
   * The identity of a directory. ext4 hands a freed inode number straight to
   * the next mkdir, so `rm -r d; mkdir d` keeps dev:ino; the birth time tells
   * them apart where it is known.
   */
  private keyOf(st: BigIntStats): string {
    return this.btime ? `${st.dev}:${st.ino}:${st.birthtimeNs}` : `${st.dev}:${st.ino}`;
  }

  private abs(rel: string): string {
    return rel === '' ? this.o.root : join(this.o.root, rel);
  }

  /**
   * lstat of `rel` with exact times, resolved beneath the root without
   * following a link (confined/root.ts); the root itself by its path (its
   * own replacement is what the root checks look for). A path gone, no
   * longer below directories, or unreadable reads as undefined, i.e. absent.
   */
  private look(rel: string): BigIntStats | undefined {
    try {
      return rel === ''
        ? lstatSync(this.o.root, { bigint: true })
        : lstatSync(this.dir.at(rel), { bigint: true });
    } catch {
      return undefined;
    }
  }

  private fail(err: Error, rel: string): void {
    if (!this.closed) this.o.onError(err, rel);
  }

  // ---- watching -----------------------------------------------------------

  /**
   * Watches `rel` and every directory below it. Each directory is watched
   * BEFORE it is listed, so a subdirectory created in between raises an
   * event instead of slipping through. `how` says what to do with
   * directories already watched (see {@link Walk}).
   */
  private async watchTree(rel: string, how: Walk): Promise<void> {
    const abs = this.abs(rel);
    // Looked at and then watched in one synchronous run, through the
    // descriptors of confined/root.ts: what is watched is what was looked at.
    const st = this.look(rel);
    // Invariant: never follow a symlink, never watch a file; if the path is
    // gone, its parent's event reports it.
    if (this.closed || st === undefined || !st.isDirectory()) return;
    const cur = this.watches.get(rel);
    const key = this.keyOf(st);
    if (cur?.key !== key) {
      // New, or replaced: old watches follow the old inode, drop them;
      // everything below is then unwatched, so new to this walk.
      if (cur !== undefined) this.unwatchTree(rel);
      if (!this.watchDir(rel, abs, key)) return;
      how = 'new';
    } else if (how === 'new') {
      return; // another walk owns it and reports it when done
    } else if (how === 'replace' && !this.watchDir(rel, abs, key)) {
      return;
    }
    const entries = await this.dir
      .withDir(rel, (at) => readdir(at, { withFileTypes: true }))
      .catch((err: unknown) => {
        if (!gone(err))
          this.fail(new Error(`cannot list ${this.label(rel)}: ${errorMessage(err)}`), rel);
      });
    if (this.closed || entries === undefined) return;
    const subdirs = entries
      .filter((e) => e.isDirectory())
      .map((e) => joinRel(rel, e.name))
      .filter((child) => !this.o.ignored(child, true));
    await Promise.all(subdirs.map((child) => this.watchTree(child, how)));
  }

  /** Opens one watch; returns false (after reporting why, if it matters) on failure. */
  private watchDir(rel: string, abs: string, key: string): boolean {
    if (this.closed || this.rootLost) return false;
    let watcher: FSWatcher;
    try {
      // The directory itself, through its descriptor: never through a link.
      const at = rel === '' ? abs : fdPath(this.dir.dir(rel));
      watcher = watch(at, (type, name) => this.onEvent(rel, entry, type, name));
    } catch (err) {
      this.watchFailed(rel, err);
      return false;
    }
    const entry: Watch = { watcher, key };
    const old = this.watches.get(rel);
    watcher.on('error', (err) => {
      // The watch is dead; drop it so a later event may re-watch the directory.
      if (this.watches.get(rel) === entry) this.dropWatch(rel);
      this.fail(
        new Error(`watching ${this.label(rel)} failed: ${err.message}`, { cause: err }),
        rel,
      );
    });
    this.watches.set(rel, entry);
    old?.watcher.close(); // only now: see 'replace' in Walk
    this.limitReported = false;
    for (let p = rel; p !== ''; p = parentOf(p)) {
      const parent = parentOf(p);
      const set = this.links.get(parent) ?? new Set<string>();
      if (set.has(p)) break; // the chain above is already linked
      set.add(p);
      this.links.set(parent, set);
    }
    return true;
  }

  private watchFailed(rel: string, err: unknown): void {
    if (gone(err)) return; // vanished between lstat and watch: its parent's event reports it
    const code = errorCode(err);
    // One report per run of ENOSPC: a full table fails every directory after it.
    if (code === 'ENOSPC' && this.limitReported) return;
    this.limitReported ||= code === 'ENOSPC';
    const why =
      code === 'ENOSPC'
        ? 'the inotify watch limit (sysctl fs.inotify.max_user_watches) is reached'
        : code === 'EMFILE'
          ? 'too many open files or inotify instances (ulimit -n, sysctl fs.inotify.max_user_instances)'
          : errorMessage(err);
    const more = code === 'ENOSPC' ? ' (further directories failing so are not reported)' : '';
    const msg = `cannot watch ${this.label(rel)}: ${why}; changes there are found by the periodic rescan${more}`;
    this.fail(new Error(msg, { cause: err }), rel);
  }

  private label(rel: string): string {
    return rel === '' ? `the folder root ${this.o.root}` : `directory "${rel}" in ${this.o.root}`;
  }

  private dropWatch(rel: string): void {
    this.watches.get(rel)?.watcher.close();
    this.watches.delete(rel);
  }

  /** Closes the watch of `rel` and of every directory below it. */
  private unwatchTree(rel: string): void {
    this.dropWatch(rel);
    const children = this.links.get(rel);
    this.links.delete(rel);
    if (children !== undefined) for (const child of children) this.unwatchTree(child);
    if (rel !== '') this.links.get(parentOf(rel))?.delete(rel);
  }

  private closeAll(): void {
    for (const w of this.watches.values()) w.watcher.close();
    this.watches.clear();
    this.links.clear();
  }

  // ---- events -------------------------------------------------------------

  private onEvent(dir: string, entry: Watch, type: string, name: string | null): void {
    // Invariant: events of a closed or replaced watch are stale, drop them.
    if (this.closed || this.watches.get(dir) !== entry) return;
    if (name === null) {
      this.schedule(dir, DEEP); // "something in here changed": rewatch and rescan it whole
      return;
    }
    // Linux reports events on the directory itself (deleted, moved, chmod)
    // under its own base name: check the directory itself too. This may also
    // report a nonexistent `dir/name`; the consumer's lstat settles that.
    const base = dir === '' ? this.rootBase : dir.slice(dir.lastIndexOf('/') + 1);
    if (name === base) this.schedule(dir, CHECK);
    // Lockstep's own temp files are always ignored, and a pull makes several
    // events on each: nothing to look at (not even the ignore rules).
    if (isTempName(name)) return;
    const rel = joinRel(dir, name);
    if (type === 'rename') {
      // Ignored whatever it is and not watched: a look would find nothing to
      // do (Lockstep's own temp files, three events per file pulled).
      if (!this.watches.has(rel) && this.o.ignored(rel, false) && this.o.ignored(rel, true)) {
        return;
      }
      // A file a pull just put in place: one look on the spot settles it.
      if (!this.busy.has(rel) && this.o.echo(rel, () => this.look(rel))) return;
      this.schedule(rel, FRESH); // created, deleted or moved: look at what is there now
      return;
    }
    // A 'change' (content, attributes) does not change what the path is, so
    // skip the lstat unless the ignore rules depend on whether it is a directory.
    if (this.watches.has(rel)) {
      this.add(rel, false); // a watched directory's attributes
      return;
    }
    const asFile = this.o.ignored(rel, false);
    const asDir = this.o.ignored(rel, true);
    if (asFile !== asDir) this.schedule(rel, CHECK);
    else if (!asFile) this.add(rel, false);
  }

  /**
   * Runs {@link reconcile} for `rel`, one run at a time per path so their
   * lstats see the events in order; an event during a run asks for one more.
   */
  private schedule(rel: string, mode: Mode): void {
    const b = this.busy.get(rel);
    if (b !== undefined) {
      b.mode = b.again ? (Math.max(b.mode, mode) as Mode) : mode;
      b.again = true;
      return;
    }
    const state = { again: true, mode };
    this.busy.set(rel, state);
    void (async () => {
      try {
        while (state.again && !this.closed) {
          state.again = false;
          await this.reconcile(rel, state.mode);
        }
      } catch (err) {
        this.fail(new Error(`watching "${rel}" failed: ${errorMessage(err)}`, { cause: err }), rel);
      } finally {
        this.busy.delete(rel);
      }
    })();
  }

  /** Brings the watches for `rel` in line with what is on disk now, and reports it. */
  private async reconcile(rel: string, mode: Mode): Promise<void> {
    const st = this.look(rel);
    if (this.closed || this.rootLost) return;
    if (rel === '') {
      if (st === undefined) return this.loseRoot('disappeared');
      if (!st.isDirectory() || this.keyOf(st) !== this.rootKey) {
        return this.loseRoot('was replaced');
      }
      if (mode === DEEP) {
        await this.watchTree('', 'rewalk');
        this.add('', true);
      }
      return;
    }
    const cur = this.watches.get(rel);
    if (st?.isDirectory()) {
      if (this.o.ignored(rel, true)) {
        if (cur !== undefined) this.unwatchTree(rel);
        return;
      }
      const same = cur?.key === this.keyOf(st);
      if (same && (mode === CHECK || (mode === FRESH && this.btime))) {
        // The directory already watched: touched, moved away and back, or
        // watched by a walk that got there before this event.
        this.add(rel, false);
        return;
      }
      // New, moved in, replaced, or (same dev:ino but no birth times) maybe
      // replaced by a directory that reuses the inode. Invariant: watch the
      // whole tree BEFORE reporting it, so whatever is created meanwhile is
      // caught by a watch or by the consumer's rescan of the subtree.
      await this.watchTree(rel, !same ? 'new' : mode === DEEP ? 'rewalk' : 'replace');
      this.add(rel, true);
      return;
    }
    if (cur !== undefined) {
      // A watched directory is gone, moved away, or became a file or symlink.
      this.unwatchTree(rel);
      this.add(rel, false);
      return;
    }
    // A file (or nothing): unwatched paths that vanished were files, so test as a file.
    if (st?.isFile() === true && this.o.echo(rel, () => st)) return;
    if (!this.o.ignored(rel, false)) this.add(rel, false);
  }

  private loseRoot(how: string): void {
    if (this.rootLost) return;
    this.rootLost = true;
    this.closeAll(); // the watches died with the root's inode
    this.add('', true);
    this.fail(new Error(`the folder root ${this.o.root} ${how}; it is no longer watched`), '');
  }

  // ---- batching -----------------------------------------------------------

  private add(path: string, subtree: boolean): void {
    if (this.closed) return;
    this.pending.set(path, this.pending.get(path) === true || subtree);
    const now = performance.now();
    this.lastAt = now;
    this.firstAt ??= now;
    // One timer at a time: it re-arms itself instead of being reset per event.
    this.timer ??= setTimeout(() => this.tick(), this.o.quietMs);
  }

  private tick(): void {
    this.timer = undefined;
    if (this.closed || this.firstAt === undefined) return;
    const now = performance.now();
    const quietLeft = this.lastAt + this.o.quietMs - now;
    const maxLeft = this.firstAt + this.o.maxDelayMs - now;
    // Timers have 1 ms granularity: under 1 ms left counts as due.
    if (quietLeft < 1 || maxLeft < 1) return this.flush();
    this.timer = setTimeout(() => this.tick(), Math.min(quietLeft, maxLeft));
  }

  private flush(): void {
    const batch = coalesce([...this.pending].map(([path, subtree]) => ({ path, subtree })));
    this.pending.clear();
    this.firstAt = undefined;
    try {
      this.o.onBatch(batch);
    } catch (err) {
      this.fail(err instanceof Error ? err : new Error(errorMessage(err)), '');
    }
  }
}

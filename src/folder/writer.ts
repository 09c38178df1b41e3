/**
 * The folder writer: every change Lockstep itself makes to the folder goes
 * through here: a pulled file, directory, link or permission change put in
 * place, a delete, a conflict loser moved aside, a locked file set aside, an
 * upload or a delete through the API. One place keeps the order that keeps
 * data safe (re-check the target against the index, check the parents,
 * act, check where it landed, record), tells the watcher which writes were
 * its own, and offers the hooks where the old content can be kept
 * ({@link WriterHooks.beforeReplace}, for versions and trash) and the bytes
 * counted ({@link WriterHooks.countBytes}, for metrics).
 *
 * Every call goes through the confined filesystem seam (confined/fs.ts):
 * each path is resolved beneath the root one directory descriptor at a
 * time, never through a symlink. A directory moved out of the folder while
 * it is used is the one window that leaves; so the parents are checked
 * before every act ({@link ensureParents}) and the result right after
 * ({@link landedInside}), synchronously.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { LockstepError, errorCode } from '../base/errors.js';
import type { SerialQueue } from '../base/serial-queue.js';
import { conflictCopyName } from '../core/conflict-name.js';
import type { Action } from '../core/plan.js';
import { sameContent, type EntryType, type FileRecord } from '../core/record.js';
import type { Vector } from '../core/vector.js';
import type { IndexStore } from '../store/index-store.js';
import { confinedFs, openNoFollow, type FolderFs } from '../confined/fs.js';
import { ensureParents, inFolder, landedInside, tempPath, type FileId } from './temp-files.js';
import { diskMatches, isEmptyDir, mustLstat, typeOf, unlinkIfThere } from './entries.js';
import { holdFile, releaseFile } from './held-file.js';

/** Why content at a path is about to go (see {@link WriterHooks.beforeReplace}). */
export type ReplaceReason =
  /** A pulled version takes its place. */
  | 'pull'
  /** A delete from a peer. */
  | 'delete'
  /** An entry of another type (a file where a directory now is) makes way. */
  | 'make-way'
  /** A conflict loser whose identical copy is already kept under the copy's name. */
  | 'duplicate'
  /** An upload through the API takes its place. */
  | 'upload'
  /** A delete through the API. */
  | 'remove';

/** Hooks of a {@link FolderWriter}; every one is optional and a no-op by default. */
export interface WriterHooks {
  /**
   * Called right before a file or link at `path` (folder-relative) is
   * replaced or removed, on the device's serial queue, with the entry still
   * in place: where the versions store keeps the old content. Throwing
   * stops the change (a version that cannot be kept means the file is not
   * replaced); the change is then a problem like any failed write.
   * Directories hold no content of their own and are not announced.
   */
  beforeReplace(
    path: string,
    what: { readonly type: EntryType; readonly why: ReplaceReason },
  ): void;
  /** Counts bytes of file content put in place (for metrics). */
  countBytes(bytes: number, via: 'pull' | 'upload'): void;
}

/** What the writer needs of the index. */
export type WriterIndex = Pick<IndexStore, 'get' | 'commitSynced' | 'transaction'>;

/** Options of a {@link FolderWriter}. */
export interface FolderWriterOptions {
  /** The folder's root directory (absolute). */
  readonly root: string;
  readonly store: WriterIndex;
  /** The device's serial queue; uploads and API deletes take their turn on it. */
  readonly queue: SerialQueue;
  /** The filesystem; the real one unless a test injects faults. */
  readonly fs?: FolderFs;
  /**
   * Notes a record this device itself just put on disk and recorded, so
   * the watcher's event for it is recognized and not scanned again. Uploads
   * are not noted: they are not recorded here, so the scan must see them.
   */
  readonly noteWrite?: (rec: FileRecord) => void;
  /** Whether `path` is locked (by anyone): its conflict copy must not stay read-only. */
  readonly isLocked?: (path: string) => boolean;
  readonly hooks?: Partial<WriterHooks>;
}

/**
 * One change from a peer to put in place, as planned: the plan's action
 * for `path`, the local record it was planned from, and for a pull the
 * assembled, verified, fsynced temp file.
 */
export type FolderChange = Exclude<Action, { kind: 'none' }> & {
  readonly path: string;
  /** The local record the change was planned from (the target is re-checked against it). */
  readonly local: FileRecord | undefined;
  /** For a pull: the temp file holding the new content. */
  readonly tmp?: string | undefined;
  /** For a pull: the temp file's identity when it was made (checked where it lands). */
  readonly id?: FileId | undefined;
  /** Whether a non-empty directory in the way may be waited for (`later`) rather than be a problem. */
  readonly mayWait?: boolean;
};

/**
 * What became of a {@link FolderChange}: put in place and recorded (with
 * the conflict copy it made, if any), or not: `replan` (the index changed
 * since the plan), `rescan` (the disk no longer matches the index),
 * `later` (a directory in the way still holds entries).
 */
export type ApplyOutcome =
  'rescan' | 'replan' | 'later' | { readonly record: FileRecord; readonly copy?: string };

/** Makes every change Lockstep itself makes to the folder. */
export class FolderWriter {
  readonly root: string;
  readonly fs: FolderFs;
  private readonly hooks: WriterHooks;
  /** Records put in place in the running {@link batch}, noted once it commits. */
  private notes: FileRecord[] | undefined;

  constructor(private readonly opts: FolderWriterOptions) {
    this.root = opts.root;
    this.fs = opts.fs ?? confinedFs(opts.root);
    this.hooks = {
      beforeReplace: opts.hooks?.beforeReplace ?? (() => undefined),
      countBytes: opts.hooks?.countBytes ?? (() => undefined),
    };
  }

  /**
   * Runs `fn` (changes applied with {@link apply}) in one index transaction,
   * and notes the records written for the watcher once it has committed
   * (a rolled-back record must be scanned, not taken for an echo).
   */
  batch<T>(fn: () => T): T {
    const notes: FileRecord[] = [];
    this.notes = notes;
    try {
      const result = this.opts.store.transaction(fn)();
      for (const r of notes) this.opts.noteWrite?.(r);
      return result;
    } finally {
      this.notes = undefined;
    }
  }

  /**
   * Puts one planned change from a peer in place and records it. Runs on
   * the serial queue (synchronously): the target is re-checked against the
   * index and the disk, a conflict loser is moved aside, an entry of
   * another type makes way, and only then is the change made and recorded.
   */
  apply(c: FolderChange): ApplyOutcome {
    const fsys = this.fs;
    const local = this.opts.store.get(c.path);
    if (!sameRecord(local, c.local)) return 'replan';
    const abs = inFolder(this.root, c.path);
    // Only a change that creates something makes missing parents; a
    // recorded tombstone must not bring a deleted directory back.
    const creates = c.kind === 'pull' || c.kind === 'mkdir' || c.kind === 'symlink';
    ensureParents(this.root, c.path, creates, fsys);
    if (!diskMatches(fsys, abs, local)) return 'rescan';
    let copy: string | undefined;
    if (c.conflictCopy !== undefined && local !== undefined && !local.deleted) {
      copy = this.moveAside(c.path, local);
    }
    const rec = c.record;
    // What is still at the path (a conflict loser was moved away).
    const there = copy === undefined && local !== undefined && !local.deleted ? local : undefined;
    if (there !== undefined && there.type !== rec.type && !rec.deleted) {
      // Its entries' deletes usually come in the same batch and run last in
      // the cycle: the caller may try again after them.
      if (there.type === 'directory' && c.mayWait === true && !isEmptyDir(fsys, abs)) {
        return 'later';
      }
      this.removeEntry(c.path, there, 'make-way');
    }
    const replaces = there !== undefined && there.type === rec.type;
    // What a pull put in place, as seen right after (its identity is checked).
    let landed: ReturnType<FolderFs['lstat']>;
    switch (c.kind) {
      case 'pull': {
        const tmp = c.tmp as string;
        const made = c.id ?? mustLstat(fsys, tmp);
        // The file replaced keeps a second name until it is seen unchanged after the rename.
        const held = replaces && there !== undefined ? holdFile(fsys, abs, there) : 'unheld';
        if (held === 'changed') return 'rescan';
        try {
          if (replaces) this.hooks.beforeReplace(c.path, { type: 'file', why: 'pull' });
          fsys.rename(tmp, abs);
          landed = landedInside(c.path, abs, made, true, fsys);
        } catch (err) {
          if (typeof held === 'object') unlinkIfThere(fsys, held.at);
          throw err;
        }
        if (typeof held === 'object' && !releaseFile(fsys, abs, held)) return 'rescan';
        this.hooks.countBytes(rec.size, 'pull');
        break;
      }
      case 'mkdir':
        fsys.mkdir(abs, true);
        break;
      case 'symlink': {
        const t = tempPath(abs);
        unlinkIfThere(fsys, t);
        fsys.symlink(rec.target, t);
        if (replaces) this.hooks.beforeReplace(c.path, { type: 'symlink', why: 'pull' });
        fsys.rename(t, abs);
        break;
      }
      case 'chmod':
        // The same content: special bits it has here stay (chmod adds none).
        fsys.chmod(abs, newMode(local, rec) | ((local?.mode ?? 0) & 0o7000));
        break;
      case 'delete':
        if (local !== undefined && !local.deleted) this.removeEntry(c.path, local, 'delete');
        break;
      case 'version':
      case 'tombstone':
        break;
    }
    const st = rec.deleted ? undefined : (landed ?? mustLstat(fsys, abs));
    const record = this.opts.store.commitSynced(
      rec,
      c.version,
      st ? { inode: Number(st.ino), mtimeNs: st.mtimeNs, mode: Number(st.mode) & 0o7777 } : null,
    );
    if (this.notes !== undefined) this.notes.push(record);
    else this.opts.noteWrite?.(record);
    return copy === undefined ? { record } : { record, copy };
  }

  /**
   * A locked file changed here although a user on another device holds the
   * lock: moves what is at `path` to a conflict copy named for `nowNs` and
   * this device (`by`), writable (the file was read-only for the lock).
   * Runs on the serial queue. Returns the copy's path, or undefined if
   * nothing is there.
   *
   * @throws LockstepError `PATH_INVALID` when a parent is not a directory (a symlink could lead outside)
   */
  setAsideLocked(path: string, nowNs: bigint, by: string): string | undefined {
    const fsys = this.fs;
    if (!ensureParents(this.root, path, false, fsys)) return undefined;
    const st = fsys.lstat(inFolder(this.root, path));
    if (st === undefined) return undefined;
    const copy = conflictCopyName(
      path,
      nowNs,
      by,
      (name) => fsys.lstat(inFolder(this.root, name)) !== undefined,
    );
    fsys.rename(inFolder(this.root, path), inFolder(this.root, copy));
    // Where it landed is checked: a parent swapped meanwhile must not have led it out.
    landedInside(copy, inFolder(this.root, copy), st, false, fsys);
    if (st.isFile()) this.makeWritable(copy);
    return copy;
  }

  /**
   * Writes an upload through the API to `path`: streamed into a temp file
   * of its own beside the target (created exclusively, never through a
   * link), fsynced, then on the serial queue `recheck` runs again (a lock
   * may have been taken meanwhile) and the file is renamed into place. The
   * permission bits of the file it replaces are kept. Not recorded here:
   * the watcher or the next scan indexes it.
   *
   * @param recheck - throws if the write is no longer allowed
   * @returns the bytes written
   */
  async upload(
    path: string,
    data: AsyncIterable<Uint8Array>,
    recheck: () => void,
  ): Promise<{ size: number }> {
    const fsys = this.fs;
    const abs = inFolder(this.root, path);
    ensureParents(this.root, path, true, fsys);
    const tmp = `${tempPath(abs)}.${randomBytes(6).toString('hex')}`;
    const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = constants;
    const fd = fsys.open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o644);
    let size = 0;
    let id: FileId;
    try {
      try {
        id = fsys.fstat(fd);
        landedInside(path, tmp, id, true, fsys);
        for await (const piece of data) {
          await fsys.write(fd, piece, size);
          size += piece.length;
        }
        // Keep the permission bits (the executable bit) of what it replaces.
        const old = fsys.lstat(abs);
        if (old?.isFile() === true) fsys.fchmod(fd, Number(old.mode) & 0o7777);
        await fsys.fsync(fd);
      } finally {
        fsys.close(fd);
      }
      // The rename runs on the folder's queue, after any pull finishing there.
      await this.opts.queue.run(async () => {
        recheck();
        ensureParents(this.root, path, false, fsys);
        const old = fsys.lstat(abs);
        if (old !== undefined && !old.isDirectory()) {
          this.hooks.beforeReplace(path, { type: typeOf(old), why: 'upload' });
        }
        fsys.rename(tmp, abs);
        landedInside(path, abs, id, true, fsys);
      });
    } catch (err) {
      this.dropTemp(path, tmp);
      throw err;
    }
    this.hooks.countBytes(size, 'upload');
    return { size };
  }

  /**
   * Deletes `path` (a file, link or empty directory) for the API, on the
   * serial queue after `recheck`.
   *
   * @throws LockstepError `NOT_FOUND` when nothing is there
   */
  remove(path: string, recheck: () => void): Promise<void> {
    return this.opts.queue.run(async () => {
      recheck();
      const fsys = this.fs;
      const abs = inFolder(this.root, path);
      const st = ensureParents(this.root, path, false, fsys) ? fsys.lstat(abs) : undefined;
      if (st === undefined) throw new LockstepError('NOT_FOUND', `No such path: ${path}`);
      if (st.isDirectory()) {
        fsys.rmdir(abs);
      } else {
        this.hooks.beforeReplace(path, { type: typeOf(st), why: 'remove' });
        fsys.unlink(abs);
      }
    });
  }

  /**
   * Moves the losing local entry to its conflict name; returns the name
   * used. If a copy of the same content is already there (another device
   * made it and it synced here), the loser is already kept and is removed
   * instead.
   */
  private moveAside(path: string, local: FileRecord): string {
    const fsys = this.fs;
    let duplicate = false;
    // The plan named the first choice (conflictName of the same record).
    const name = conflictCopyName(path, local.mtimeNs, local.modifiedBy, (c) => {
      const at = inFolder(this.root, c);
      if (fsys.lstat(at) === undefined) return false;
      const kept = this.opts.store.get(c);
      duplicate =
        kept !== undefined &&
        !kept.deleted &&
        sameContent(kept, { ...local, mode: kept.mode, path: c }) &&
        diskMatches(fsys, at, kept);
      return !duplicate;
    });
    if (duplicate) {
      this.removeEntry(path, local, 'duplicate');
      return name;
    }
    fsys.rename(inFolder(this.root, path), inFolder(this.root, name));
    // A file read-only here because of a lock elsewhere: the copy is not locked.
    if (local.type === 'file' && this.opts.isLocked?.(path) === true) this.makeWritable(name);
    return name;
  }

  /** Removes a file, link or empty directory that the index knows as `local`. */
  private removeEntry(path: string, local: FileRecord, why: ReplaceReason): void {
    const abs = inFolder(this.root, path);
    if (local.type !== 'directory') {
      this.hooks.beforeReplace(path, { type: local.type, why });
      this.fs.unlink(abs);
      return;
    }
    try {
      this.fs.rmdir(abs);
    } catch (err) {
      if (errorCode(err) === 'ENOTEMPTY' || errorCode(err) === 'EEXIST') {
        throw new LockstepError(
          'FOLDER_INVALID',
          `Directory ${abs} was deleted elsewhere but still holds files here that are not synced (ignored or new); it was kept`,
          { cause: err },
        );
      }
      throw err;
    }
  }

  /**
   * Makes the regular file at `path` read-only (`on`: a lock held on another
   * device) or gives its owner the write bit back. The file is opened
   * without following a symlink and its mode changed through that
   * descriptor, after checking that what was opened is the file at `path`
   * in the folder (a parent swapped for a symlink could lead elsewhere).
   *
   * @returns false when no regular file is there (nothing to do)
   * @throws LockstepError `PATH_INVALID` when a parent is not a directory
   */
  setReadOnly(path: string, on: boolean): boolean {
    const fsys = this.fs;
    if (!ensureParents(this.root, path, false, fsys)) return false;
    const abs = inFolder(this.root, path);
    const fd = openNoFollow(fsys, abs);
    if (fd === undefined) return false;
    try {
      const st = fsys.fstat(fd);
      if (!st.isFile()) return false;
      landedInside(path, abs, st, false, fsys);
      if (st.nlink > 1n) {
        // Another name of the same file may be outside the folder: its
        // mode is not Lockstep's to change (the lock still holds: a change
        // here becomes a conflict copy).
        throw new LockstepError(
          'PATH_INVALID',
          `${path} has ${st.nlink} hard links; its mode is left alone (another name may be outside the folder)`,
        );
      }
      const mode = Number(st.mode) & 0o7777;
      const want = on ? mode & ~0o222 : mode | 0o200;
      if (want !== mode) fsys.fchmod(fd, want);
      return true;
    } finally {
      fsys.close(fd);
    }
  }

  /** Gives the owner back the write bit of a file at `path` (a copy of a file lock enforcement made read-only). */
  private makeWritable(path: string): void {
    this.setReadOnly(path, false);
  }

  /** Removes an upload's temp file after a failure, never through a parent that is not a directory. */
  /** Removes the temp file a pull of `path` left (no longer wanted), never through a link. */
  dropPullTemp(path: string): void {
    this.dropTemp(path, tempPath(inFolder(this.root, path)));
  }

  private dropTemp(path: string, tmp: string): void {
    try {
      if (ensureParents(this.root, path, false, this.fs)) unlinkIfThere(this.fs, tmp);
    } catch {
      // A parent in the way holds no temp file of ours.
    }
  }
}

/**
 * Permission bits for content from a peer: the local read and write bits
 * kept, the executable bits from the winner, and never a setuid, setgid or
 * sticky bit (not even one the file it replaces had: a peer's content must
 * not run as the file's owner, root included).
 */
export function newMode(local: FileRecord | undefined, rec: FileRecord): number {
  const base = local !== undefined && !local.deleted && local.type === 'file' ? local.mode : 0o644;
  return (base & 0o666) | (rec.mode & 0o111);
}

/** Whether two records are the same recording (sequence and version), or both absent. */
function sameRecord(a: FileRecord | undefined, b: FileRecord | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.sequence === b.sequence && sameVector(a.version, b.version);
}

function sameVector(a: Vector, b: Vector): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

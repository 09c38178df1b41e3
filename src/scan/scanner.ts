/**
 * The scanner: walks the folder (or parts of it), compares what it finds with
 * the index by type, size, mtime, inode and mode, re-chunks only what
 * changed, and commits the observations. Trouble with one path is recorded as
 * a problem and the scan goes on.
 */
import { constants, lstatSync, promises as fsp, readlinkSync } from 'node:fs';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { BigIntStats } from 'node:fs';
import { join } from 'node:path';
import { LockstepError, errorCode, errorMessage } from '../base/errors.js';
import { ConfinedRoot, folderMessage, splitPath } from '../confined/root.js';
import type { Observed } from '../core/local.js';
import type { Chunk, EntryType, FileRecord } from '../core/record.js';
import { MARKER_NAME, isWithin, joinRel, pathProblem } from '../core/path.js';
import type { LocalChange, StatKey } from '../store/index-store.js';
import type { IgnoreRules } from './ignore-rules.js';

/** What the scanner needs of the index. */
export interface ScanIndex {
  /** Keys of the records directly inside `dir`, and the children with records below them. */
  childKeys(dir: string): { keys: Map<string, StatKey>; nested: string[] };
  get(
    path: string,
  ): Pick<FileRecord, 'type' | 'size' | 'mtimeNs' | 'inode' | 'mode' | 'deleted'> | undefined;
  livePathsWithin(dir: string): string[];
  commit(changes: readonly LocalChange[]): FileRecord[];
}

/** What the scanner needs to chunk and hash a file. */
export interface FileHasher {
  /** `sizeHint`: the size the scanner saw; the file is read to its end whatever it says. */
  hashFile(absPath: string, sizeHint?: number): Promise<{ size: number; chunks: Chunk[] }>;
}

/** One path the scanner could not index, and why. */
export interface Problem {
  readonly path: string;
  readonly message: string;
  /** The system error code, when there is one (EACCES, ENOSPC, …). */
  readonly code?: string;
}

/** A part of the folder to scan: one path, or a directory and all below it. */
export interface ScanTarget {
  readonly path: string;
  readonly subtree: boolean;
}

/** What a scan did. */
export interface ScanResult {
  /** Records that got a new version, in commit order. */
  readonly changed: FileRecord[];
  /** Number of records that got a new version (also when `changed` is not collected). */
  readonly changedCount: number;
  /** Paths looked at. */
  readonly scanned: number;
  /** Bytes chunked and hashed. */
  readonly hashedBytes: number;
  /** Problems met in this scan. */
  readonly problems: Problem[];
}

/** Options of a {@link Scanner}. */
export interface ScannerOptions {
  /** The folder root, absolute. */
  readonly root: string;
  readonly index: ScanIndex;
  readonly hasher: FileHasher;
  /** The current ignore rules; read on every scan, so it can be replaced. */
  ignore: IgnoreRules;
  /** Observations committed per transaction. @default 2000 */
  readonly batchSize?: number;
  /**
   * Called after each committed batch with the records that got a new
   * version. When set, the result's `changed` stays empty, so a first scan of
   * a big folder does not hold every record in memory.
   */
  readonly onCommit?: (changed: FileRecord[]) => void;
  /** Files hashed at once. @default 16 */
  readonly concurrency?: number;
}

/** How often a file that keeps changing while hashed is retried in one scan. */
const HASH_ATTEMPTS = 3;

/** The walk lets other events run after this many entries of one directory. */
const YIELD_EVERY = 256;

/** Walks, compares, hashes and commits. Not re-entrant: run one scan at a time. */
export class Scanner {
  /** Problems still standing, by path; a path that scans cleanly is removed. */
  readonly problems = new Map<string, Problem>();

  constructor(private readonly opts: ScannerOptions) {}

  /** Scans the whole folder. */
  scanAll(): Promise<ScanResult> {
    return this.scan([{ path: '', subtree: true }]);
  }

  /**
   * Scans the given targets. Checks the folder first and throws a
   * `FOLDER_STOPPED` error, recording nothing, when the root or its marker is
   * gone: a vanished or unmounted folder must not be recorded as deleted.
   */
  async scan(targets: readonly ScanTarget[]): Promise<ScanResult> {
    await checkFolder(this.opts.root);
    const run = new ScanRun(this.opts, this.problems);
    try {
      for (const t of targets) await run.target(t);
      await run.drain();
      // Re-check before the deletions: if the folder vanished during the walk,
      // its absence must not become tombstones.
      await checkFolder(this.opts.root);
      await run.flushGone();
      return run.result();
    } finally {
      run.close();
    }
  }
}

/**
 * Throws `FOLDER_STOPPED` unless `root` is a directory holding the folder
 * marker.
 */
export async function checkFolder(root: string): Promise<void> {
  let st;
  try {
    st = await fsp.stat(root);
  } catch (err) {
    throw new LockstepError(
      'FOLDER_STOPPED',
      `Folder ${root} is missing (${errorCode(err) ?? errorMessage(err)}); not syncing it until it is back`,
      { cause: err },
    );
  }
  if (!st.isDirectory())
    throw new LockstepError('FOLDER_STOPPED', `Folder ${root} is not a directory; not syncing it`);
  try {
    await fsp.access(join(root, MARKER_NAME), constants.F_OK);
  } catch (err) {
    throw new LockstepError(
      'FOLDER_STOPPED',
      `Folder marker ${join(root, MARKER_NAME)} is missing: the folder may be unmounted or emptied; not syncing it until the marker is back (recreate it with "lockstep init" if the folder is really new)`,
      { cause: err },
    );
  }
}

/** The state of one scan. */
class ScanRun {
  private readonly changed: FileRecord[] = [];
  private changedCount = 0;
  private readonly found: Problem[] = [];
  private pending: LocalChange[] = [];
  private readonly toHash: { path: string; st: BigIntStats }[] = [];
  /** Live paths under subtree targets that the walk did not find: tombstone candidates. */
  private readonly gone = new Set<string>();
  /** Directories that could not be read: nothing below them may be called deleted. */
  private readonly unreadable: string[] = [];
  private scanned = 0;
  private hashedBytes = 0;
  /** The folder, every path resolved beneath its root without following a link. */
  private readonly dir: ConfinedRoot;

  constructor(
    private readonly o: ScannerOptions,
    private readonly problems: Map<string, Problem>,
  ) {
    this.dir = new ConfinedRoot(o.root);
  }

  /** Closes the directories this run held. */
  close(): void {
    this.dir.close();
  }

  async target(t: ScanTarget): Promise<void> {
    if (t.path === '') return this.walkBelow('');
    const bad = pathProblem(t.path);
    if (bad) return this.problem(t.path, `not indexed: ${bad}`);
    const st = await this.lstat(t.path);
    if (st === undefined) return; // recorded as a problem
    if (st === null) {
      // Gone: the path and everything indexed below it.
      if (!this.ignoredEitherWay(t.path))
        for (const p of this.o.index.livePathsWithin(t.path)) this.gone.add(p);
      return;
    }
    const isDir = st.isDirectory();
    if (this.o.ignore.ignores(t.path, isDir)) return;
    const old = this.o.index.get(t.path);
    const wasDir = old !== undefined && !old.deleted && old.type === 'directory';
    await this.entry(t.path, st, old);
    if (isDir && (t.subtree || !wasDir)) return this.walkBelow(t.path);
    if (!isDir && wasDir) {
      // A directory replaced by a file or link: what was inside is gone.
      for (const p of this.o.index.livePathsWithin(t.path)) if (p !== t.path) this.gone.add(p);
    }
  }

  private ignoredEitherWay(p: string): boolean {
    return this.o.ignore.ignores(p, false) || this.o.ignore.ignores(p, true);
  }

  /**
   * Walks below `dir`; everything live below it that the walk misses is gone.
   * The index is compared one directory at a time, so memory stays small
   * whatever the size of the folder.
   */
  private async walkBelow(dir: string): Promise<void> {
    const stack = [dir];
    while (stack.length > 0) {
      const d = stack.pop() as string;
      let names: string[];
      try {
        names = await this.dir.withDir(d, (at) => fsp.readdir(at));
      } catch (err) {
        this.unreadable.push(d);
        this.problem(d, `cannot read directory: ${folderMessage(err)}`, errorCode(err));
        continue;
      }
      // What the index holds directly inside `d`; an entry the walk reaches
      // is taken out, so what is left was not found.
      const { keys, nested } = this.o.index.childKeys(d);
      const subdirs = new Set<string>();
      let n = 0;
      for (const name of names) {
        if (++n % YIELD_EVERY === 0) await nextTurn();
        const rel = joinRel(d, name);
        const bad = pathProblem(rel);
        if (bad) {
          this.problem(rel, `not synced: ${bad}`);
          continue;
        }
        // Entries are stat'ed synchronously: an lstat is a couple of
        // microseconds, far less than a promise round trip through the
        // thread pool. Each is compared at once, so no stats pile up.
        const st = this.lstatSync(rel);
        if (!st) continue;
        const isDir = st.isDirectory();
        if (this.o.ignore.ignores(rel, isDir)) continue;
        const old = keys.get(rel);
        keys.delete(rel);
        await this.entry(rel, st, old);
        if (isDir) {
          stack.push(rel);
          subdirs.add(rel);
        }
      }
      for (const [p, k] of keys) if (!k.deleted) this.gone.add(p);
      // Below a child that is not walked as a directory, everything is gone
      // (the child itself was handled above).
      for (const c of nested) {
        if (subdirs.has(c)) continue;
        for (const p of this.o.index.livePathsWithin(c)) if (p !== c) this.gone.add(p);
      }
    }
  }

  /** Compares one on-disk entry with the index; queues a hash or an observation. */
  private async entry(rel: string, st: BigIntStats, old: StatKey | undefined): Promise<void> {
    this.scanned++;
    const type = typeOf(st);
    if (type === undefined) return; // sockets, FIFOs, devices: not synced
    if (type === 'file') {
      const unchanged =
        old !== undefined &&
        !old.deleted &&
        old.type === 'file' &&
        old.size === Number(st.size) &&
        old.mtimeNs === st.mtimeNs &&
        old.inode === Number(st.ino) &&
        old.mode === (Number(st.mode) & 0o7777);
      if (!unchanged) this.toHash.push({ path: rel, st });
      else this.problems.delete(rel);
      if (this.toHash.length >= (this.o.concurrency ?? 16) * 4) await this.drain();
      return;
    }
    let target = '';
    if (type === 'symlink') {
      try {
        // Synchronous: the path names a descriptor held only for this run.
        target = readlinkSync(this.at(rel));
      } catch (err) {
        return this.problem(rel, `cannot read symlink: ${folderMessage(err)}`, errorCode(err));
      }
    }
    this.add(rel, observe(st, type, [], target));
  }

  /** Hashes every queued file, a few at a time. */
  async drain(): Promise<void> {
    const queue = this.toHash.splice(0);
    const workers = Array.from(
      { length: Math.min(this.o.concurrency ?? 16, queue.length) },
      async () => {
        for (let job = queue.shift(); job; job = queue.shift()) await this.hash(job.path, job.st);
      },
    );
    await Promise.all(workers);
    if (this.pending.length >= (this.o.batchSize ?? 2000)) this.flush();
  }

  private async hash(rel: string, first: BigIntStats): Promise<void> {
    const { dir, name } = splitPath(rel);
    let st = first;
    for (let attempt = 1; attempt <= HASH_ATTEMPTS; attempt++) {
      let res;
      try {
        // Read through a descriptor of its directory held for the whole
        // hash: never through a parent swapped for a symlink meanwhile.
        const size = Number(st.size);
        res = await this.dir.withDir(dir, (at) => this.o.hasher.hashFile(`${at}/${name}`, size));
      } catch (err) {
        if (errorCode(err) === 'ENOENT') return void this.gone.add(rel);
        return this.problem(rel, `cannot read file: ${folderMessage(err)}`, errorCode(err));
      }
      // Synchronous, as in the walk: the file was just opened, its inode is cached.
      const after = this.lstatSync(rel);
      if (after === null) return void this.gone.add(rel);
      if (after === undefined) return; // recorded as a problem
      // Only a file that stayed still while it was read is indexed: anything
      // else would record content that never existed on disk at once.
      if (sameStat(st, after) && res.size === Number(after.size)) {
        this.hashedBytes += res.size;
        this.add(rel, observe(after, 'file', res.chunks, ''));
        return;
      }
      st = after;
    }
    this.problem(
      rel,
      'file changed while it was being hashed; it will be indexed once it is still',
    );
  }

  private add(path: string, seen: Observed): void {
    this.problems.delete(path);
    this.pending.push({ path, seen });
  }

  private flush(): void {
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    const changed = this.o.index.commit(batch);
    this.changedCount += changed.length;
    if (this.o.onCommit) {
      if (changed.length > 0) this.o.onCommit(changed);
    } else {
      this.changed.push(...changed);
    }
  }

  /** Commits what is pending, then the tombstones. */
  async flushGone(): Promise<void> {
    this.flush();
    const gone: LocalChange[] = [];
    for (const p of this.gone) {
      if (this.unreadable.some((d) => isWithin(p, d) && p !== d)) continue;
      if (this.ignoredEitherWay(p)) continue;
      gone.push({ path: p, seen: null });
    }
    this.pending = gone;
    this.flush();
  }

  result(): ScanResult {
    return {
      changed: this.changed,
      changedCount: this.changedCount,
      scanned: this.scanned,
      hashedBytes: this.hashedBytes,
      problems: this.found,
    };
  }

  /**
   * Where the kernel finds `rel`: beneath the root, never through a link
   * (see confined/root.ts); a parent that is no longer a directory throws
   * `PATH_INVALID`, read as gone (the entry in its place is scanned itself).
   */
  private at(rel: string): string {
    return this.dir.at(rel);
  }

  /** lstat without following links; null when gone; a problem otherwise. */
  private async lstat(rel: string): Promise<BigIntStats | null | undefined> {
    try {
      return lstatSync(this.at(rel), { bigint: true });
    } catch (err) {
      const code = errorCode(err);
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'PATH_INVALID') return null;
      this.problem(rel, `cannot stat: ${folderMessage(err)}`, code);
      return undefined;
    }
  }

  /** The synchronous twin of {@link lstat}, for walking and for the re-check after hashing. */
  private lstatSync(rel: string): BigIntStats | null | undefined {
    try {
      return lstatSync(this.at(rel), { bigint: true });
    } catch (err) {
      const code = errorCode(err);
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'PATH_INVALID') return null;
      this.problem(rel, `cannot stat: ${folderMessage(err)}`, code);
      return undefined;
    }
  }

  private problem(path: string, message: string, code?: string): void {
    const p: Problem = code === undefined ? { path, message } : { path, message, code };
    this.found.push(p);
    this.problems.set(path, p);
  }
}

function typeOf(st: BigIntStats): EntryType | undefined {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'directory';
  if (st.isSymbolicLink()) return 'symlink';
  return undefined;
}

function observe(st: BigIntStats, type: EntryType, chunks: Chunk[], target: string): Observed {
  return {
    type,
    size: type === 'symlink' ? Buffer.byteLength(target) : Number(st.size),
    mtimeNs: st.mtimeNs,
    mode: Number(st.mode) & 0o7777,
    inode: Number(st.ino),
    chunks,
    target,
  };
}

function sameStat(a: BigIntStats, b: BigIntStats): boolean {
  return a.size === b.size && a.mtimeNs === b.mtimeNs && a.ino === b.ino && a.ctimeNs === b.ctimeNs;
}

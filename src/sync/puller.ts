/**
 * The puller: makes this device's folder hold the global winner of every
 * path. Plans come from the pure core ({@link planPath}); this module does
 * the I/O, in the order that keeps data safe:
 *
 * 1. directories, links, permission and version-only changes;
 * 2. files: each assembled in a temp file in its own directory from chunks
 *    found locally (the temp file itself, the old version, any other file)
 *    or fetched from peers, verified by hash, fsynced;
 * 3. deletes, last, so a rename's new path finds its data in the old one.
 *
 * Every change to the folder is finished on the device's serial queue, where
 * the target is re-checked against the index first (changed meanwhile:
 * rescan and replan) and only then renamed into place and recorded.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { LockstepError, errorCode, errorMessage } from '../base/errors.js';
import type { SerialQueue } from '../base/serial-queue.js';
import { lockVerdict } from '../core/lock-rules.js';
import { conflictName, planPath, type Action, type Candidate } from '../core/plan.js';
import { sameContent, type FileRecord } from '../core/record.js';
import { dominates, merge, update, type Vector } from '../core/vector.js';
import type { Logger } from '../base/log.js';
import { WriteBack } from './writeback.js';
import {
  ensureParents,
  inFolder,
  landedInside,
  openTemp,
  tempPath,
  writeAll,
  type FileId,
} from './temp-files.js';
import { hashHex } from '../scan/chunker.js';
import type { ChunkLocation, IndexStore } from '../store/index-store.js';
import type { ChunkFetcher } from './fetcher.js';
import type { FdCache } from './fd-cache.js';
import { GroupSync, type SyncFs } from './group-sync.js';

/** What the puller needs from the device. */
export interface PullerHost {
  readonly root: string;
  readonly store: IndexStore;
  readonly log: Logger;
  /** The device's serial queue: scans and folder changes never interleave. */
  readonly queue: SerialQueue;
  readonly fetcher: ChunkFetcher;
  /** Open descriptors for reading local chunks. */
  readonly fds: FdCache;
  /** Whether local ignore rules exclude `path`. */
  ignores(path: string, isDir: boolean): boolean;
  /** Whether the folder is in its safety stop. */
  stopped(): boolean;
  /** The short ID of the device whose user holds a lock on `path`, if it is locked. */
  lockHolder?(path: string): string | undefined;
  /** Writes out the file system of a folder at once (default: `sync -f`); only ever a head start for the fsyncs. */
  readonly syncfs?: SyncFs;
  /** Scans `paths` now; called only from inside a queue task. */
  scanNow(paths: readonly string[]): Promise<void>;
  /** Called after a change from a peer was applied and recorded. */
  applied(
    record: FileRecord,
    kind: Exclude<Action['kind'], 'none'>,
    conflictCopy: string | undefined,
    ms: number,
  ): void;
}

/** A file built in its temp file: fsynced and closed, or (small) still open for a group fsync. */
interface Assembled {
  readonly tmp: string;
  /** The temp file's identity when it was made (checked again where it lands). */
  readonly id: FileId;
  readonly fd?: number;
}

type Step = Exclude<Action, { kind: 'none' }> & {
  readonly path: string;
  /** The local record the plan was made from. */
  readonly local: FileRecord | undefined;
  /** When it was planned (performance.now()), for the time a sync took. */
  readonly planned: number;
  /** For a copy kept of a refused version: the locked path it was refused for. */
  readonly refusedFor?: string;
};

/** Files this small are fsynced in groups ({@link GroupSync}); larger ones on their own. */
const GROUP_SYNC_MAX_BYTES = 1024 * 1024;
/** Assembled files waiting for their fsync, at most (each holds a descriptor). */
const SYNCING_MAX = 256;
/** Paths planned at once (a bigger cycle is planned window by window). */
const PLAN_WINDOW = 4096;
/** Files whose chunks are looked up locally with one query. */
const KNOWN_WINDOW = 256;
/** ...and at most about this many chunks (a file of more is looked up alone). */
const KNOWN_MAX_CHUNKS = 32_768;
/** Files assembled at once. */
const FILES_IN_FLIGHT = 256;
/** Bytes of chunks requested but not yet written, over all files. */
const BYTES_IN_FLIGHT = 32 * 1024 * 1024;
const RETRY_MIN_MS = 1000;
/** A directory that must make way for a file is waited for this often, this long, before it is a problem. */
const DEFER_TRIES = 40;
const DEFER_MS = 50;
const RETRY_MAX_MS = 60_000;

/** Pulls what peers have that this device does not. */
export class Puller {
  private readonly pending = new Set<string>();
  private running = false;
  private closed = false;
  private readonly retries = new Map<string, { attempts: number; timer: NodeJS.Timeout }>();
  private readonly budget = new Budget(BYTES_IN_FLIGHT);
  /** Paths found changed on disk at their last finish: a second time is a failure, not a loop. */
  private readonly rescanned = new Set<string>();
  /** Type changes waiting for a directory to empty: tried again after the cycle's deletes. */
  private readonly deferred = new Map<string, number>();
  private later: string[] = [];
  /** Paths whose leftover temp file is removed if their plan needs none. */
  private readonly sweep = new Set<string>();
  /** Paths whose last attempt failed, with why. */
  readonly problems = new Map<string, string>();
  /** Files being assembled now: path → bytes done / total. */
  readonly progress = new Map<string, { done: number; total: number }>();

  private readonly groupSync: GroupSync;

  constructor(private readonly host: PullerHost) {
    this.groupSync = new GroupSync(host.root, host.syncfs);
  }

  /** Plans (and then applies) `paths` soon. */
  schedule(paths: Iterable<string>): void {
    if (this.closed) return;
    for (const p of paths) this.pending.add(p);
    void this.run();
  }

  /**
   * Plans every path where a peer's version differs from this device's, and
   * removes their temp files that no longer serve a pull (left by a crash or
   * an abandoned pull).
   */
  scheduleAll(): void {
    const paths = this.host.store.pathsToPlan();
    for (const p of paths) this.sweep.add(p);
    this.schedule(paths);
  }

  /** Tries every path that failed again now (a peer became reachable). */
  retryNow(): void {
    const paths = [...this.retries.keys()];
    for (const p of paths) {
      clearTimeout(this.retries.get(p)?.timer);
      this.sweep.add(p);
    }
    this.schedule(paths);
  }

  /** Paths waiting to be planned or being worked on, and failed ones waiting to retry. */
  pendingCount(): number {
    return this.pending.size + this.progress.size + this.retries.size;
  }

  close(): void {
    this.closed = true;
    this.groupSync.close();
    for (const r of this.retries.values()) clearTimeout(r.timer);
    this.retries.clear();
  }

  private async run(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.pending.size > 0 && !this.closed) {
        if (this.host.stopped()) {
          this.pending.clear();
          break;
        }
        const paths = [...this.pending];
        this.pending.clear();
        try {
          await this.cycle(paths);
        } catch (err) {
          // Whatever failed is tried again later, path by path.
          for (const p of paths) this.failed(p, err);
        }
      }
    } catch (err) {
      this.host.log.error({ err: errorMessage(err) }, 'sync cycle failed');
    } finally {
      this.running = false;
    }
  }

  private plan(paths: readonly string[]): Step[] {
    const steps: Step[] = [];
    for (const path of paths) {
      const { local, remotes } = this.host.store.candidates(path);
      const a = planPath(local, remotes);
      if (this.sweep.delete(path) && a.kind !== 'pull') {
        // A temp file left by an interrupted pull that is no longer wanted
        // (no pull runs between cycles, so none is in use): only a pull uses
        // one (a version-only or permission change after a replan does not).
        try {
          // Never through a parent that is a symlink (it could lead outside).
          if (ensureParents(this.host.root, path, false)) {
            fs.rmSync(tempPath(join(this.host.root, path)), { force: true });
          }
        } catch {
          // A parent that is not a directory holds no temp file.
        }
      }
      if (a.kind === 'none') {
        this.settled(path);
        continue;
      }
      if (this.host.ignores(path, a.record.type === 'directory')) continue;
      const holder = this.host.lockHolder?.(path);
      if (
        holder !== undefined &&
        lockVerdict({
          origin: 'remote',
          lock: holder === this.host.store.localShort ? 'here' : 'elsewhere',
          versionOnly: a.kind === 'version',
          madeByHolder: a.record.modifiedBy === holder,
          holderHasSeen: this.holderHas(holder, a.record, local, remotes),
        }) !== 'accept'
      ) {
        this.refuse(path, a, holder, local, steps);
        continue;
      }
      steps.push({ ...a, path, local, planned: performance.now() });
    }
    return steps;
  }

  /**
   * Whether the device where a lock's holder works (`holder`) has seen
   * version `w` of the locked path, as far as this device knows: then `w` is
   * the holder's to keep, whoever made it. A holder's device with no live
   * record of the path has nothing to protect.
   */
  private holderHas(
    holder: string,
    w: FileRecord,
    local: FileRecord | undefined,
    remotes: readonly Candidate[],
  ): boolean {
    if (holder === this.host.store.localShort) {
      return local === undefined || local.deleted || dominates(local.version, w.version);
    }
    const theirs = remotes.find((c) => c.device === holder)?.record;
    return theirs !== undefined && dominates(theirs.version, w.version);
  }

  /**
   * A version of a locked path that the holder's device has not seen, made
   * on a device that did not know of the lock (a stale lock table): it is
   * not applied here. The holder's device keeps its content as a conflict
   * copy beside the path (named by the version's mtime and device) and,
   * once the copy is recorded, records its own content again with a version
   * that dominates the refused one; that brings the holder's content back
   * everywhere, and the copy syncs like any file. Other devices wait for
   * that version. Deletes and renames are undone the same way.
   */
  private refuse(
    path: string,
    a: Exclude<Action, { kind: 'none' }>,
    holder: string,
    local: FileRecord | undefined,
    steps: Step[],
  ): void {
    const store = this.host.store;
    const w = a.record;
    if (this.problems.get(path) === undefined) {
      this.host.log.warn(
        { path, by: w.modifiedBy, holder },
        `${path} is locked by a user at ${holder}: the version made on ${w.modifiedBy} is not applied${holder === store.localShort ? ' (kept as a conflict copy)' : ''}`,
      );
    }
    if (holder !== store.localShort || local === undefined || local.deleted) {
      this.settled(path);
      return;
    }
    if (!w.deleted && w.type === 'file') {
      let copy = conflictName(path, w.mtimeNs, w.modifiedBy);
      let there = store.get(copy);
      for (let n = 1; there !== undefined && !there.deleted && !sameContent(there, w); n++) {
        copy = `${conflictName(path, w.mtimeNs, w.modifiedBy)}.${n}`;
        there = store.get(copy);
      }
      if (there === undefined || there.deleted) {
        // The copy first; the path is planned again once the copy is recorded.
        steps.push({
          ...a,
          kind: 'pull',
          // A new file made here: a version of its own (the refused one's
          // belongs to another path, and could supersede a file another
          // device made under the same name).
          record: { ...w, path: copy, modifiedBy: store.localShort },
          version: update(there?.version ?? {}, store.localShort),
          path: copy,
          local: there,
          planned: performance.now(),
          refusedFor: path,
        });
        return;
      }
    }
    steps.push({
      kind: 'version',
      record: { ...local, modifiedBy: store.localShort },
      version: update(merge(local.version, w.version), store.localShort),
      sources: [],
      path,
      local,
      planned: performance.now(),
    });
  }

  /**
   * Plans and applies `paths`. Many paths (a first sync) are planned a
   * window at a time, so that memory holds one window's plans, not the whole
   * difference; their deletes are planned again and applied after every
   * window's pulls, as within one window.
   */
  private async cycle(paths: readonly string[]): Promise<void> {
    await inWindows(
      paths,
      PLAN_WINDOW,
      (p) => this.plan(p),
      (steps) => this.runSteps(steps),
      () => this.closed,
    );
    if (this.later.length > 0) {
      // The deletes of its entries may still be on their way from the peer.
      const again = this.later;
      this.later = [];
      setTimeout(() => this.schedule(again), DEFER_MS).unref();
    }
  }

  /**
   * Applies planned steps in the order that keeps data: directories, links
   * and metadata first, then files, then deletes (children first), so a
   * rename's new path finds its data in the old one.
   */
  private async runSteps(steps: readonly Step[]): Promise<void> {
    if (steps.length === 0) return;
    const quick = steps
      .filter((s) => s.kind !== 'pull' && s.kind !== 'delete')
      .sort((a, b) => cmp(a.path, b.path));
    const pulls = steps.filter((s) => s.kind === 'pull');
    const deletes = steps.filter((s) => s.kind === 'delete').sort((a, b) => cmp(b.path, a.path));
    if (quick.length > 0) await this.finish(quick.map((s) => ({ step: s })));
    if (pulls.length > 0) await this.pullAll(pulls);
    if (deletes.length > 0) await this.finish(deletes.map((s) => ({ step: s })));
  }

  /** Assembles files with bounded concurrency; finishes them in batches. */
  private async pullAll(pulls: Step[]): Promise<void> {
    let next = 0;
    let ready: { step: Step; tmp: string; id: FileId }[] = [];
    let finishing: Promise<void> = Promise.resolve();
    const flush = () => {
      if (ready.length === 0) return;
      const batch = ready;
      ready = [];
      // One batch failing must not drop the ones after it.
      finishing = finishing.then(() =>
        this.finish(batch).catch((err: unknown) => {
          for (const { step } of batch) this.stepFailed(step, err);
        }),
      );
    };
    const done = (step: Step, tmp: string, id: FileId) => {
      ready.push({ step, tmp, id });
      if (ready.length >= 256) flush();
    };
    // Small files wait for their fsync in groups while the workers go on.
    const slots = new Budget(SYNCING_MAX);
    let syncing = 0;
    let allSynced: (() => void) | undefined;
    // Which chunks of the next files this device has, asked for many files at once.
    let known = new Map<string, ChunkLocation[]>();
    let knownTo = 0;
    const worker = async () => {
      while (next < pulls.length && !this.closed) {
        if (next >= knownTo) {
          // The next files, up to a number of files and of chunks (at least one file).
          const hashes = new Set<string>();
          knownTo = next;
          while (
            knownTo < pulls.length &&
            knownTo - next < KNOWN_WINDOW &&
            (knownTo === next || hashes.size < KNOWN_MAX_CHUNKS)
          ) {
            for (const c of (pulls[knownTo++] as Step).record.chunks) hashes.add(c.hash);
          }
          known = this.host.store.chunkPlaces([...hashes]);
        }
        const step = pulls[next++] as Step;
        try {
          const { tmp, id, fd } = await this.assemble(step, known);
          if (fd === undefined) {
            done(step, tmp, id);
            continue;
          }
          await slots.take(1);
          syncing++;
          void this.groupSync
            .fsync(fd)
            .then(
              () => done(step, tmp, id),
              (err: unknown) => this.stepFailed(step, err),
            )
            .finally(() => {
              fs.closeSync(fd);
              slots.give(1);
              if (--syncing === 0) allSynced?.();
            });
        } catch (err) {
          this.stepFailed(step, err);
        }
      }
    };
    const flusher = setInterval(flush, 5);
    try {
      await Promise.all(Array.from({ length: Math.min(FILES_IN_FLIGHT, pulls.length) }, worker));
      if (syncing > 0) await new Promise<void>((resolve) => (allSynced = resolve));
    } finally {
      clearInterval(flusher);
    }
    flush();
    await finishing;
  }

  /**
   * Builds the winner's content in a temp file beside the target and returns
   * its path. Reuses what a temp file from an earlier attempt already holds.
   */
  private async assemble(
    step: Step,
    known: ReadonlyMap<string, readonly ChunkLocation[]>,
  ): Promise<Assembled> {
    const rec = step.record;
    const abs = inFolder(this.host.root, step.path);
    const tmp = tempPath(abs);
    ensureParents(this.host.root, step.path);
    // Created on the main thread, right after the parents were checked:
    // Node has no openat, so a parent swapped for a symlink between the check
    // and the create would lead the create outside the folder until
    // landedInside removes it. On a pool thread (tried: it spared B's main
    // thread the journal waits of creates during group fsyncs, S2 ~5%) that
    // window grew to milliseconds and another process could see empty temp
    // files outside; here it is microseconds. Writes and reads go to the
    // page cache synchronously too: a thread hop per chunk would cost more
    // than the copy. The fsync waits on a thread.
    const { fd, created } = openTemp(tmp);
    let keep = false;
    let existing: number;
    let id: FileId;
    try {
      const st = fs.fstatSync(fd, { bigint: true });
      // Only a file this pull created is removed if it turns out to be
      // outside the folder; one that was there already is not ours.
      landedInside(this.host.root, step.path, tmp, st, created);
      existing = Number(st.size);
      id = { ino: st.ino, dev: st.dev };
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
    const wb = new WriteBack(fd);
    try {
      // Where each distinct chunk goes (a file may repeat a chunk).
      const want = new Map<string, { length: number; offsets: number[] }>();
      for (const c of rec.chunks) {
        const w = want.get(c.hash);
        if (w) w.offsets.push(c.offset);
        else want.set(c.hash, { length: c.length, offsets: [c.offset] });
      }
      const progress = { done: 0, total: rec.size };
      this.progress.set(step.path, progress);
      const put = (hash: string, data: Buffer) => {
        const w = want.get(hash);
        if (!w) return;
        want.delete(hash);
        for (const off of w.offsets) writeAll(fd, data, off);
        progress.done += data.length * w.offsets.length;
        wb.wrote(data.length * w.offsets.length);
      };
      // 1. What an earlier attempt left in the temp file.
      if (existing > 0) {
        for (const c of rec.chunks) {
          if (!want.has(c.hash) || c.offset + c.length > existing) continue;
          const buf = Buffer.allocUnsafe(c.length);
          if (fs.readSync(fd, buf, 0, c.length, c.offset) !== c.length) continue;
          if (hashHex(buf) === c.hash) {
            const w = want.get(c.hash) as { length: number; offsets: number[] };
            w.offsets = w.offsets.filter((o) => o !== c.offset);
            progress.done += c.length;
            if (w.offsets.length === 0) want.delete(c.hash);
            else put(c.hash, buf);
          }
        }
      }
      // 2. Chunks this device has in other files (the old version, a renamed file).
      for (const [hash, w] of [...want]) {
        const places = known.get(hash);
        if (places === undefined) continue;
        const data = readLocalChunk(
          this.host.root,
          this.host.store,
          this.host.fds,
          hash,
          w.length,
          places,
        );
        if (data) put(hash, data);
      }
      // 3. The rest from peers, pipelined, within the byte budget.
      const fetches: Promise<void>[] = [];
      let error: unknown;
      for (const [hash, w] of [...want]) {
        if (error !== undefined) break;
        await this.budget.take(w.length);
        const hint = [step.path, w.offsets[0] as number, w.length] as const;
        fetches.push(
          this.host.fetcher
            // Written as it arrives, verified, straight from the receive buffer.
            .into(hash, w.length, step.sources, hint, (data) => put(hash, data))
            .catch((err: unknown) => {
              error ??= err;
            })
            .finally(() => this.budget.give(w.length)),
        );
      }
      await Promise.all(fetches);
      if (error !== undefined) throw error;
      // Every chunk is in place, so the file already has rec.size bytes
      // unless a longer temp file was left by an earlier attempt.
      const last = rec.chunks.at(-1);
      const end = last === undefined ? 0 : last.offset + last.length;
      if (existing > rec.size || end !== rec.size) fs.ftruncateSync(fd, rec.size);
      fs.fchmodSync(fd, newMode(step.local, rec));
      const secs = Number(rec.mtimeNs) / 1e9;
      fs.futimesSync(fd, secs, secs);
      await wb.settle();
      if (rec.size <= GROUP_SYNC_MAX_BYTES) {
        // Made durable with others (see pullAll); the descriptor goes along.
        keep = true;
        return { tmp, id, fd };
      }
      await new Promise<void>((resolve, reject) =>
        fs.fsync(fd, (err) => (err ? reject(err) : resolve())),
      );
    } finally {
      await wb.idle();
      if (!keep) fs.closeSync(fd);
      this.progress.delete(step.path);
    }
    return { tmp, id };
  }

  /**
   * Finishes steps on the serial queue: re-check each target against the
   * index, move a conflict loser aside, put the new content in place, record
   * it. Targets that changed meanwhile are rescanned and planned again.
   */
  private finish(items: { step: Step; tmp?: string; id?: FileId }[]): Promise<void> {
    return this.host.queue.run(async () => {
      if (this.host.stopped()) return;
      const replan: string[] = [];
      const rescan: string[] = [];
      const applied: { rec: FileRecord; kind: Step['kind']; copy?: string; ms: number }[] = [];
      this.host.store.db.transaction(() => {
        for (const { step, tmp, id } of items) {
          // A kept copy of a refused version is retried through its locked path.
          const key = step.refusedFor ?? step.path;
          try {
            const outcome = this.apply(step, tmp, id);
            if (tmp !== undefined && typeof outcome === 'string') {
              // Not put in place: its temp file goes if the next plan needs none.
              this.sweep.add(step.path);
              if (key !== step.path) replan.push(step.path);
            }
            if (outcome === 'rescan' && this.rescanned.has(step.path)) {
              this.rescanned.delete(step.path);
              rescan.push(step.path);
              this.failed(
                key,
                new LockstepError(
                  'FOLDER_INVALID',
                  `${step.path} keeps changing on disk while it is synced; will retry`,
                ),
              );
            } else if (outcome === 'rescan') {
              this.rescanned.add(step.path);
              rescan.push(step.path);
              replan.push(key);
            } else if (outcome === 'replan') {
              replan.push(key);
            } else if (outcome === 'later') {
              this.later.push(key);
            } else {
              applied.push({
                rec: outcome.record,
                kind: step.kind,
                copy: outcome.copy,
                ms: performance.now() - step.planned,
              });
              if (outcome.copy !== undefined) rescan.push(outcome.copy);
              this.settled(step.path);
              if (step.refusedFor !== undefined) replan.push(step.refusedFor);
            }
          } catch (err) {
            this.stepFailed(step, err);
          }
        }
      })();
      if (rescan.length > 0) await this.host.scanNow(rescan);
      for (const a of applied) this.host.applied(a.rec, a.kind, a.copy, a.ms);
      if (replan.length > 0) this.schedule(replan);
    });
  }

  /** Applies one step (synchronously, on the queue). */
  private apply(
    step: Step,
    tmp: string | undefined,
    id?: FileId,
  ): 'rescan' | 'replan' | 'later' | { record: FileRecord; copy?: string } {
    const store = this.host.store;
    const local = store.get(step.path);
    if (!sameRecord(local, step.local)) return 'replan';
    const abs = inFolder(this.host.root, step.path);
    // Only a step that creates something makes missing parents; a recorded
    // tombstone must not bring a deleted directory back.
    const creates = step.kind === 'pull' || step.kind === 'mkdir' || step.kind === 'symlink';
    ensureParents(this.host.root, step.path, creates);
    if (!diskMatches(abs, local)) return 'rescan';
    let copy: string | undefined;
    if (step.conflictCopy !== undefined && local !== undefined && !local.deleted) {
      copy = this.moveAside(step.path, step.conflictCopy, local);
    }
    const rec = step.record;
    // A superseded entry of another type (a file where a directory now is)
    // makes way first; a directory only if it is empty.
    const there = copy === undefined ? local : undefined;
    if (there !== undefined && !there.deleted && there.type !== rec.type && !rec.deleted) {
      // Its entries' deletes usually come in the same batch and run last in
      // the cycle: try again after them before calling it a problem.
      const waited = this.deferred.get(step.path) ?? 0;
      if (there.type === 'directory' && waited < DEFER_TRIES && !isEmptyDir(abs)) {
        this.deferred.set(step.path, waited + 1);
        return 'later';
      }
      removeEntry(abs, there);
    }
    // What a pull put in place, as seen right after (its identity is checked).
    let landed: fs.BigIntStats | undefined;
    switch (step.kind) {
      case 'pull': {
        const made = id ?? fs.lstatSync(tmp as string, { bigint: true });
        fs.renameSync(tmp as string, abs);
        landed = landedInside(this.host.root, step.path, abs, made);
        break;
      }
      case 'mkdir':
        fs.mkdirSync(abs, { recursive: true });
        break;
      case 'symlink': {
        const t = tempPath(abs);
        fs.rmSync(t, { force: true });
        fs.symlinkSync(rec.target, t);
        fs.renameSync(t, abs);
        break;
      }
      case 'chmod':
        fs.chmodSync(abs, newMode(local, rec));
        break;
      case 'delete':
        if (local !== undefined && !local.deleted) removeEntry(abs, local);
        break;
      case 'version':
      case 'tombstone':
        break;
    }
    const st = rec.deleted ? undefined : (landed ?? fs.lstatSync(abs, { bigint: true }));
    const record = store.commitSynced(
      rec,
      step.version,
      st ? { inode: Number(st.ino), mtimeNs: st.mtimeNs, mode: Number(st.mode) & 0o7777 } : null,
    );
    return copy === undefined ? { record } : { record, copy };
  }

  /**
   * Moves the losing local entry to its conflict name; returns the name used.
   * If a copy of the same content is already there (another device made it
   * and it synced here), the loser is already kept and is removed instead.
   */
  private moveAside(path: string, name: string, local: FileRecord): string {
    const root = this.host.root;
    let target = name;
    for (let n = 1; fs.existsSync(join(root, target)); n++) {
      const there = this.host.store.get(target);
      if (
        there &&
        !there.deleted &&
        sameContent(there, { ...local, mode: there.mode, path: target }) &&
        diskMatches(join(root, target), there)
      ) {
        removeEntry(join(root, path), local);
        return target;
      }
      target = `${name}.${n}`;
    }
    fs.renameSync(join(root, path), join(root, target));
    // A file read-only here because of a lock elsewhere: the copy is not locked.
    if (local.type === 'file' && this.host.lockHolder?.(path) !== undefined)
      writable(join(root, target));
    return target;
  }

  private settled(path: string): void {
    this.problems.delete(path);
    this.rescanned.delete(path);
    this.deferred.delete(path);
    const r = this.retries.get(path);
    if (r) {
      clearTimeout(r.timer);
      this.retries.delete(path);
    }
  }

  /**
   * A step failed: it is retried through its path (a kept copy of a refused
   * version through the locked path it was refused for, whose next plan may
   * name another copy; this copy's temp file then goes when its own path is
   * planned).
   */
  private stepFailed(step: Step, err: unknown): void {
    if (step.refusedFor === undefined) {
      this.failed(step.path, err);
      return;
    }
    this.failed(step.refusedFor, err);
    this.sweep.add(step.path);
    this.schedule([step.path]);
  }

  private failed(path: string, err: unknown): void {
    // A temp file of the failed attempt goes if the next plan needs none.
    this.sweep.add(path);
    const message = errorMessage(err);
    const prev = this.retries.get(path);
    const attempts = (prev?.attempts ?? 0) + 1;
    if (prev) clearTimeout(prev.timer);
    const delay = Math.min(RETRY_MIN_MS * 2 ** (attempts - 1), RETRY_MAX_MS);
    if (this.problems.get(path) !== message) {
      this.host.log.warn(
        { path, err: message, code: errorCode(err), retryMs: delay },
        `cannot sync ${path}: ${message}`,
      );
    }
    this.problems.set(path, message);
    const timer = setTimeout(() => this.schedule([path]), delay);
    timer.unref();
    this.retries.set(path, { attempts, timer });
  }
}

/**
 * Plans and runs `paths` a window of `size` at a time. With more than one
 * window, deletes are held back: their paths are planned again, children
 * first, and run after every window (a rename's new path may be in a later
 * window than its old path's delete, and must find the data still there).
 */
export async function inWindows<S extends { readonly kind: string; readonly path: string }>(
  paths: readonly string[],
  size: number,
  plan: (paths: readonly string[]) => S[],
  run: (steps: S[]) => Promise<void>,
  stop: () => boolean = () => false,
): Promise<void> {
  if (paths.length <= size) {
    await run(plan(paths));
    return;
  }
  const deletes: string[] = [];
  for (let i = 0; i < paths.length && !stop(); i += size) {
    const steps = plan(paths.slice(i, i + size));
    for (const s of steps) if (s.kind === 'delete') deletes.push(s.path);
    await run(steps.filter((s) => s.kind !== 'delete'));
  }
  deletes.sort((a, b) => cmp(b, a));
  for (let i = 0; i < deletes.length && !stop(); i += size) {
    await run(plan(deletes.slice(i, i + size)));
  }
}

/**
 * Reads chunk `hash` from wherever this device has it on disk, verified
 * against the hash; undefined if it is nowhere (or has changed since).
 * `places`, where the index had it a moment ago (looked up for many chunks
 * at once), saves the lookup; being verified, a stale place costs nothing
 * but a read.
 */
export function readLocalChunk(
  root: string,
  store: IndexStore,
  fds: FdCache,
  hash: string,
  length?: number,
  places?: readonly ChunkLocation[],
): Buffer | undefined {
  const found = readFromPlaces(root, fds, hash, length, places ?? store.findChunk(hash, 4));
  if (found !== undefined || places === undefined) return found;
  // Places looked up a moment ago may have moved since (a file finished
  // meanwhile): ask the index once more, for places not tried yet, before
  // asking a peer.
  const tried = (l: ChunkLocation) =>
    places.some((p) => p.path === l.path && p.offset === l.offset && p.length === l.length);
  const fresh = store.findChunk(hash, 4).filter((l) => !tried(l));
  return readFromPlaces(root, fds, hash, length, fresh);
}

function readFromPlaces(
  root: string,
  fds: FdCache,
  hash: string,
  length: number | undefined,
  places: readonly ChunkLocation[],
): Buffer | undefined {
  for (const loc of places) {
    if (length !== undefined && loc.length !== length) continue;
    const file = inFolder(root, loc.path);
    for (let attempt = 0; attempt < 2; attempt++) {
      const buf = fds.read(file, loc.offset, loc.length);
      if (buf !== undefined && hashHex(buf) === hash) return buf;
      // The cached descriptor may be of a file since replaced: reopen once.
      fds.forget(file);
    }
  }
  return undefined;
}

/** Permission bits for the new content: local bits kept, the executable bits from the winner. */
function newMode(local: FileRecord | undefined, rec: FileRecord): number {
  const base = local !== undefined && !local.deleted && local.type === 'file' ? local.mode : 0o644;
  return ((base & ~0o111) | (rec.mode & 0o111)) & 0o7777;
}

function sameRecord(a: FileRecord | undefined, b: FileRecord | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.sequence === b.sequence && sameVector(a.version, b.version);
}

function sameVector(a: Vector, b: Vector): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Whether the disk still holds what the local record says (nothing, for no record or a tombstone). */
function diskMatches(abs: string, local: FileRecord | undefined): boolean {
  const st = fs.lstatSync(abs, { bigint: true, throwIfNoEntry: false });
  if (local === undefined || local.deleted) return st === undefined;
  if (st === undefined) return false;
  switch (local.type) {
    case 'file':
      return (
        st.isFile() &&
        Number(st.size) === local.size &&
        st.mtimeNs === local.mtimeNs &&
        Number(st.ino) === local.inode
      );
    case 'directory':
      return st.isDirectory();
    case 'symlink':
      return st.isSymbolicLink() && fs.readlinkSync(abs) === local.target;
  }
}

function isEmptyDir(abs: string): boolean {
  try {
    return fs.readdirSync(abs).length === 0;
  } catch {
    return true;
  }
}

/** Removes a file, link or empty directory. */
function removeEntry(abs: string, local: FileRecord): void {
  if (local.type === 'directory') {
    try {
      fs.rmdirSync(abs);
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
  } else {
    fs.unlinkSync(abs);
  }
}

/** Gives the owner back the write bit of a file (a copy of a file lock enforcement made read-only). */
export function writable(abs: string): void {
  const st = fs.lstatSync(abs, { throwIfNoEntry: false });
  if (st?.isFile() === true && (st.mode & 0o200) === 0)
    fs.chmodSync(abs, (st.mode & 0o7777) | 0o200);
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A counting semaphore over bytes. */
class Budget {
  private waiting: { n: number; go: () => void }[] = [];
  constructor(private free: number) {}

  async take(n: number): Promise<void> {
    if (this.waiting.length === 0 && this.free >= n) {
      this.free -= n;
      return;
    }
    await new Promise<void>((go) => this.waiting.push({ n, go }));
  }

  give(n: number): void {
    this.free += n;
    while (this.waiting.length > 0 && this.free >= (this.waiting[0] as { n: number }).n) {
      const w = this.waiting.shift() as { n: number; go: () => void };
      this.free -= w.n;
      w.go();
    }
  }
}

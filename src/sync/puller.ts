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
 * Every change is finished on the device's serial queue by the folder
 * writer ({@link FolderWriter}), which re-checks the target against the
 * index first (changed meanwhile: rescan and replan) and only then puts it
 * in place and records it. Assembling is in assemble.ts.
 */
import { LockstepError, errorCode, errorMessage } from '../base/errors.js';
import { systemClock, type Clock, type Timer } from '../base/clock.js';
import type { Logger } from '../base/log.js';
import { folderMessage } from '../confined/root.js';
import type { SerialQueue } from '../base/serial-queue.js';
import { planPath, type Action } from '../core/plan.js';
import type { FileRecord } from '../core/record.js';
import type { FileId } from '../folder/temp-files.js';
import type { FolderWriter } from '../folder/writer.js';
import type { IndexStore } from '../store/index-store.js';
import type { AssembleContext } from './assemble.js';
import { Budget } from './budget.js';
import type { FdCache } from './fd-cache.js';
import type { ChunkFetcher } from './fetcher.js';
import { GroupSync, type SyncFs } from './group-sync.js';
import { keepRefused, verdictOf, type PathLock, type Planned, type Step } from './locked.js';
import { pullAll } from './pull-all.js';
import { cmp, inWindows } from './windows.js';

/** What the puller needs from the device. */
export interface PullerHost {
  /** Time for the retry backoff. @default systemClock */
  readonly clock?: Clock;
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
  /** The lock on `path` (where its holder works, and its token), if it is locked. */
  lockOf?(path: string): PathLock | undefined;
  /** Writes out the file system of a folder at once (default: `sync -f`); only ever a head start for the fsyncs. */
  readonly syncfs?: SyncFs;
  /** Scans `paths` now; called only from inside a queue task. */
  scanNow(paths: readonly string[]): Promise<void>;
  /** Puts every change in the folder and records it (and tells the watcher it was ours). */
  readonly writer: FolderWriter;
  /** Called after a change from a peer was applied and recorded. */
  applied(
    record: FileRecord,
    kind: Exclude<Action['kind'], 'none'>,
    conflictCopy: string | undefined,
    ms: number,
  ): void;
}

/** Paths planned at once (a bigger cycle is planned window by window). */
const PLAN_WINDOW = 4096;
/** Bytes of chunks requested but not yet written, over all files. */
const BYTES_IN_FLIGHT = 32 * 1024 * 1024;
const RETRY_MIN_MS = 1000;
/** A directory that must make way for a file is waited for this often, this long, before it is a problem. */
const DEFER_TRIES = 40;
const DEFER_MS = 50;
const RETRY_MAX_MS = 60_000;

/** How long a path that failed `attempts` times in a row waits before it is tried again: 1 s, doubling, at most 60 s. */
export function retryDelay(attempts: number): number {
  return Math.min(RETRY_MIN_MS * 2 ** (Math.max(1, attempts) - 1), RETRY_MAX_MS);
}

/** Pulls what peers have that this device does not. */
export class Puller {
  private readonly pending = new Set<string>();
  private running = false;
  private closed = false;
  private readonly retries = new Map<string, { attempts: number; timer: Timer }>();
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
  private readonly assembly: AssembleContext;

  constructor(private readonly host: PullerHost) {
    this.groupSync = new GroupSync(host.root, host.syncfs);
    this.assembly = {
      root: host.root,
      fs: host.writer.fs,
      store: host.store,
      fds: host.fds,
      fetcher: host.fetcher,
      budget: this.budget,
      progress: this.progress,
    };
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
      this.retries.get(p)?.timer.cancel();
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
    for (const r of this.retries.values()) r.timer.cancel();
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
        this.host.writer.dropPullTemp(path);
      }
      if (a.kind === 'none') {
        this.settled(path);
        continue;
      }
      if (this.host.ignores(path, a.record.type === 'directory')) continue;
      const lock = this.host.lockOf?.(path);
      if (
        lock !== undefined &&
        verdictOf(this.host.store.localShort, lock, a, local, remotes) !== 'accept'
      ) {
        this.refuse(path, a, lock, local, steps);
        continue;
      }
      steps.push({ ...a, path, local, planned: performance.now() });
    }
    return steps;
  }

  /**
   * A version of a locked path that the lock rules refuse (see
   * {@link verdictOf}): made on a device that did not know of the lock (a
   * stale lock table) or written under an older grant (a holder whose lock
   * expired or was forced while it was paused or cut off). It is not
   * applied here. The holder's device keeps its content as a conflict copy
   * and records its own content again over it ({@link keepRefused}); the
   * copy syncs like any file. Other devices wait for that version. Deletes
   * and renames are undone the same way.
   */
  private refuse(
    path: string,
    a: Planned,
    lock: PathLock,
    local: FileRecord | undefined,
    steps: Step[],
  ): void {
    const store = this.host.store;
    const w = a.record;
    const here = lock.holder === store.localShort;
    if (this.problems.get(path) === undefined) {
      const token = w.token ?? 0;
      const stale =
        token > 0 ? ` under an earlier grant (token ${token}; the lock's is ${lock.token})` : '';
      this.host.log.warn(
        { path, by: w.modifiedBy, holder: lock.holder, token, lockToken: lock.token },
        `${path} is locked by a user at ${lock.holder}: the version made on ${w.modifiedBy}${stale} is not applied${here ? ' (kept as a conflict copy)' : ''}`,
      );
    }
    if (!here || local === undefined || local.deleted) {
      this.settled(path);
      return;
    }
    steps.push(keepRefused(store, path, a, lock, local));
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
  private pullAll(pulls: Step[]): Promise<void> {
    return pullAll(
      {
        assembly: this.assembly,
        groupSync: this.groupSync,
        finish: (batch) => this.finish(batch),
        stepFailed: (step, err) => this.stepFailed(step, err),
        closed: () => this.closed,
      },
      pulls,
    );
  }

  /**
   * Finishes steps on the serial queue through the folder writer (re-check
   * each target against the index, move a conflict loser aside, put the new
   * content in place, record it), in one index transaction. Targets that
   * changed meanwhile are rescanned and planned again.
   */
  private finish(items: { step: Step; tmp?: string; id?: FileId }[]): Promise<void> {
    return this.host.queue.run(async () => {
      if (this.host.stopped()) return;
      const replan: string[] = [];
      const rescan: string[] = [];
      const applied: { rec: FileRecord; kind: Step['kind']; copy?: string; ms: number }[] = [];
      this.host.writer.batch(() => {
        for (const { step, tmp, id } of items) {
          // A kept copy of a refused version is retried through its locked path.
          const key = step.refusedFor ?? step.path;
          try {
            const waited = this.deferred.get(step.path) ?? 0;
            const outcome = this.host.writer.apply({
              ...step,
              tmp,
              id,
              mayWait: waited < DEFER_TRIES,
            });
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
              this.deferred.set(step.path, waited + 1);
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
      });
      if (rescan.length > 0) await this.host.scanNow(rescan);
      for (const a of applied) this.host.applied(a.rec, a.kind, a.copy, a.ms);
      if (replan.length > 0) this.schedule(replan);
    });
  }

  private settled(path: string): void {
    this.problems.delete(path);
    this.rescanned.delete(path);
    this.deferred.delete(path);
    const r = this.retries.get(path);
    if (r) {
      r.timer.cancel();
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
    const message = folderMessage(err);
    const prev = this.retries.get(path);
    const attempts = (prev?.attempts ?? 0) + 1;
    prev?.timer.cancel();
    const delay = retryDelay(attempts);
    if (this.problems.get(path) !== message) {
      this.host.log.warn(
        { path, err: message, code: errorCode(err), retryMs: delay },
        `cannot sync ${path}: ${message}`,
      );
    }
    this.problems.set(path, message);
    const timer = (this.host.clock ?? systemClock).after(delay, () => this.schedule([path]));
    this.retries.set(path, { attempts, timer });
  }
}

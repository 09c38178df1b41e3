/**
 * A device: one folder, its index, the scanner and the watcher that keep the
 * index true to the disk, and the safety stop. This is the composition root
 * for the local half of `lockstep serve`; peers and the API attach to it in
 * later layers.
 */
import { EventEmitter } from 'node:events';
import type { BigIntStats } from 'node:fs';
import { LockstepError, errorMessage } from '../base/errors.js';
import { SerialQueue } from '../base/serial-queue.js';
import { IGNORE_FILE } from '../core/path.js';
import type { FileRecord } from '../core/record.js';
import { IndexStore } from '../store/index-store.js';
import { HashPool } from '../scan/hash-pool.js';
import { IgnoreRules } from '../scan/ignore-rules.js';
import {
  Scanner,
  checkFolder,
  type ScanResult,
  type ScanTarget,
  type ScannerOptions,
} from '../scan/scanner.js';
import { TreeWatcher } from '../watch/tree-watcher.js';
import type { Logger } from '../base/log.js';

/** Options of a {@link Device}. */
export interface DeviceOptions {
  /** Full device ID. */
  readonly deviceId: string;
  /** Human name ("A"). */
  readonly name: string;
  /** The synced folder, absolute. */
  readonly folder: string;
  /** The index database file. */
  readonly dbFile: string;
  readonly log: Logger;
  /** Full rescan period. @default 3600 s */
  readonly rescanIntervalMs?: number;
  /** How often a stopped folder is checked for its return. @default 5 s */
  readonly stoppedCheckMs?: number;
  /** Hashing workers. @default HashPool's default */
  readonly hashWorkers?: number;
}

/** Events a device emits. */
export interface DeviceEvents {
  /** Local records that got a new version, after they are committed. */
  indexed: [records: FileRecord[], source: 'scan' | 'watch'];
  /** The folder stopped (reason) or resumed (undefined). */
  folderState: [reason: string | undefined];
}

/** Notes of files pulled that the watcher has not reported yet, at most. */
const ECHOES_MAX = 10_000;

/** What a pull wrote at a path, as recorded (see {@link Device.wrote}). */
export interface Written {
  readonly inode: number;
  readonly size: number;
  readonly mtimeNs: bigint;
  readonly mode: number;
}

/**
 * Whether `st` (an lstat of the path now) is exactly what was `written`
 * there, by what the scanner compares: type, inode, size, mtime, mode. Any
 * difference means someone else changed the path since, and it is scanned.
 */
export function isWhatWasWritten(written: Written, st: BigIntStats | undefined): boolean {
  return (
    st !== undefined &&
    st.isFile() &&
    st.ino === BigInt(written.inode) &&
    st.size === BigInt(written.size) &&
    st.mtimeNs === written.mtimeNs &&
    (Number(st.mode) & 0o7777) === written.mode
  );
}

/** One running device. */
export class Device extends EventEmitter<DeviceEvents> {
  readonly store: IndexStore;
  private readonly pool: HashPool;
  private readonly scanner: Scanner;
  /** What started the scan that is running, for the `indexed` event. */
  private source: 'scan' | 'watch' = 'scan';
  /** The scanner's options; `ignore` is replaced when `.lockstepignore` changes. */
  private readonly scanOpts: ScannerOptions;
  /** The folder's single line of work: scans and changes from peers never interleave. */
  readonly queue = new SerialQueue();
  private readonly log: Logger;
  private watcher: TreeWatcher | undefined;
  private rescanTimer: NodeJS.Timeout | undefined;
  private stoppedTimer: NodeJS.Timeout | undefined;
  private pending: ScanTarget[] = [];
  private pendingScheduled = false;
  /** Files a pull just wrote: path → what it wrote (see {@link wrote}). */
  private readonly echoes = new Map<string, Written>();
  private closed = false;
  /** Why the folder is stopped, or undefined while it syncs. */
  stoppedReason: string | undefined;
  /** Time of the last completed full scan. */
  lastFullScan: Date | undefined;

  constructor(private readonly opts: DeviceOptions) {
    super();
    this.log = opts.log;
    this.store = new IndexStore(opts.dbFile, opts.deviceId);
    this.pool = new HashPool(opts.hashWorkers === undefined ? {} : { workers: opts.hashWorkers });
    this.scanOpts = {
      root: opts.folder,
      index: this.store,
      hasher: this.pool,
      ignore: IgnoreRules.fromText(''),
      // Changes are announced batch by batch as they are committed.
      onCommit: (records) => {
        if (this.source === 'watch') {
          for (const r of records)
            this.log.debug({ path: r.path, deleted: r.deleted, seq: r.sequence }, 'indexed');
        }
        this.emit('indexed', records, this.source);
      },
    };
    this.scanner = new Scanner(this.scanOpts);
  }

  /** Problems standing for individual paths. */
  get problems(): ReadonlyMap<string, { path: string; message: string; code?: string }> {
    return this.scanner.problems;
  }

  /**
   * Starts watching and scanning. The watcher starts before the first scan so
   * that nothing changed during the scan is missed.
   */
  async start(): Promise<void> {
    await this.startFolder();
    const every = this.opts.rescanIntervalMs ?? 3_600_000;
    this.rescanTimer = setInterval(() => {
      if (this.stoppedReason === undefined) void this.fullScan('periodic rescan');
    }, every);
  }

  /** Queues a full scan of the folder and resolves when it is done. */
  fullScan(why: string): Promise<ScanResult | undefined> {
    return this.queue.run(async () => {
      if (this.closed || this.stoppedReason !== undefined) return undefined;
      this.reloadIgnore();
      const started = performance.now();
      const res = await this.runScan(() => this.scanner.scanAll(), 'scan');
      // The workers' memory goes back now, not after their idle time: a
      // first index of big files would otherwise keep ~40 MB for seconds.
      this.pool.release();
      if (res) {
        this.lastFullScan = new Date();
        this.log.info(
          {
            why,
            scanned: res.scanned,
            changed: res.changedCount,
            hashedBytes: res.hashedBytes,
            ms: Math.round(performance.now() - started),
            maxRssKb: process.resourceUsage().maxRSS,
          },
          'full scan done',
        );
      }
      return res;
    });
  }

  /**
   * Scans `paths` at once, without queueing: only for callers that already
   * run on {@link queue} (the puller re-checking a target).
   */
  async scanNow(paths: readonly string[]): Promise<void> {
    if (this.closed || this.stoppedReason !== undefined) return;
    await this.runScan(
      () => this.scanner.scan(paths.map((path) => ({ path, subtree: true }))),
      'watch',
    );
  }

  /** Whether this device's ignore rules exclude `path`. */
  ignores(path: string, isDir: boolean): boolean {
    return this.scanOpts.ignore.ignores(path, isDir);
  }

  /** Resolves once all queued work is done (for tests and benchmarks). */
  idle(): Promise<void> {
    return this.queue.idle();
  }

  /** Stops everything and closes the index. Safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.rescanTimer);
    clearInterval(this.stoppedTimer);
    this.watcher?.close();
    await this.queue.idle();
    await this.pool.close();
    this.store.close();
  }

  private async startFolder(): Promise<void> {
    try {
      await checkFolder(this.opts.folder);
    } catch (err) {
      this.stop(err);
      return;
    }
    if (this.closed) return;
    this.reloadIgnore();
    this.watcher = new TreeWatcher({
      root: this.opts.folder,
      ignored: (p, isDir) => this.scanOpts.ignore.ignores(p, isDir),
      onBatch: (batch) => this.onWatchBatch(batch),
      echo: (path, st) => this.isEcho(path, st),
      onError: (err, rel) =>
        this.log.warn(
          { path: rel, err: errorMessage(err) },
          'watcher problem; the periodic rescan covers it',
        ),
    });
    await this.watcher.start();
    // Closed while the watcher started (a stop during the start): it goes too.
    if (this.closed) {
      this.watcher.close();
      this.watcher = undefined;
      return;
    }
    this.log.info(
      { folder: this.opts.folder, watchedDirs: this.watcher.watchedDirs },
      'watching folder',
    );
    await this.fullScan('start');
  }

  /**
   * Notes a file this device itself just wrote and recorded (a pull), so the
   * watcher's event for it is recognized by its identity and not scanned.
   */
  wrote(rec: FileRecord): void {
    if (rec.deleted || rec.type !== 'file') return;
    // Events that never come (a directory not watched yet) leave entries behind.
    if (this.echoes.size >= ECHOES_MAX) this.echoes.clear();
    this.echoes.set(rec.path, {
      inode: rec.inode,
      size: rec.size,
      mtimeNs: rec.mtimeNs,
      mode: rec.mode,
    });
  }

  /** Whether what is at `path` is exactly the file {@link wrote} noted there (each note is used once). */
  private isEcho(path: string, look: () => BigIntStats | undefined): boolean {
    const e = this.echoes.get(path);
    if (e === undefined) return false;
    this.echoes.delete(path);
    return isWhatWasWritten(e, look());
  }

  private onWatchBatch(batch: readonly ScanTarget[]): void {
    if (this.closed) return;
    if (batch.some((t) => t.path === IGNORE_FILE || t.path === '')) {
      void this.fullScan(
        batch.some((t) => t.path === '') ? 'folder root changed' : `${IGNORE_FILE} changed`,
      );
      return;
    }
    // Batches that arrive while a scan runs are merged and scanned together.
    this.pending.push(...batch);
    if (this.pendingScheduled) return;
    this.pendingScheduled = true;
    void this.queue.run(async () => {
      this.pendingScheduled = false;
      const targets = this.pending;
      this.pending = [];
      if (this.closed || this.stoppedReason !== undefined || targets.length === 0) return;
      await this.runScan(() => this.scanner.scan(targets), 'watch');
    });
  }

  private async runScan(
    scan: () => Promise<ScanResult>,
    source: 'scan' | 'watch',
  ): Promise<ScanResult | undefined> {
    try {
      this.source = source;
      const res = await scan();
      for (const p of res.problems) this.log.warn({ path: p.path, code: p.code }, p.message);
      return res;
    } catch (err) {
      if (err instanceof LockstepError && err.code === 'FOLDER_STOPPED') {
        this.stop(err);
        return undefined;
      }
      this.log.error(
        { err: errorMessage(err) },
        'scan failed; will retry at the next change or rescan',
      );
      return undefined;
    }
  }

  /** Enters the safety stop: touch nothing until the folder and marker are back. */
  private stop(err: unknown): void {
    if (this.stoppedReason !== undefined || this.closed) return;
    this.stoppedReason = errorMessage(err);
    this.watcher?.close();
    this.watcher = undefined;
    this.pending = [];
    this.log.error({ folder: this.opts.folder }, `folder stopped: ${this.stoppedReason}`);
    this.emit('folderState', this.stoppedReason);
    this.stoppedTimer = setInterval(() => {
      void checkFolder(this.opts.folder).then(
        () => {
          if (this.closed || this.stoppedReason === undefined) return;
          clearInterval(this.stoppedTimer);
          this.stoppedReason = undefined;
          this.log.info({ folder: this.opts.folder }, 'folder is back; resuming');
          this.emit('folderState', undefined);
          void this.startFolder();
        },
        () => undefined,
      );
    }, this.opts.stoppedCheckMs ?? 5000);
  }

  private reloadIgnore(): void {
    try {
      this.scanOpts.ignore = IgnoreRules.load(this.opts.folder);
    } catch (err) {
      this.log.warn(
        { err: errorMessage(err) },
        `cannot read ${IGNORE_FILE}; keeping the previous rules`,
      );
    }
  }
}

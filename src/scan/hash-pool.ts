/**
 * Hashing off the main thread: a small pool of worker threads running
 * hash-worker.js, one file per worker at a time, with a queue in front.
 *
 * Small files are hashed on the calling thread (a worker round trip costs
 * more than they do). When the compiled worker file is not next to this
 * module — running the TypeScript sources under vitest — every file is hashed
 * on the calling thread: same results, just not in parallel.
 */
import { existsSync, promises as fsp } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { errorCode } from '../base/errors.js';
import { reapplyHeapFlags } from './heap-flags.js';
import { joinCuts } from '../core/chunk-join.js';
import { DEFAULT_CDC, validateCdcParams, type CdcParams } from '../core/fastcdc.js';
import type { Chunk } from '../core/record.js';
import { READ_FLAGS, READ_SIZE, chunkHandle, chunkSmallFile, type ChunkedFile } from './chunker.js';

/** How far the head piece of a split file runs on past the tail's start, looking for a shared cut. */
const SPLIT_LOOKAHEAD = 4 * 1024 * 1024;

/** A request to a worker: hash the file at `path` (or a piece of it, see `ChunkFileOptions`). */
export interface HashJob {
  readonly id: number;
  readonly path: string;
  readonly from?: number;
  readonly stopAfter?: number;
}

/** A worker's answer to the {@link HashJob} with the same `id`. */
export type HashReply =
  | { readonly id: number; readonly ok: true; readonly size: number; readonly chunks: Chunk[] }
  | {
      readonly id: number;
      readonly ok: false;
      readonly name: string;
      readonly message: string;
      readonly code?: string;
      readonly errno?: number;
      readonly syscall?: string;
    };

/** What the pool passes to each worker as `workerData`. */
export interface HashWorkerData {
  readonly params: CdcParams;
}

/**
 * Flattens a thrown value into an error {@link HashReply}. Structured cloning
 * an Error keeps only its message, and callers switch on `code`.
 */
export function errorReply(id: number, err: unknown): HashReply {
  const e = (typeof err === 'object' && err !== null ? err : {}) as Record<string, unknown>;
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  const code = str(e.code);
  const syscall = str(e.syscall);
  return {
    id,
    ok: false,
    name: str(e.name) ?? 'Error',
    message: str(e.message) ?? String(err),
    ...(code === undefined ? {} : { code }),
    ...(typeof e.errno === 'number' ? { errno: e.errno } : {}),
    ...(syscall === undefined ? {} : { syscall }),
  };
}

/** Rebuilds the Error that an error {@link HashReply} describes. */
function replyError(r: Extract<HashReply, { ok: false }>): Error {
  const err = Object.assign(new Error(r.message), {
    ...(r.code === undefined ? {} : { code: r.code }),
    ...(r.errno === undefined ? {} : { errno: r.errno }),
    ...(r.syscall === undefined ? {} : { syscall: r.syscall }),
  });
  err.name = r.name;
  return err;
}

function codedError(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

/** Options of a {@link HashPool}. */
export interface HashPoolOptions {
  /** Worker threads, started on demand; 0 hashes everything inline. @default min(2, availableParallelism()) */
  workers?: number;
  /** Files smaller than this many bytes are hashed on the calling thread. @default 1 MiB */
  inlineBelow?: number;
  /** Chunking parameters. @default DEFAULT_CDC */
  params?: CdcParams;
  /** The worker script. @default ./hash-worker.js next to this module, when it exists */
  workerUrl?: URL;
  /**
   * A worker left idle this long (ms) exits, giving back its memory; the next
   * large file starts one again. @default 10 s
   */
  idleMs?: number;
  /**
   * A file of at least this many bytes that arrives while no worker is busy
   * is cut by two workers at once, each from one half (see core/chunk-join).
   * @default 32 MiB
   */
  splitAbove?: number;
}

interface Job {
  readonly id: number;
  readonly path: string;
  readonly piece: { readonly from?: number; readonly stopAfter?: number };
  readonly resolve: (r: ChunkedFile) => void;
  readonly reject: (e: Error) => void;
}

interface Slot {
  readonly worker: Worker;
  job: Job | undefined;
  /** Ends the worker once it has been idle for `idleMs`. */
  idle?: NodeJS.Timeout;
}

/** A pool of hashing threads; implements the scanner's `FileHasher`. */
export class HashPool {
  /** Whether large files go to worker threads (false: all inline). */
  readonly usesWorkers: boolean;
  private readonly size: number;
  private readonly inlineBelow: number;
  private readonly params: CdcParams;
  private readonly workerUrl: URL;
  private readonly idleMs: number;
  private readonly splitAbove: number;
  private readonly slots: Slot[] = [];
  /** Workers taken out of the pool and still exiting. */
  private readonly retiring = new Set<Promise<number>>();
  private readonly queue: Job[] = [];
  private nextId = 1;
  private closed = false;

  constructor(opts: HashPoolOptions = {}) {
    const workers = opts.workers ?? Math.min(2, availableParallelism());
    if (!Number.isSafeInteger(workers) || workers < 0)
      throw new RangeError(`HashPool workers must be a non-negative integer, got ${workers}`);
    const inlineBelow = opts.inlineBelow ?? 1024 * 1024;
    if (!(inlineBelow >= 0))
      throw new RangeError(`HashPool inlineBelow must be >= 0, got ${inlineBelow}`);
    this.size = workers;
    this.inlineBelow = inlineBelow;
    this.params = validateCdcParams(opts.params ?? DEFAULT_CDC);
    this.workerUrl = opts.workerUrl ?? new URL('./hash-worker.js', import.meta.url);
    this.idleMs = opts.idleMs ?? 10_000;
    this.splitAbove = opts.splitAbove ?? 32 * 1024 * 1024;
    if (!(this.splitAbove >= 0))
      throw new RangeError(`HashPool splitAbove must be >= 0, got ${this.splitAbove}`);
    if (!(this.idleMs >= 0))
      throw new RangeError(`HashPool idleMs must be >= 0, got ${this.idleMs}`);
    this.usesWorkers = workers > 0 && existsSync(fileURLToPath(this.workerUrl));
  }

  /**
   * Chunks and hashes the file at `absPath` (see `chunkFile`). `sizeHint`,
   * the size the caller saw, saves a stat: it only picks where the file is
   * hashed (inline, in a worker, or split between two); the file is read to
   * its end whatever it says. A file that changes meanwhile gives chunks of
   * no single state of it, as any read would: the caller compares its stat
   * before and after.
   *
   * @throws an Error with the file system's `code` (ENOENT, EACCES, EISDIR, …);
   *   `ERR_HASH_POOL_CLOSED` after {@link close}; `ERR_HASH_WORKER_EXIT` if a worker died.
   */
  async hashFile(absPath: string, sizeHint?: number): Promise<ChunkedFile> {
    if (this.closed) throw codedError('hash pool is closed', 'ERR_HASH_POOL_CLOSED');
    if (sizeHint !== undefined && (!this.usesWorkers || sizeHint < this.inlineBelow)) {
      // The common case, many small files: no stat, no FileHandle.
      const r = await chunkSmallFile(absPath, sizeHint, this.params);
      if (r) return r;
    } else if (sizeHint !== undefined) {
      return this.hashLarge(absPath, sizeHint);
    }
    return this.hashUnsized(absPath);
  }

  private async hashUnsized(absPath: string): Promise<ChunkedFile> {
    // Open and stat here: it decides inline vs worker, and a missing or
    // unreadable file fails fast without a round trip.
    const fh = await fsp.open(absPath, READ_FLAGS);
    let size: number;
    try {
      size = (await fh.stat()).size;
      if (!this.usesWorkers || size < this.inlineBelow)
        return await chunkHandle(fh, size, { params: this.params });
    } finally {
      await fh.close();
    }
    return this.hashLarge(absPath, size);
  }

  /** Files cut by two workers at once so far. */
  splits = 0;
  /** Of those, the ones whose halves never met, so that the rest was cut in one run. */
  splitsRunOn = 0;

  /**
   * Hands a large file to a worker, or, when it is big and no worker is
   * busy, to two: one cuts from the start and runs on a little past the
   * middle, the other cuts from the middle; their cuts are joined where they
   * meet. The result is exactly what one worker gives (see core/chunk-join),
   * in about half the time on an otherwise idle machine.
   */
  private async hashLarge(absPath: string, size: number): Promise<ChunkedFile> {
    const busy = this.queue.length > 0 || this.slots.some((s) => s.job !== undefined);
    if (this.size < 2 || size < this.splitAbove || busy) {
      return this.enqueue(absPath);
    }
    this.splits++;
    // On a read-size boundary: a long run of one byte cuts every `max`
    // bytes, which a boundary this round keeps in phase.
    const mid = Math.max(READ_SIZE, Math.floor(size / 2 / READ_SIZE) * READ_SIZE);
    const [head, tail] = await Promise.all([
      this.enqueue(absPath, { stopAfter: mid + SPLIT_LOOKAHEAD }),
      this.enqueue(absPath, { from: mid }),
    ]);
    let chunks = joinCuts(head.chunks, tail.chunks);
    if (chunks === undefined) {
      // No shared cut within the look-ahead: on in one run from the head's end.
      this.splitsRunOn++;
      const rest = await this.enqueue(absPath, { from: head.size });
      chunks = [...head.chunks, ...rest.chunks];
    }
    const last = chunks.at(-1);
    return { size: last === undefined ? 0 : last.offset + last.length, chunks };
  }

  /** Hands the file (or a piece of it) to a worker thread. */
  private enqueue(absPath: string, piece: Job['piece'] = {}): Promise<ChunkedFile> {
    return new Promise<ChunkedFile>((resolve, reject) => {
      if (this.closed) return reject(codedError('hash pool is closed', 'ERR_HASH_POOL_CLOSED'));
      this.queue.push({ id: this.nextId++, path: absPath, piece, resolve, reject });
      this.pump();
    });
  }

  /** Worker threads running now. */
  get workers(): number {
    return this.slots.length;
  }

  /** Rejects queued and running jobs and terminates the workers. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    for (const s of this.slots) clearTimeout(s.idle);
    for (const job of this.queue.splice(0))
      job.reject(codedError('hash pool is closed', 'ERR_HASH_POOL_CLOSED'));
    await Promise.all([...this.slots.map((s) => s.worker.terminate()), ...this.retiring]);
  }

  /**
   * Ends the workers that are idle now, without waiting for `idleMs`: for
   * when a burst of hashing is known to be over (a full scan is done), so
   * their memory (an isolate and two read slabs each) goes back at once. A
   * busy worker finishes its job and retires as usual; the next large file
   * starts one again.
   */
  release(): void {
    for (const slot of this.slots.slice()) {
      if (slot.job === undefined) this.retire(slot);
    }
  }

  /** Hands queued jobs to idle workers, starting workers up to the pool size. */
  private pump(): void {
    while (this.queue.length > 0) {
      let slot = this.slots.find((s) => s.job === undefined);
      if (!slot && this.slots.length < this.size) slot = this.spawn();
      if (!slot) return;
      const job = this.queue.shift()!;
      clearTimeout(slot.idle);
      slot.job = job;
      slot.worker.ref(); // a busy worker keeps the process alive until it answers
      slot.worker.postMessage({ id: job.id, path: job.path, ...job.piece } satisfies HashJob);
    }
  }

  private spawn(): Slot {
    const worker = new Worker(this.workerUrl, {
      workerData: { params: this.params } satisfies HashWorkerData,
    });
    const slot: Slot = { worker, job: undefined };
    worker.unref(); // an idle worker must not keep the process alive
    // Its heap's setup raised V8's young-generation growth factor again.
    worker.once('online', reapplyHeapFlags);
    worker.once('exit', reapplyHeapFlags);
    worker.on('message', (r: HashReply) => {
      const job = slot.job;
      if (!job || job.id !== r.id) return;
      slot.job = undefined;
      worker.unref();
      if (r.ok) job.resolve({ size: r.size, chunks: r.chunks });
      else job.reject(replyError(r));
      this.pump();
      if (slot.job === undefined) this.retireLater(slot);
    });
    worker.on('error', (err) => {
      // A crash in the worker itself (not a file error): fail its job; 'exit' follows.
      slot.job?.reject(Object.assign(err, { code: errorCode(err) ?? 'ERR_HASH_WORKER' }));
      slot.job = undefined;
    });
    worker.on('exit', (code) => {
      clearTimeout(slot.idle);
      const i = this.slots.indexOf(slot);
      if (i >= 0) this.slots.splice(i, 1);
      slot.job?.reject(
        this.closed
          ? codedError('hash pool is closed', 'ERR_HASH_POOL_CLOSED')
          : codedError(`hash worker exited with code ${code}`, 'ERR_HASH_WORKER_EXIT'),
      );
      slot.job = undefined;
      if (!this.closed) this.pump(); // a replacement takes over the queue
    });
    this.slots.push(slot);
    return slot;
  }

  /** Ends `slot`'s worker if it stays idle for `idleMs`. */
  private retireLater(slot: Slot): void {
    clearTimeout(slot.idle);
    slot.idle = setTimeout(() => {
      if (slot.job === undefined && !this.closed) this.retire(slot);
    }, this.idleMs);
    slot.idle.unref();
  }

  /** Takes an idle worker out of the pool at once, so no job is handed to it; 'exit' follows. */
  private retire(slot: Slot): void {
    clearTimeout(slot.idle);
    const i = this.slots.indexOf(slot);
    if (i >= 0) this.slots.splice(i, 1);
    const exiting = slot.worker.terminate();
    this.retiring.add(exiting);
    void exiting.finally(() => this.retiring.delete(exiting));
  }
}

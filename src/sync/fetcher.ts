/**
 * Fetching chunks from peers: requests from every file being pulled are
 * batched per peer and pipelined (several batches in flight per peer),
 * spread over the peers that have the content, and every chunk is checked
 * against its hash before it is handed out.
 */
import { LockstepError, errorMessage } from '../base/errors.js';
import type { ChunkHint } from '../peer/wire.js';
import { hashHex } from '../scan/chunker.js';

/** A peer that chunks can be fetched from. */
export interface ChunkSource {
  readonly short: string;
  readonly name: string;
  readonly connected: boolean;
  fetchChunks(
    hashes: readonly string[],
    at: readonly (ChunkHint | null)[],
    onChunk: (hash: string, data: Buffer | null) => void,
  ): Promise<void>;
}

/** Tuning of a {@link ChunkFetcher}. */
export interface FetcherOptions {
  /** Bytes per request. @default 2 MiB */
  readonly batchBytes?: number;
  /** Chunks per request. @default 512 */
  readonly batchCount?: number;
  /** Requests in flight per peer. @default 6 */
  readonly inFlight?: number;
  /** Told about each chunk a peer sent that failed verification (bad input to log). */
  readonly onRejected?: (peer: string, hash: string, reason: string) => void;
}

interface Want {
  readonly hash: string;
  readonly length: number;
  /** Where the sources hold it (the same content has the same offsets everywhere). */
  readonly hint: ChunkHint | null;
  /** Peers that may have it and have not failed it yet. */
  readonly sources: string[];
  readonly waiters: Waiter[];
}

/**
 * Who waits for a chunk: with `use`, it is handed the verified bytes
 * synchronously (valid only during the call) and then resolved; without,
 * it is resolved with a copy of its own.
 */
interface Waiter {
  readonly resolve: (b: Buffer) => void;
  readonly reject: (e: unknown) => void;
  readonly use?: (data: Buffer) => void;
}

interface Lane {
  queue: Want[];
  queuedBytes: number;
  inFlight: number;
}

/** Fetches verified chunks from peers. */
export class ChunkFetcher {
  private readonly wants = new Map<string, Want>();
  private readonly lanes = new Map<string, Lane>();
  private flushScheduled = false;
  /** Bytes received from peers (for status and benchmarks). */
  bytesReceived = 0;

  constructor(
    private readonly sourceOf: (short: string) => ChunkSource | undefined,
    private readonly opts: FetcherOptions = {},
  ) {}

  /**
   * Resolves with the bytes of chunk `hash` (of `length` bytes) from one of
   * `sources` (short IDs), verified. Rejects when none of them can give it.
   */
  get(
    hash: string,
    length: number,
    sources: readonly string[],
    hint: ChunkHint | null = null,
  ): Promise<Buffer> {
    return new Promise((resolve, reject) =>
      this.want(hash, length, sources, hint, { resolve, reject }),
    );
  }

  /**
   * Like {@link get}, but hands the verified bytes to `use` synchronously,
   * without a copy: they are valid only during that call. Resolves after
   * `use` returned; rejects with what it threw, or when no source can give
   * the chunk.
   */
  into(
    hash: string,
    length: number,
    sources: readonly string[],
    hint: ChunkHint | null,
    use: (data: Buffer) => void,
  ): Promise<void> {
    return new Promise((resolve, reject) =>
      this.want(hash, length, sources, hint, { resolve: () => resolve(), reject, use }),
    );
  }

  private want(
    hash: string,
    length: number,
    sources: readonly string[],
    hint: ChunkHint | null,
    waiter: Waiter,
  ): void {
    const existing = this.wants.get(hash);
    if (existing) {
      existing.waiters.push(waiter);
      return;
    }
    const want: Want = { hash, length, hint, sources: [...sources], waiters: [waiter] };
    this.wants.set(hash, want);
    this.enqueue(want);
  }

  /** Chooses the connected source with the least queued work. */
  private enqueue(want: Want): void {
    let best: { lane: Lane; short: string } | undefined;
    for (const s of want.sources) {
      if (this.sourceOf(s)?.connected !== true) continue;
      const lane = this.lane(s);
      if (best === undefined || lane.queuedBytes < best.lane.queuedBytes) best = { lane, short: s };
    }
    if (best === undefined) {
      this.settle(
        want,
        new LockstepError(
          'PEER_UNREACHABLE',
          `No connected peer has chunk ${want.hash.slice(0, 12)}… (asked: ${want.sources.join(', ') || 'none'})`,
        ),
      );
      return;
    }
    best.lane.queue.push(want);
    best.lane.queuedBytes += want.length;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        this.flush();
      });
    }
  }

  private lane(short: string): Lane {
    let lane = this.lanes.get(short);
    if (!lane) {
      lane = { queue: [], queuedBytes: 0, inFlight: 0 };
      this.lanes.set(short, lane);
    }
    return lane;
  }

  private flush(): void {
    const maxBytes = this.opts.batchBytes ?? 2 * 1024 * 1024;
    const maxCount = this.opts.batchCount ?? 512;
    for (const [short, lane] of this.lanes) {
      while (lane.queue.length > 0 && lane.inFlight < (this.opts.inFlight ?? 6)) {
        const batch: Want[] = [];
        let bytes = 0;
        while (lane.queue.length > 0 && batch.length < maxCount) {
          const w = lane.queue[0] as Want;
          if (batch.length > 0 && bytes + w.length > maxBytes) break;
          lane.queue.shift();
          batch.push(w);
          bytes += w.length;
        }
        lane.queuedBytes -= bytes;
        lane.inFlight++;
        void this.request(short, batch).finally(() => {
          lane.inFlight--;
          this.flush();
        });
      }
    }
  }

  private async request(short: string, batch: Want[]): Promise<void> {
    const source = this.sourceOf(short);
    const done = new Set<Want>();
    const retry = (w: Want, why: string) => {
      const i = w.sources.indexOf(short);
      if (i >= 0) w.sources.splice(i, 1);
      if (w.sources.length === 0) {
        this.settle(
          w,
          new LockstepError(
            'PEER_UNREACHABLE',
            `Chunk ${w.hash.slice(0, 12)}… unavailable: ${why}`,
          ),
        );
      } else {
        this.enqueue(w);
      }
    };
    try {
      if (!source) throw new LockstepError('PEER_UNREACHABLE', `Peer ${short} is gone`);
      const byHash = new Map(batch.map((w) => [w.hash, w]));
      await source.fetchChunks(
        batch.map((w) => w.hash),
        batch.map((w) => w.hint),
        (hash, data) => {
          const w = byHash.get(hash);
          if (!w) return;
          done.add(w);
          if (data === null) return retry(w, `peer ${source.name} does not have it`);
          if (data.length !== w.length || hashHex(data) !== hash) {
            this.opts.onRejected?.(source.name, hash, 'sent data that does not match its hash');
            return retry(w, `peer ${source.name} sent data that does not match its hash`);
          }
          this.bytesReceived += data.length;
          this.settle(w, data);
        },
      );
    } catch (err) {
      for (const w of batch) if (!done.has(w)) retry(w, errorMessage(err));
    }
  }

  /** Settles every waiter of `w`; verified bytes are handed out before this returns. */
  private settle(w: Want, result: Buffer | Error): void {
    this.wants.delete(w.hash);
    let copy: Buffer | undefined;
    for (const { resolve, reject, use } of w.waiters) {
      if (result instanceof Error) reject(result);
      else if (use === undefined) resolve((copy ??= Buffer.from(result)));
      else {
        try {
          use(result);
          resolve(result);
        } catch (err) {
          reject(err);
        }
      }
    }
  }
}

/**
 * Cuts files into FastCDC chunks and names each by its BLAKE3 hash.
 *
 * Large files stream through two reusable buffers: while one buffer is being
 * cut and hashed, the next read is already in flight on libuv's threadpool,
 * so the disk (or page-cache copy) overlaps with the CPU work and memory
 * stays constant whatever the file size.
 */
import { close, constants, open, promises as fsp, read } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { blake3 } from '@napi-rs/blake-hash';
import { DEFAULT_CDC, nextBoundary, validateCdcParams, type CdcParams } from '../core/fastcdc.js';
import type { Chunk } from '../core/record.js';

/**
 * How a file is opened for hashing: never through a symlink (a name
 * swapped for a link after the scanner looked must not be read), and never
 * blocking (a FIFO swapped in must not stall a thread).
 */
export const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** A file's size (the bytes actually read) and its chunks in order. */
export interface ChunkedFile {
  size: number;
  chunks: Chunk[];
}

/** Options of {@link chunkFile}. */
export interface ChunkFileOptions {
  /** Chunking parameters. @default DEFAULT_CDC */
  params?: CdcParams;
  /** Aborts the read between buffers; the promise rejects with the signal's reason. */
  signal?: AbortSignal;
  /**
   * Cut from this offset on, as if a chunk began here (a piece of a file cut
   * by several threads, see core/chunk-join). @default 0
   */
  from?: number;
  /** Stop once the chunks reach past this offset, not at the end of the file. */
  stopAfter?: number;
}

/** Bytes read per buffer when streaming. A few MiB: large reads, small footprint. */
export const READ_SIZE = 4 * 1024 * 1024;

/** Files smaller than this are read whole into one buffer of their size. */
const SMALL_FILE = 1024 * 1024;

/** Hex BLAKE3 of `bytes` (64 characters). */
export function hashHex(bytes: Uint8Array): string {
  return blake3(bytes).toString('hex');
}

/**
 * Cuts `buf[from:to]` from `from`, appending chunks (file offsets start at
 * `base`) to `out`; returns where the unfinished tail begins (=== `to` when
 * all was cut, which is always the case at `eof`).
 */
function cutInto(
  buf: Uint8Array,
  from: number,
  to: number,
  eof: boolean,
  params: CdcParams,
  base: number,
  out: Chunk[],
): number {
  let at = from;
  while (at < to) {
    const n = nextBoundary(buf, at, to, eof, params);
    if (n === 0) break;
    out.push({ offset: base + (at - from), length: n, hash: hashHex(buf.subarray(at, at + n)) });
    at += n;
  }
  return at;
}

/** Chunks and hashes in-memory data; gives exactly what {@link chunkFile} gives for the same bytes. */
export function chunkBuffer(buf: Uint8Array, params: CdcParams = DEFAULT_CDC): Chunk[] {
  validateCdcParams(params);
  const out: Chunk[] = [];
  cutInto(buf, 0, buf.length, true, params, 0, out);
  return out;
}

// Streaming buffers ("slabs") are kept for the next file: allocating and
// zeroing MiBs per file would cost more than hashing a small one.
const spare: Buffer[] = [];
const SPARE_SLABS = 2;

function takeSlab(size: number): Buffer {
  const i = spare.findIndex((b) => b.length === size);
  if (i >= 0) return spare.splice(i, 1)[0]!;
  return Buffer.allocUnsafeSlow(size);
}

function giveSlab(b: Buffer): void {
  if (spare.length < SPARE_SLABS) spare.push(b);
}

/**
 * Chunks and hashes the file at `absPath`, reading it to its end (so `size`
 * is what was actually read, even if the file grew since it was stat'ed).
 * Memory use is constant: at most two buffers of {@link READ_SIZE} + `max`.
 *
 * @throws the file system's error (with its `code`: ENOENT, EACCES, EISDIR, …),
 *   or the signal's reason when aborted.
 */
export async function chunkFile(
  absPath: string,
  opts: ChunkFileOptions = {},
): Promise<ChunkedFile> {
  const params = validateCdcParams(opts.params ?? DEFAULT_CDC);
  opts.signal?.throwIfAborted();
  const fh = await fsp.open(absPath, READ_FLAGS);
  try {
    return await chunkHandle(fh, (await fh.stat()).size, { ...opts, params });
  } finally {
    await fh.close();
  }
}

/**
 * {@link chunkFile} for a file expected to hold at most `sizeHint` bytes:
 * opened, read whole into one buffer and closed with plain fs calls, which
 * cost a small file far less than a FileHandle does. Gives exactly what
 * {@link chunkFile} gives, or undefined when the file holds more than
 * `sizeHint` bytes (or `sizeHint` is 1 MiB or more): the caller decides how
 * to hash a bigger file.
 *
 * @throws the file system's error, with its `code`.
 */
export async function chunkSmallFile(
  absPath: string,
  sizeHint: number,
  params: CdcParams = DEFAULT_CDC,
): Promise<ChunkedFile | undefined> {
  validateCdcParams(params);
  if (!(sizeHint >= 0 && sizeHint < SMALL_FILE)) return undefined;
  const fd = await new Promise<number>((resolve, reject) =>
    open(absPath, READ_FLAGS, (err, fd) => (err ? reject(err) : resolve(fd))),
  );
  // One byte extra tells whether the file grew past `sizeHint`. A short
  // read that brings at least `sizeHint` bytes is the end of the file, so the
  // usual file takes a single read; a shorter one reads on until 0.
  const buf = Buffer.allocUnsafe(sizeHint + 1);
  let n = 0;
  try {
    for (let want = buf.length; n < buf.length; want = buf.length - n) {
      const r = await new Promise<number>((resolve, reject) =>
        read(fd, buf, n, want, n, (err, bytes) => (err ? reject(err) : resolve(bytes))),
      );
      n += r;
      if (r === 0 || (r < want && n >= sizeHint)) break;
    }
  } finally {
    await new Promise<void>((resolve, reject) =>
      close(fd, (err) => (err ? reject(err) : resolve())),
    );
  }
  return n <= sizeHint ? { size: n, chunks: chunkBuffer(buf.subarray(0, n), params) } : undefined;
}

/**
 * {@link chunkFile} on a file already open (and stat'ed: `sizeHint` only picks
 * the strategy; the file is read to its end whatever it says). Reads from
 * offset 0 with positioned reads; does not close `fh`.
 */
export async function chunkHandle(
  fh: FileHandle,
  sizeHint: number,
  opts: ChunkFileOptions = {},
): Promise<ChunkedFile> {
  const params = validateCdcParams(opts.params ?? DEFAULT_CDC);
  opts.signal?.throwIfAborted();
  const from = opts.from ?? 0;
  if (!(Number.isSafeInteger(from) && from >= 0))
    throw new RangeError(`chunk from must be a non-negative integer, got ${from}`);
  if (from > 0 || opts.stopAfter !== undefined) {
    return stream(fh, params, opts.signal, from, opts.stopAfter);
  }
  // Small files (the common case) are read whole into one buffer; one byte
  // extra tells whether the file grew past its stat'ed size.
  if (sizeHint < SMALL_FILE) {
    const buf = Buffer.allocUnsafe(sizeHint + 1);
    let n = 0;
    for (let r = 1; r > 0 && n < buf.length; n += r) {
      r = (await fh.read(buf, n, buf.length - n, n)).bytesRead;
    }
    if (n <= sizeHint) return { size: n, chunks: chunkBuffer(buf.subarray(0, n), params) };
  }
  return stream(fh, params, opts.signal);
}

/**
 * The streaming path. Each slab is `[prefix: max][data: READ_SIZE]`; the
 * uncut tail of one slab (always shorter than `max`) is copied into the
 * prefix of the next, just before the data read into it, so every chunk is
 * contiguous in memory. Cuts from `start`; with `stopAfter`, ends (`size`:
 * the end of the last chunk) once a chunk ends past it.
 */
async function stream(
  fh: FileHandle,
  params: CdcParams,
  signal?: AbortSignal,
  start = 0,
  stopAfter?: number,
): Promise<ChunkedFile> {
  const pre = params.max;
  const slabs = [takeSlab(pre + READ_SIZE), takeSlab(pre + READ_SIZE)] as const;
  const chunks: Chunk[] = [];
  const read = (slab: Buffer, pos: number) => fh.read(slab, pre, READ_SIZE, pos);
  let pos = start; // file offset of the next read
  let tail: Uint8Array = new Uint8Array(0); // uncut bytes carried over
  let base = start; // file offset of tail[0]
  let cur = 0;
  let pending = read(slabs[0], pos);
  try {
    for (;;) {
      const { bytesRead } = await pending;
      signal?.throwIfAborted();
      const slab = slabs[cur]!;
      // Carry the previous tail into the prefix, then look at tail + data.
      const from = pre - tail.length;
      slab.set(tail, from);
      if (bytesRead === 0) {
        cutInto(slab, from, pre, true, params, base, chunks);
        return { size: pos, chunks };
      }
      pos += bytesRead;
      // Start the next read into the other slab before spending CPU on this one.
      cur ^= 1;
      pending = read(slabs[cur]!, pos);
      const to = pre + bytesRead;
      const stop = cutInto(slab, from, to, false, params, base, chunks);
      base += stop - from;
      if (stopAfter !== undefined && base > stopAfter) return { size: base, chunks };
      tail = slab.subarray(stop, to);
    }
  } finally {
    // Never hand back a slab (or close the file) under a read still in flight.
    await pending.catch(() => undefined);
    for (const s of slabs) giveSlab(s);
  }
}

/**
 * Benchmark: chunk + hash (FastCDC + BLAKE3) of one large file, on the
 * calling thread, through `chunkFile`.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { chunkFile } from '../dist/scan/chunker.js';
import { median } from './stats.js';

/** Options of {@link benchChunk}. */
export interface BenchChunkOptions {
  /** Size of the test file in bytes. */
  bytes: number;
  /** Timed runs over the same file. */
  runs: number;
  /** Directory for the test file (removed afterwards). */
  dir: string;
}

const BLOCK = 64 * 1024 * 1024;

/**
 * Writes `bytes` pseudo-random bytes to a file in `dir`, then times
 * `chunkFile` over it `runs` times. The file was just written, so it is
 * normally in the page cache: this measures CPU throughput, not the disk.
 *
 * @returns the throughput of each run and their median, in MB/s (1 MB = 10^6 bytes).
 */
export async function benchChunk(
  opts: BenchChunkOptions,
): Promise<{ mbPerSec: number[]; median: number }> {
  if (!(Number.isSafeInteger(opts.bytes) && opts.bytes > 0))
    throw new RangeError(`bytes must be a positive integer, got ${opts.bytes}`);
  if (!(Number.isSafeInteger(opts.runs) && opts.runs > 0))
    throw new RangeError(`runs must be a positive integer, got ${opts.runs}`);
  const file = join(opts.dir, 'chunk-bench.bin');
  const fh = await fsp.open(file, 'w');
  try {
    // Random data has no repeats, so no chunk is shorter than the content makes it.
    for (let left = opts.bytes; left > 0; left -= BLOCK)
      await fh.write(randomBytes(Math.min(BLOCK, left)));
  } finally {
    await fh.close();
  }
  try {
    const mbPerSec: number[] = [];
    for (let r = 0; r < opts.runs; r++) {
      const t0 = process.hrtime.bigint();
      const { size } = await chunkFile(file);
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      if (size !== opts.bytes) throw new Error(`chunked ${size} bytes, expected ${opts.bytes}`);
      mbPerSec.push(size / 1e6 / seconds);
    }
    return { mbPerSec, median: median(mbPerSec) };
  } finally {
    await fsp.rm(file, { force: true });
  }
}

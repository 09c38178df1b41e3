/**
 * FastCDC content-defined chunking (Xia et al., "FastCDC: a Fast and
 * Efficient Content-Defined Chunking Approach for Data Deduplication", USENIX
 * ATC 2016): a gear rolling hash, cut-point skipping of the first `min` bytes
 * and normalized chunking with two masks.
 *
 * Pure: bytes in, boundaries out. Every device must cut identical data at
 * identical places, forever — otherwise chunks stop being shared between
 * devices and versions. The gear table, the masks and the cut rule below are
 * therefore part of the wire format; changing any of them is a protocol
 * change.
 */

/** Chunk size parameters, in bytes. */
export interface CdcParams {
  /** No chunk is shorter than this, except the last of a file. */
  readonly min: number;
  /** The target average; must be a power of two (it sets the mask width). */
  readonly avg: number;
  /** No chunk is longer than this. */
  readonly max: number;
}

/** The parameters used for every file in the folder. */
export const DEFAULT_CDC: CdcParams = Object.freeze({
  min: 16 * 1024,
  avg: 64 * 1024,
  max: 256 * 1024,
});

/** The seed of the gear table's generator ("Lock" in ASCII). Never change it. */
export const GEAR_SEED = 0x4c6f636b;

/**
 * Builds the 256-entry gear table with xorshift32 (Marsaglia 2003, shifts
 * 13/17/5) from {@link GEAR_SEED}. A fixed, tiny, integer-only generator means
 * every platform and every future version derives exactly the same table
 * without shipping 1 KiB of magic numbers.
 */
function makeGear(): Uint32Array {
  const table = new Uint32Array(256);
  let x = GEAR_SEED;
  for (let i = 0; i < 256; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    table[i] = x;
  }
  return table;
}

const GEAR_U32 = makeGear();
// The hot loop reads a signed view: V8 keeps int32 values unboxed, while
// uint32 values above 2^31 would become doubles.
const GEAR = new Int32Array(GEAR_U32.buffer);

/** Returns a copy of the gear table (uint32 entries), for inspection and tests. */
export function gearTable(): Uint32Array {
  return GEAR_U32.slice();
}

/** Throws a RangeError naming the first bad value of `p`; returns `p`. */
export function validateCdcParams(p: CdcParams): CdcParams {
  const { min, avg, max } = p;
  const int = (name: string, v: number) => {
    if (!Number.isSafeInteger(v)) throw new RangeError(`CDC ${name} must be an integer, got ${v}`);
  };
  int('min', min);
  int('avg', avg);
  int('max', max);
  if (min < 64) throw new RangeError(`CDC min must be at least 64 bytes, got ${min}`);
  if (avg < 256 || avg > 2 ** 28 || (avg & (avg - 1)) !== 0) {
    throw new RangeError(`CDC avg must be a power of two from 256 to 2^28, got ${avg}`);
  }
  if (avg <= min) throw new RangeError(`CDC avg (${avg}) must be greater than min (${min})`);
  if (max <= avg) throw new RangeError(`CDC max (${max}) must be greater than avg (${avg})`);
  if (max > 2 ** 30) throw new RangeError(`CDC max must be at most 2^30 bytes, got ${max}`);
  return p;
}

/**
 * The two masks of normalized chunking (level 2): `avg = 2^bits`, the strict
 * mask has `bits + 2` one-bits and the loose one `bits - 2`. They take the
 * TOP bits of the 32-bit hash: with `h = (h << 1) + gear[b]`, bit k depends
 * only on the last k + 1 bytes, so the high bits see the widest window.
 */
function masks(avg: number): { strict: number; loose: number } {
  const bits = Math.round(Math.log2(avg));
  const top = (n: number) => ((0xffffffff << (32 - n)) | 0) as number;
  return { strict: top(bits + 2), loose: top(bits - 2) };
}

let lastParams: CdcParams = DEFAULT_CDC;
let lastMasks = masks(DEFAULT_CDC.avg);

/**
 * Finds the next chunk boundary.
 *
 * Looks at `buf[start:end]`, where a chunk begins at `start`, and returns the
 * length of that chunk, or 0 when it cannot tell yet: not `eof` and fewer
 * than `max` bytes available with no cut point among them (call again with
 * more data from the same `start`). At `eof` the remaining bytes always form
 * a chunk (0 only when none remain).
 *
 * The result depends only on the bytes from `start` on, never on how much
 * data happens to be buffered, so any buffering yields the same chunks.
 *
 * @throws RangeError when `params` are invalid or `start`/`end` are out of range.
 */
export function nextBoundary(
  buf: Uint8Array,
  start: number,
  end: number,
  eof: boolean,
  params: CdcParams = DEFAULT_CDC,
): number {
  if (params !== lastParams) {
    // Validate and derive masks once per distinct params object, not per call.
    lastMasks = masks(validateCdcParams(params).avg);
    lastParams = params;
  }
  if (!(start >= 0 && start <= end && end <= buf.length)) {
    throw new RangeError(`bad range [${start}, ${end}) of a ${buf.length}-byte buffer`);
  }
  const { min, avg, max } = params;
  const avail = end - start;
  if (avail <= min) return eof ? avail : 0;
  // Cut-point skipping: no cut can fall before `min`, so do not even hash there.
  const limit = start + (avail < max ? avail : max);
  const normal = start + (avail < avg ? avail : avg);
  // Before `avg` the strict mask makes early cuts rarer, after it the loose
  // one makes late cuts likelier: sizes cluster around `avg`.
  let at = scan(buf, start + min, normal, lastMasks.strict, 0);
  if (at < 0) at = scan(buf, normal, limit, lastMasks.loose, carry);
  if (at >= 0) return at + 1 - start;
  if (avail >= max) return max;
  return eof ? avail : 0;
}

/** The gear hash left by the last {@link scan} that found no cut. */
let carry = 0;

/**
 * Rolls the gear hash `h` over `buf[from:to]`; returns the index of the first
 * byte after which `(h & mask) === 0`, or -1 (leaving the hash in `carry`).
 * Unrolled by four: about 25% faster in V8 than the plain loop, the main cost
 * being per-iteration bounds and loop checks.
 */
function scan(buf: Uint8Array, from: number, to: number, mask: number, h: number): number {
  const g = GEAR;
  let i = from;
  for (const stop = to - 3; i < stop; i += 4) {
    h = ((h << 1) + g[buf[i]!]!) | 0;
    if ((h & mask) === 0) return i;
    h = ((h << 1) + g[buf[i + 1]!]!) | 0;
    if ((h & mask) === 0) return i + 1;
    h = ((h << 1) + g[buf[i + 2]!]!) | 0;
    if ((h & mask) === 0) return i + 2;
    h = ((h << 1) + g[buf[i + 3]!]!) | 0;
    if ((h & mask) === 0) return i + 3;
  }
  for (; i < to; i++) {
    h = ((h << 1) + g[buf[i]!]!) | 0;
    if ((h & mask) === 0) return i;
  }
  carry = h;
  return -1;
}

/**
 * Cuts a whole in-memory buffer; returns the chunk lengths in order (none for
 * an empty buffer).
 */
export function cutAll(buf: Uint8Array, params: CdcParams = DEFAULT_CDC): number[] {
  const out: number[] = [];
  let at = 0;
  while (at < buf.length) {
    const n = nextBoundary(buf, at, buf.length, true, params);
    out.push(n);
    at += n;
  }
  return out;
}

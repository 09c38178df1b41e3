/**
 * Chunk-list deltas: a file's new chunk list told as "chunks start..start+count
 * of a base list you already have" plus the chunks that are new. A 512 MiB
 * file has about 8,000 chunks, and its full list is ~600 KB of JSON; after a
 * small edit almost all of it is the list the peer already holds, so the
 * record shrinks to a few ops. Pure: lists in, lists out.
 */
import type { Chunk } from './record.js';

/** Copy `count` chunks of the base, starting at index `start`. */
export type CopyOp = readonly [start: number, count: number];
/** A chunk the base does not hold (its length and hash). */
export type NewOp = readonly [length: number, hash: string];
export type ChunkOp = CopyOp | NewOp;

/** Whether an op copies from the base (its second element is a count, not a hash). */
function isCopyOp(op: ChunkOp): op is CopyOp {
  return typeof op[1] === 'number';
}

/**
 * Describes `next` against `base`: runs of chunks found in the base (same
 * hash and length) become copy ops, the rest new ops. Runs continue while
 * the base continues in order, so an edit in the middle of a big file gives
 * two copies around a few new chunks.
 */
export function diffChunks(base: readonly Chunk[], next: readonly Chunk[]): ChunkOp[] {
  const at = new Map<string, number>();
  for (let i = base.length - 1; i >= 0; i--) at.set((base[i] as Chunk).hash, i);
  const ops: [number, number | string][] = [];
  let run: [number, number] | undefined;
  for (const c of next) {
    // Continue the current run when the base's next chunk matches.
    if (run !== undefined) {
      const following = base[run[0] + run[1]];
      if (following !== undefined && following.hash === c.hash && following.length === c.length) {
        run[1]++;
        continue;
      }
    }
    const j = at.get(c.hash);
    if (j !== undefined && (base[j] as Chunk).length === c.length) {
      run = [j, 1];
      ops.push(run);
    } else {
      run = undefined;
      ops.push([c.length, c.hash]);
    }
  }
  return ops as ChunkOp[];
}

/** The number of chunks `ops` describe. */
export function opsChunkCount(ops: readonly ChunkOp[]): number {
  let n = 0;
  for (const op of ops) n += isCopyOp(op) ? op[1] : 1;
  return n;
}

/**
 * Rebuilds a chunk list from `base` and `ops` (offsets recomputed), or
 * returns the reason the ops do not fit the base or would describe more than
 * `maxChunks` chunks (checked before anything is built). New ops are taken as
 * they are: the caller checks lengths and hashes like any received chunk list.
 */
export function applyChunkOps(
  base: readonly Chunk[],
  ops: readonly ChunkOp[],
  maxChunks = Number.MAX_SAFE_INTEGER,
): Chunk[] | string {
  const total = opsChunkCount(ops);
  if (total > maxChunks) return `ops describe ${total} chunks, more than ${maxChunks}`;
  const out: Chunk[] = [];
  let offset = 0;
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i] as ChunkOp;
    if (isCopyOp(op)) {
      const [start, count] = op;
      if (start + count > base.length) {
        return `op ${i} copies chunks ${start} to ${start + count - 1} of a base with ${base.length}`;
      }
      for (let k = start; k < start + count; k++) {
        const c = base[k] as Chunk;
        out.push({ offset, length: c.length, hash: c.hash });
        offset += c.length;
      }
    } else {
      out.push({ offset, length: op[0], hash: op[1] });
      offset += op[0];
    }
  }
  return out;
}

/**
 * Joining a file chunked in two pieces at once (two threads on one big file).
 *
 * Content-defined cuts depend only on the bytes from the previous cut on
 * (see `nextBoundary`). So a piece cut from some offset `s` "as if a chunk
 * began there" is wrong only until its first cut that the whole-file run
 * also makes; from that cut on, the two agree forever. The head piece (from
 * offset 0, the true cuts) runs on a little past `s`; where it reaches a
 * cut the tail piece also made, the tail takes over.
 *
 * Pure: chunk lists in, chunk list out.
 */
import type { Chunk } from './record.js';

/**
 * The chunks of the whole file, from `head` (cut from offset 0 and run on
 * past where `tail` begins) and `tail` (cut from its first offset as if a
 * chunk began there, to the end of the file); exactly what cutting the file
 * in one run gives. Undefined when `head` never reaches a cut of `tail` (data
 * whose cuts keep their phase, such as a long run of one byte): the caller
 * goes on from the end of `head` in one run.
 */
export function joinCuts(head: readonly Chunk[], tail: readonly Chunk[]): Chunk[] | undefined {
  const first = tail[0];
  if (first === undefined) return [...head];
  // Where each tail chunk begins.
  const starts = new Map<number, number>();
  for (let j = 0; j < tail.length; j++) starts.set((tail[j] as Chunk).offset, j);
  for (let i = 0; i < head.length; i++) {
    const at = (head[i] as Chunk).offset;
    if (at < first.offset) continue;
    const j = starts.get(at);
    if (j !== undefined) return [...head.slice(0, i), ...tail.slice(j)];
  }
  // The head's end is a true cut too, and so is the tail's end (the end of
  // the file): the head may have reached either.
  const last = head.at(-1);
  const end = last === undefined ? 0 : last.offset + last.length;
  const j = starts.get(end);
  if (j !== undefined) return [...head, ...tail.slice(j)];
  const tailLast = tail.at(-1) as Chunk;
  if (end === tailLast.offset + tailLast.length) return [...head];
  return undefined;
}

/**
 * Chunks this device already has: read from wherever the index says a
 * chunk is on disk, and verified against its hash before it is used.
 */
import { hashHex } from '../scan/chunker.js';
import type { ChunkLocation, IndexStore } from '../store/index-store.js';
import { inFolder } from '../folder/temp-files.js';
import type { FdCache } from './fd-cache.js';

/**
 * Reads chunk `hash` from wherever this device has it on disk, verified
 * against the hash; undefined if it is nowhere (or has changed since).
 * `places`, where the index had it a moment ago (looked up for many chunks
 * at once), saves the lookup; being verified, a stale place costs nothing
 * but a read.
 */
export function readLocalChunk(
  root: string,
  store: Pick<IndexStore, 'findChunk'>,
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

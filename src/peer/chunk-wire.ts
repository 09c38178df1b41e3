/**
 * Chunk requests of the peer protocol, `{ hashes, at? }`: encoded by the
 * asking device's link, decoded (and checked: it is untrusted) by the
 * serving device's listener.
 */
import { LockstepError } from '../base/errors.js';
import { DEFAULT_CDC } from '../core/fastcdc.js';
import { peerPathProblem } from './record-wire.js';
import { HASH_RE, checkFields, isPlainObject, show } from './wire-check.js';

/** The most chunk hashes one chunk request may ask for. */
export const MAX_CHUNK_REQUEST = 1024;

/** Where the asking device expects a chunk on the serving device: path, offset, length. */
export type ChunkHint = readonly [path: string, offset: number, length: number];

/** A chunk request: the hashes asked for and, per hash, where it is expected. */
export interface ChunkFetch {
  readonly hashes: readonly string[];
  readonly at: readonly (ChunkHint | null)[];
}

/**
 * Encodes a chunk request as its JSON body, `at` left out when it holds no
 * hint (the asking device knows no place for any of the chunks).
 */
export function encodeChunkFetch(req: ChunkFetch): string {
  const { hashes, at } = req;
  return JSON.stringify(at.some((h) => h !== null) ? { hashes, at } : { hashes });
}

/**
 * Decodes a chunk request `{ hashes, at? }`: `at`, when present, has one
 * entry per hash, a {@link ChunkHint} or null. A hint saves the server a
 * lookup; a hint whose path is not a valid folder path is dropped (null),
 * and the server only follows hints to files it has.
 *
 * @throws LockstepError `PEER_INVALID` for a malformed request
 */
export function decodeChunkFetch(value: unknown): {
  hashes: string[];
  at: (ChunkHint | null)[];
} {
  const bad = (problem: string) =>
    new LockstepError('PEER_INVALID', `Peer chunk request: ${problem}`);
  if (!isPlainObject(value)) throw bad(`must be an object, got ${show(value)}`);
  const rawAt = value.at;
  checkFields(value, rawAt === undefined ? ['hashes'] : ['hashes', 'at'], bad);
  const hashes = value.hashes;
  if (!Array.isArray(hashes)) throw bad(`hashes must be an array, got ${show(hashes)}`);
  if (hashes.length < 1 || hashes.length > MAX_CHUNK_REQUEST) {
    throw bad(`must ask for 1 to ${MAX_CHUNK_REQUEST} hashes, got ${hashes.length}`);
  }
  hashes.forEach((h: unknown, i) => {
    if (typeof h !== 'string' || !HASH_RE.test(h)) {
      throw bad(`hash ${i} must be 64 lowercase hex characters, got ${show(h)}`);
    }
  });
  const at: (ChunkHint | null)[] = hashes.map(() => null);
  if (rawAt !== undefined) {
    if (!Array.isArray(rawAt) || rawAt.length !== hashes.length) {
      throw bad('at must be an array with one entry per hash');
    }
    rawAt.forEach((h: unknown, i) => {
      if (h === null) return;
      if (
        !Array.isArray(h) ||
        h.length !== 3 ||
        typeof h[0] !== 'string' ||
        !Number.isSafeInteger(h[1]) ||
        (h[1] as number) < 0 ||
        !Number.isSafeInteger(h[2]) ||
        (h[2] as number) < 1 ||
        (h[2] as number) > DEFAULT_CDC.max
      ) {
        throw bad(`at[${i}] must be null or [path, offset, length], got ${show(h)}`);
      }
      const path = h[0] as string;
      if (peerPathProblem(path) === undefined) at[i] = [path, h[1] as number, h[2] as number];
    });
  }
  return { hashes: [...(hashes as string[])], at };
}

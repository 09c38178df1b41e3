/**
 * Index records on the peer wire: a record's JSON form, whole or with its
 * chunk list told as a delta against a version the receiver holds, and the
 * checks every record from a peer passes before the sync engine sees it (a
 * path that could name a place outside the folder, or a record that
 * contradicts itself, is rejected with `PEER_INVALID`).
 */
import { createHash } from 'node:crypto';
import { LockstepError } from '../base/errors.js';
import { DEFAULT_CDC } from '../core/fastcdc.js';
import { MAX_PATH_LENGTH, peerPathProblem } from '../core/path.js';
import type { Chunk, EntryType, FileRecord } from '../core/record.js';
import { applyChunkOps, diffChunks, opsChunkCount, type ChunkOp } from '../core/chunk-delta.js';
import { checkVector, type Vector } from '../core/vector.js';
import {
  HASH_RE,
  QUOTE_CHARS,
  checkFields,
  isPlainObject,
  isSafeInteger,
  quote,
  show,
  stringOr,
} from './wire-check.js';

/** The longest path or symlink target accepted from a peer, in UTF-8 bytes (Linux PATH_MAX). */
const MAX_PATH_BYTES = MAX_PATH_LENGTH;

/** A record as it travels: JSON-safe, offsets and inode left out. */
export interface WireRecord {
  path: string;
  type: EntryType;
  size: number;
  /** Nanoseconds since the Unix epoch, in decimal (a JSON number would lose precision). */
  mtimeNs: string;
  mode: number;
  /**
   * `[length, hex hash]` per chunk, in order; offsets are the running sum of
   * lengths. With {@link WireRecord.base}, an entry may instead be
   * `[start, count]`: that many chunks of the base's list from `start`.
   */
  chunks: ([number, string] | [number, number])[];
  target: string;
  version: Record<string, number>;
  deleted: boolean;
  sequence: number;
  modifiedBy: string;
  /**
   * Optional: the fencing token the version was written under, a positive
   * integer; sent only when the record has one. A record without it (from
   * a peer that has no tokens, or written without a lock) has token 0.
   */
  token?: number;
  /**
   * Optional: the record whose chunk list the copy entries of `chunks` refer
   * to, by version and by {@link chunkListDigest}. Sent only to a receiver
   * that asked for deltas, naming a record of this path it holds.
   */
  base?: { version: Record<string, number>; digest: string };
}

/**
 * Thrown while decoding a record whose chunk list is a delta against a
 * version this device no longer holds: the receiver must ask again for full
 * records (nothing of the message may be applied).
 */
export class DeltaBaseMissing extends Error {
  constructor(readonly path: string) {
    super(`record ${quote(path)} is a delta against a version this device no longer holds`);
    this.name = 'DeltaBaseMissing';
  }
}

/**
 * The chunk lists this device holds of `path` at exactly `version`, where a
 * delta's base may be (the sender's record as last received, this device's
 * own), for decoding deltas; the decoder picks the one whose digest matches.
 */
export type BaseResolver = (path: string, version: Vector) => readonly (readonly Chunk[])[];

/**
 * The most chunks one record may have once its delta is applied (a full
 * list this long fills a frame), and the most chunk entries the records of
 * one message may make, bases looked up included: a delta is small on the
 * wire, so without these a peer could make the receiver build millions.
 */
const MAX_RECORD_CHUNKS = 250_000;
export const MAX_MESSAGE_CHUNKS = 1_000_000;

/** What decoding one message may still spend on chunk entries. */
export interface ChunkBudget {
  chunks: number;
}

const TYPES: readonly EntryType[] = ['file', 'directory', 'symlink'];
const WIRE_FIELDS = [
  'path',
  'type',
  'size',
  'mtimeNs',
  'mode',
  'chunks',
  'target',
  'version',
  'deleted',
  'sequence',
  'modifiedBy',
] as const;
const WIRE_FIELDS_DELTA = [...WIRE_FIELDS, 'base'] as const;
const DIGEST_RE = /^[0-9a-f]{32}$/;
const MTIME_RE = /^-?\d{1,20}$/;
const SHORT_ID_RE = /^[A-Z2-7]{7}$/;
const MTIME_LIMIT = 2n ** 63n;

/** Converts a record to its wire form (offsets and inode are not sent). */
export function toWire(r: FileRecord): WireRecord {
  return {
    path: r.path,
    type: r.type,
    size: r.size,
    mtimeNs: r.mtimeNs.toString(),
    mode: r.mode,
    chunks: r.chunks.map((c): [number, string] => [c.length, c.hash]),
    target: r.target,
    version: { ...r.version },
    deleted: r.deleted,
    sequence: r.sequence,
    modifiedBy: r.modifiedBy,
    ...(r.token !== undefined && r.token > 0 ? { token: r.token } : {}),
  };
}

/**
 * Names a chunk list's content: SHA-256 over each chunk's length (u32
 * big-endian) and hash, first 128 bits in hex. A delta carries its base's
 * digest, so the receiver never applies it to another list that happens to
 * carry the same version.
 */
export function chunkListDigest(chunks: readonly Chunk[]): string {
  const h = createHash('sha256');
  const len = Buffer.alloc(4);
  for (const c of chunks) {
    len.writeUInt32BE(c.length, 0);
    h.update(len);
    h.update(c.hash, 'hex');
  }
  return h.digest('hex').slice(0, 32);
}

/** Records with fewer chunks than this are always sent whole. */
export const DELTA_MIN_CHUNKS = 32;

/**
 * The wire form of `r` with its chunk list told against `base` (a record of
 * the same path that the receiver holds), when that is at most half as long
 * as the full list; else the full wire form.
 */
export function toWireDelta(r: FileRecord, base: FileRecord | undefined): WireRecord {
  const full = toWire(r);
  if (
    base === undefined ||
    base.path !== r.path ||
    r.deleted ||
    r.type !== 'file' ||
    r.chunks.length < DELTA_MIN_CHUNKS ||
    base.deleted ||
    base.type !== 'file' ||
    base.chunks.length === 0
  ) {
    return full;
  }
  const ops = diffChunks(base.chunks, r.chunks);
  if (ops.length * 2 > r.chunks.length) return full;
  return {
    ...full,
    chunks: ops as WireRecord['chunks'],
    base: { version: { ...base.version }, digest: chunkListDigest(base.chunks) },
  };
}

/**
 * Checks a record received from a peer and converts it (inode 0, offsets
 * recomputed). Rejects anything malformed, unsafe or self-contradictory: a
 * path that is not a valid, well-formed, non-internal folder-relative path
 * within the byte limits; wrong field types or extra fields; a chunk list,
 * size or target that does not fit the type; an invalid version vector.
 *
 * @throws LockstepError `PEER_INVALID`, naming the path (when known) and the problem
 */
export function fromWire(
  value: unknown,
  resolveBase?: BaseResolver,
  budget: ChunkBudget = { chunks: MAX_MESSAGE_CHUNKS },
): FileRecord {
  if (!isPlainObject(value)) throw recordError(undefined, `must be an object, got ${show(value)}`);
  const delta = Object.hasOwn(value, 'base');
  const fenced = Object.hasOwn(value, 'token');
  const fields: readonly string[] = delta ? WIRE_FIELDS_DELTA : WIRE_FIELDS;
  checkFields(value, fenced ? [...fields, 'token'] : fields, (problem) =>
    recordError(stringOr(value.path), problem),
  );

  const path = value.path;
  if (typeof path !== 'string')
    throw recordError(undefined, `path must be a string, got ${show(path)}`);
  const bad = (problem: string) => recordError(path, problem);
  const problem = peerPathProblem(path);
  if (problem !== undefined) throw bad(problem);

  const { type, size, mtimeNs, mode, chunks, target, version, deleted, sequence, modifiedBy } =
    value;
  if (typeof type !== 'string' || !(TYPES as readonly string[]).includes(type)) {
    throw bad(`type must be one of ${TYPES.join(', ')}, got ${show(type)}`);
  }
  const entryType = type as EntryType;
  if (!isSafeInteger(size) || size < 0) {
    throw bad(`size must be a non-negative integer, got ${show(size)}`);
  }
  if (typeof mtimeNs !== 'string' || !MTIME_RE.test(mtimeNs)) {
    throw bad(`mtimeNs must be a decimal integer string, got ${show(mtimeNs)}`);
  }
  const mtime = BigInt(mtimeNs);
  if (mtime < -MTIME_LIMIT || mtime >= MTIME_LIMIT) {
    throw bad(`mtimeNs ${mtimeNs} is outside the signed 64-bit range`);
  }
  if (!isSafeInteger(mode) || mode < 0 || mode > 0o7777) {
    throw bad(`mode must be an integer from 0 to 0o7777, got ${show(mode)}`);
  }
  if (typeof deleted !== 'boolean') throw bad(`deleted must be a boolean, got ${show(deleted)}`);
  if (typeof target !== 'string') throw bad(`target must be a string, got ${show(target)}`);
  if (!isSafeInteger(sequence) || sequence < 1) {
    throw bad(`sequence must be a positive integer, got ${show(sequence)}`);
  }

  if (!isPlainObject(version)) throw bad(`version must be an object, got ${show(version)}`);
  let vector;
  try {
    vector = checkVector(version);
  } catch (err) {
    // The message quotes the peer's key or counter: cut it to a sane length.
    throw bad(`invalid version: ${(err as Error).message.slice(0, QUOTE_CHARS)}`);
  }
  if (Object.keys(vector).length === 0) throw bad('version is empty');
  if (typeof modifiedBy !== 'string') {
    throw bad(`modifiedBy must be a string, got ${show(modifiedBy)}`);
  }
  if (modifiedBy !== '') {
    if (!SHORT_ID_RE.test(modifiedBy)) {
      throw bad(`modifiedBy must be '' or a short device ID, got ${show(modifiedBy)}`);
    }
    if (vector[modifiedBy] === undefined) {
      throw bad(`modifiedBy ${modifiedBy} has no counter in the version`);
    }
  }

  const token = decodeToken(value, bad);

  if (!Array.isArray(chunks)) throw bad(`chunks must be an array, got ${show(chunks)}`);
  const what = deleted ? 'a tombstone' : `a ${entryType}`;
  if ((deleted || entryType !== 'file') && chunks.length !== 0) {
    throw bad(`${what} must have no chunks, got ${chunks.length}`);
  }
  let base: { version: Vector; digest: string } | undefined;
  if (delta) {
    if (deleted || entryType !== 'file') throw bad(`${what} cannot carry a chunk delta`);
    base = decodeBase(value.base, bad);
    if (resolveBase === undefined) throw bad('carries a chunk delta, which was not asked for');
  }
  // Everything else is checked before the base is looked up: a malformed
  // record is refused, never taken as a reason to ask again.
  const ops = decodeChunkOps(chunks as unknown[], size, bad, delta);
  let baseChunks: readonly Chunk[] = [];
  if (base !== undefined && resolveBase !== undefined) {
    const count = opsChunkCount(ops);
    if (count > MAX_RECORD_CHUNKS) {
      throw bad(`chunk delta describes ${count} chunks, more than ${MAX_RECORD_CHUNKS}`);
    }
    spend(budget, count, bad);
    let found: readonly Chunk[] | undefined;
    for (const candidate of resolveBase(path, base.version)) {
      spend(budget, candidate.length, bad);
      if (chunkListDigest(candidate) === base.digest) {
        found = candidate;
        break;
      }
    }
    if (found === undefined) throw new DeltaBaseMissing(path);
    baseChunks = found;
  }
  const list = chunksOf(ops, baseChunks, bad);
  checkConsistency(what, entryType, deleted, size, list, target, bad);

  return {
    path,
    type: entryType,
    size,
    mtimeNs: mtime,
    mode,
    chunks: list,
    target,
    version: vector,
    deleted,
    sequence,
    inode: 0,
    modifiedBy,
    ...(token > 0 ? { token } : {}),
  };
}

/** Re-exported: the check lives in core, beside the other path rules. */
export { peerPathProblem };

/**
 * Checks the entries of a received chunk list: `[length, hash]` pairs and,
 * when `copies` is true, `[start, count]` copies of a base list.
 */
function decodeChunkOps(
  value: readonly unknown[],
  size: number,
  bad: (problem: string) => LockstepError,
  copies: boolean,
): ChunkOp[] {
  // Every chunk holds at least one byte, so a list longer than the size is
  // wrong whatever it holds; refuse it before looking at each entry (a copy
  // entry stands for at least one chunk).
  if (value.length > size) throw bad(`has ${value.length} chunks for ${size} bytes`);
  const ops: ChunkOp[] = [];
  for (let i = 0; i < value.length; i++) {
    const entry = value[i];
    if (!Array.isArray(entry) || entry.length !== 2) {
      throw bad(`chunk ${i} must be a [length, hash] pair, got ${show(entry)}`);
    }
    const [length, hash] = entry as unknown[];
    if (copies && typeof hash === 'number') {
      if (!isSafeInteger(length) || length < 0 || !isSafeInteger(hash) || hash < 1) {
        throw bad(`chunk ${i} must be a [start, count] copy of the base, got ${show(entry)}`);
      }
      ops.push([length, hash]);
      continue;
    }
    if (!isSafeInteger(length) || length < 1 || length > DEFAULT_CDC.max) {
      throw bad(
        `chunk ${i} length must be from 1 to ${DEFAULT_CDC.max} bytes, got ${show(length)}`,
      );
    }
    if (typeof hash !== 'string' || !HASH_RE.test(hash)) {
      throw bad(`chunk ${i} hash must be 64 lowercase hex characters, got ${show(hash)}`);
    }
    ops.push([length, hash]);
  }
  return ops;
}

/** Takes `n` chunk entries from what one message may still make. */
function spend(budget: ChunkBudget, n: number, bad: (problem: string) => LockstepError): void {
  budget.chunks -= n;
  if (budget.chunks < 0) {
    throw bad(`the message's chunk deltas make more than ${MAX_MESSAGE_CHUNKS} chunk entries`);
  }
}

/** Checks a record's optional fencing `token`: a positive integer; absent is 0. */
function decodeToken(
  value: Record<string, unknown>,
  bad: (problem: string) => LockstepError,
): number {
  if (!Object.hasOwn(value, 'token')) return 0;
  const token = value.token;
  if (!isSafeInteger(token) || token < 1) {
    throw bad(`token must be a positive integer (or absent), got ${show(token)}`);
  }
  return token;
}

/** Checks a delta's `base`: `{ version, digest }`. */
function decodeBase(
  value: unknown,
  bad: (problem: string) => LockstepError,
): { version: Vector; digest: string } {
  if (!isPlainObject(value)) throw bad(`base must be an object, got ${show(value)}`);
  checkFields(value, ['version', 'digest'], (problem) => bad(`base: ${problem}`));
  if (!isPlainObject(value.version)) {
    throw bad(`base version must be an object, got ${show(value.version)}`);
  }
  let version;
  try {
    version = checkVector(value.version);
  } catch (err) {
    throw bad(`invalid base version: ${(err as Error).message.slice(0, QUOTE_CHARS)}`);
  }
  if (typeof value.digest !== 'string' || !DIGEST_RE.test(value.digest)) {
    throw bad(`base digest must be 32 lowercase hex characters, got ${show(value.digest)}`);
  }
  return { version, digest: value.digest };
}

/** The chunk list told by checked `ops`, against `base` when they copy from one. */
function chunksOf(
  ops: readonly ChunkOp[],
  base: readonly Chunk[],
  bad: (problem: string) => LockstepError,
): Chunk[] {
  const list = applyChunkOps(base, ops, MAX_RECORD_CHUNKS);
  if (typeof list === 'string') throw bad(`chunk delta does not fit its base: ${list}`);
  return list;
}

/** Checks size and target against the type (chunks of non-files are already refused). */
function checkConsistency(
  what: string,
  type: EntryType,
  deleted: boolean,
  size: number,
  chunks: readonly Chunk[],
  target: string,
  bad: (problem: string) => LockstepError,
): void {
  if (deleted || type === 'directory') {
    if (size !== 0) throw bad(`${what} must have size 0, got ${size}`);
    if (target !== '') throw bad(`${what} must have no target, got ${quote(target)}`);
    return;
  }
  if (type === 'file') {
    if (target !== '') throw bad(`a file must have no target, got ${quote(target)}`);
    const sum = chunks.reduce((n, c) => n + c.length, 0);
    if (sum !== size) throw bad(`chunk lengths sum to ${sum} bytes but size is ${size}`);
    return;
  }
  // A symlink: the target verbatim; size is its UTF-8 length, as the scanner records it.
  if (target === '') throw bad('a symlink must have a target');
  if (target.includes('\0')) throw bad('symlink target contains NUL');
  if (!target.isWellFormed()) throw bad('symlink target is not valid UTF-8 (lone surrogate)');
  const bytes = Buffer.byteLength(target);
  if (bytes > MAX_PATH_BYTES) throw bad(`symlink target is longer than ${MAX_PATH_BYTES} bytes`);
  if (size !== bytes) {
    throw bad(`a symlink's size must be its target's length (${bytes} bytes), got ${size}`);
  }
}

function recordError(path: string | undefined, problem: string): LockstepError {
  const where = path === undefined ? 'Peer record' : `Peer record ${quote(path)}`;
  return new LockstepError('PEER_INVALID', `${where}: ${problem}`);
}

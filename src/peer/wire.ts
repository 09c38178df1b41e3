/**
 * The wire codec of the peer protocol: index records and messages as JSON,
 * framed as `[u32 big-endian length][UTF-8 JSON]`, and chunk requests.
 *
 * Pure: bytes and values in, values out. Everything a peer sends is untrusted
 * and passes the decoders here before the sync engine sees it, so a path that
 * could name a place outside the folder, an oversized frame or a record that
 * contradicts itself is rejected at the wire with `PEER_INVALID`.
 */
import { createHash } from 'node:crypto';
import { LockstepError } from '../base/errors.js';
import { parseDeviceId } from '../core/device-id.js';
import { DEFAULT_CDC } from '../core/fastcdc.js';
import { MAX_PATH_LENGTH, MAX_NAME_LENGTH, peerPathProblem } from '../core/path.js';
import { HASH_ALGORITHM, type Chunk, type EntryType, type FileRecord } from '../core/record.js';
import { applyChunkOps, diffChunks, opsChunkCount, type ChunkOp } from '../core/chunk-delta.js';
import { checkVector, type Vector } from '../core/vector.js';

/** The protocol version carried by `hello`; a peer with another one is refused. */
export const PROTOCOL_VERSION = 1;
/** The largest frame body accepted, in bytes. */
export const MAX_FRAME_BYTES = 16 * 1024 * 1024;
/** The most records one `records` message may carry. */
export const MAX_RECORDS_PER_MESSAGE = 5000;
/** The most chunk hashes one chunk request may ask for. */
export const MAX_CHUNK_REQUEST = 1024;
/** The longest path or symlink target accepted from a peer, in UTF-8 bytes (Linux PATH_MAX). */
export const MAX_PATH_BYTES = MAX_PATH_LENGTH;
/** The longest name (path segment) accepted from a peer, in UTF-8 bytes (Linux NAME_MAX). */
export const MAX_NAME_BYTES = MAX_NAME_LENGTH;

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
export const MAX_RECORD_CHUNKS = 250_000;
export const MAX_MESSAGE_CHUNKS = 1_000_000;

/** What decoding one message may still spend on chunk entries. */
export interface ChunkBudget {
  chunks: number;
}

/** Sent first by the serving side of an index stream. */
export interface HelloMessage {
  readonly type: 'hello';
  readonly protocol: typeof PROTOCOL_VERSION;
  readonly hashAlgorithm: typeof HASH_ALGORITHM;
  /** Names the sender's index (1 to 64 of `A-Z a-z 0-9 _ -`); a new one means start over. */
  readonly indexId: string;
  /** The sender's device ID, canonical form. */
  readonly deviceId: string;
  /** The last sequence number the sender issued. */
  readonly sequence: number;
  /** The device the sender takes as lock authority; devices compare choices. */
  readonly lockAuthority: string;
}

/** The backlog has been sent; live updates follow as more `records` messages. */
export interface CaughtUpMessage {
  readonly type: 'caughtUp';
  readonly sequence: number;
}

/** Records to send (see {@link encodeIndexMessage}). */
export interface RecordsMessage {
  readonly type: 'records';
  readonly records: readonly FileRecord[];
}

/** A record a peer sent that failed {@link fromWire}. */
export interface RejectedRecord {
  /** The record's path when it was a string: verbatim and untrusted (may be long or malformed). */
  readonly path?: string;
  /** Why it was rejected; quotes the path safely. */
  readonly reason: string;
}

/** Records received: the good ones, and a reason for each bad one. */
export interface DecodedRecordsMessage {
  readonly type: 'records';
  readonly records: FileRecord[];
  readonly rejected: RejectedRecord[];
}

/** A message of the index stream, as sent. */
export type OutgoingIndexMessage = HelloMessage | RecordsMessage | CaughtUpMessage;
/** A message of the index stream, as decoded. */
export type IndexMessage = HelloMessage | DecodedRecordsMessage | CaughtUpMessage;

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
const HASH_RE = /^[0-9a-f]{64}$/;
const DIGEST_RE = /^[0-9a-f]{32}$/;
const MTIME_RE = /^-?\d{1,20}$/;
const SHORT_ID_RE = /^[A-Z2-7]{7}$/;
const INDEX_ID_RE = /^[A-Za-z0-9_-]{1,64}$/;
const MTIME_LIMIT = 2n ** 63n;
/** How much of a peer's string goes into an error message. */
const QUOTE_CHARS = 200;

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
  checkFields(value, delta ? WIRE_FIELDS_DELTA : WIRE_FIELDS, (problem) =>
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

/**
 * Encodes an index stream message as a frame; records go out in their wire
 * form.
 *
 * @throws RangeError if it carries more than {@link MAX_RECORDS_PER_MESSAGE}
 *   records or its frame would exceed {@link MAX_FRAME_BYTES}: split it first
 */
export function encodeIndexMessage(msg: OutgoingIndexMessage): Buffer {
  if (msg.type !== 'records') return encodeFrame(msg);
  if (msg.records.length > MAX_RECORDS_PER_MESSAGE) {
    throw new RangeError(
      `A records message may carry at most ${MAX_RECORDS_PER_MESSAGE} records, got ${msg.records.length}`,
    );
  }
  return encodeFrame({ type: 'records', records: msg.records.map(toWire) });
}

/**
 * Checks a decoded index stream message. The envelope must be exact (known
 * type, the expected fields and no others, our protocol version and hash
 * algorithm, at most {@link MAX_RECORDS_PER_MESSAGE} records); each record
 * is checked on its own with {@link fromWire}, so one bad record is listed in
 * `rejected` and the others still count.
 *
 * Records may carry chunk deltas only when `resolveBase` is given.
 *
 * @throws LockstepError `PEER_INVALID` for a malformed envelope
 * @throws DeltaBaseMissing when a record's delta base is not held here
 */
export function decodeIndexMessage(value: unknown, resolveBase?: BaseResolver): IndexMessage {
  if (!isPlainObject(value)) throw messageError(`must be an object, got ${show(value)}`);
  switch (value.type) {
    case 'hello': {
      checkFields(
        value,
        ['type', 'protocol', 'hashAlgorithm', 'indexId', 'deviceId', 'sequence', 'lockAuthority'],
        messageError,
      );
      const { protocol, hashAlgorithm, indexId, deviceId, sequence, lockAuthority } = value;
      if (protocol !== PROTOCOL_VERSION) {
        throw messageError(
          `hello: protocol ${show(protocol)} is not supported (this device speaks ${PROTOCOL_VERSION})`,
        );
      }
      if (hashAlgorithm !== HASH_ALGORITHM) {
        throw messageError(
          `hello: hash algorithm ${show(hashAlgorithm)} is not supported (this device uses ${HASH_ALGORITHM})`,
        );
      }
      if (typeof indexId !== 'string' || !INDEX_ID_RE.test(indexId)) {
        throw messageError(
          `hello: indexId must be 1 to 64 of A-Z a-z 0-9 _ -, got ${show(indexId)}`,
        );
      }
      if (typeof deviceId !== 'string' || !isCanonicalDeviceId(deviceId)) {
        throw messageError(`hello: deviceId must be a device ID, got ${show(deviceId)}`);
      }
      if (typeof lockAuthority !== 'string' || !isCanonicalDeviceId(lockAuthority)) {
        throw messageError(`hello: lockAuthority must be a device ID, got ${show(lockAuthority)}`);
      }
      return {
        type: 'hello',
        protocol,
        hashAlgorithm,
        indexId,
        deviceId,
        sequence: checkSequence(sequence, 'hello'),
        lockAuthority,
      };
    }
    case 'caughtUp':
      checkFields(value, ['type', 'sequence'], messageError);
      return { type: 'caughtUp', sequence: checkSequence(value.sequence, 'caughtUp') };
    case 'records': {
      checkFields(value, ['type', 'records'], messageError);
      const list = value.records;
      if (!Array.isArray(list)) {
        throw messageError(`records: records must be an array, got ${show(list)}`);
      }
      if (list.length > MAX_RECORDS_PER_MESSAGE) {
        throw messageError(
          `records: carries ${list.length} records, more than ${MAX_RECORDS_PER_MESSAGE}`,
        );
      }
      const records: FileRecord[] = [];
      const rejected: RejectedRecord[] = [];
      const budget: ChunkBudget = { chunks: MAX_MESSAGE_CHUNKS };
      for (const item of list as unknown[]) {
        try {
          records.push(fromWire(item, resolveBase, budget));
        } catch (err) {
          if (!(err instanceof LockstepError)) throw err;
          const path = isPlainObject(item) ? stringOr(item.path) : undefined;
          rejected.push(
            path === undefined ? { reason: err.message } : { path, reason: err.message },
          );
        }
      }
      return { type: 'records', records, rejected };
    }
    default:
      throw messageError(`unknown type ${show(value.type)}`);
  }
}

/**
 * Checks a chunk request, `{ hashes: [...] }`: 1 to {@link MAX_CHUNK_REQUEST}
 * hashes of 64 lowercase hex characters.
 *
 * @returns the requested hashes, in order
 * @throws LockstepError `PEER_INVALID` naming the problem
 */
export function decodeChunkRequest(value: unknown): string[] {
  return decodeChunkFetch(value).hashes;
}

/** Where the asking device expects a chunk on the serving device: path, offset, length. */
export type ChunkHint = readonly [path: string, offset: number, length: number];

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

/**
 * Encodes a JSON value as a frame: a u32 big-endian body length, then the
 * body, UTF-8 JSON.
 *
 * @throws RangeError if the body would exceed `maxBytes`, since the peer would refuse it
 * @throws TypeError if the value has no JSON form (undefined, a function, a bigint)
 */
export function encodeFrame(value: unknown, maxBytes = MAX_FRAME_BYTES): Buffer {
  const json = JSON.stringify(value) as string | undefined;
  if (json === undefined) throw new TypeError('Cannot frame a value that has no JSON form');
  const length = Buffer.byteLength(json);
  if (length > maxBytes) {
    throw new RangeError(`Frame of ${length} bytes exceeds the limit of ${maxBytes} bytes`);
  }
  const frame = Buffer.allocUnsafe(4 + length);
  frame.writeUInt32BE(length, 0);
  frame.write(json, 4, 'utf8');
  return frame;
}

/**
 * Splits a byte stream into frames and decodes each one's JSON. Keeps
 * incomplete data across pushes without copying it until the frame is
 * complete, then joins its pieces once.
 *
 * After an error the stream is out of step for good: every later push
 * throws the same error.
 */
export class FrameDecoder {
  private readonly maxBytes: number;
  private readonly utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  /** Received bytes not yet consumed; the first may be partly consumed (see `skip`). */
  private pieces: Uint8Array[] = [];
  private skip = 0;
  private held = 0;
  /** The body length of the frame being read, once its header is complete. */
  private bodyLength: number | undefined;
  private failed: LockstepError | undefined;

  /** @param maxBytes - the largest frame body accepted, in bytes */
  constructor(maxBytes = MAX_FRAME_BYTES) {
    this.maxBytes = maxBytes;
  }

  /** Bytes held of an incomplete frame (0 between frames). */
  get buffered(): number {
    return this.held + (this.bodyLength === undefined ? 0 : 4);
  }

  /**
   * Adds received bytes. The decoder may keep references to `data` until its
   * frame is complete: do not modify it afterwards.
   *
   * @returns every frame completed by these bytes, decoded, in order
   * @throws LockstepError `PEER_INVALID` for a declared length above the
   *   limit (refused before any of its body is buffered), a body that is not
   *   valid UTF-8, or not valid JSON
   */
  push(data: Uint8Array): unknown[] {
    if (this.failed !== undefined) throw this.failed;
    if (data.length > 0) {
      this.pieces.push(data);
      this.held += data.length;
    }
    const out: unknown[] = [];
    try {
      for (;;) {
        if (this.bodyLength === undefined) {
          if (this.held < 4) break;
          const header = this.take(4);
          const length = new DataView(header.buffer, header.byteOffset, 4).getUint32(0);
          if (length > this.maxBytes) {
            throw new LockstepError(
              'PEER_INVALID',
              `Peer frame: declared length ${length} bytes exceeds the limit of ${this.maxBytes} bytes`,
            );
          }
          this.bodyLength = length;
        }
        if (this.held < this.bodyLength) break;
        const body = this.take(this.bodyLength);
        this.bodyLength = undefined;
        out.push(this.decode(body));
      }
    } catch (err) {
      if (err instanceof LockstepError) {
        this.failed = err;
        this.pieces = [];
        this.held = 0;
        this.skip = 0;
        this.bodyLength = undefined;
      }
      throw err;
    }
    return out;
  }

  private decode(body: Uint8Array): unknown {
    let text: string;
    try {
      text = this.utf8.decode(body);
    } catch (err) {
      throw new LockstepError('PEER_INVALID', 'Peer frame: body is not valid UTF-8', {
        cause: err,
      });
    }
    try {
      return JSON.parse(text) as unknown;
    } catch (err) {
      throw new LockstepError(
        'PEER_INVALID',
        `Peer frame: body is not valid JSON (${(err as Error).message})`,
        { cause: err },
      );
    }
  }

  /** Removes and returns the next `n` bytes (the caller checked `held >= n`). */
  private take(n: number): Uint8Array {
    if (n === 0) return new Uint8Array(0);
    this.held -= n;
    const first = this.pieces[0] as Uint8Array;
    if (first.length - this.skip >= n) {
      const view = first.subarray(this.skip, this.skip + n);
      this.skip += n;
      if (this.skip === first.length) {
        this.pieces.shift();
        this.skip = 0;
      }
      return view;
    }
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const piece = this.pieces[0] as Uint8Array;
      const count = Math.min(piece.length - this.skip, n - filled);
      out.set(piece.subarray(this.skip, this.skip + count), filled);
      filled += count;
      this.skip += count;
      if (this.skip === piece.length) {
        this.pieces.shift();
        this.skip = 0;
      }
    }
    return out;
  }
}

/**
 * Decodes the frames of a byte stream as they arrive.
 *
 * @throws LockstepError `PEER_INVALID` for a bad frame (see
 *   {@link FrameDecoder.push}) or a stream that ends in the middle of a frame
 */
export async function* readFrames(
  source: AsyncIterable<Uint8Array>,
  maxBytes = MAX_FRAME_BYTES,
): AsyncGenerator<unknown> {
  const decoder = new FrameDecoder(maxBytes);
  for await (const data of source) yield* decoder.push(data);
  if (decoder.buffered > 0) {
    throw new LockstepError(
      'PEER_INVALID',
      `Peer stream ended in the middle of a frame (${decoder.buffered} bytes unread)`,
    );
  }
}

function isCanonicalDeviceId(s: string): boolean {
  try {
    return parseDeviceId(s) === s;
  } catch {
    return false;
  }
}

function checkSequence(value: unknown, type: string): number {
  if (!isSafeInteger(value) || value < 0) {
    throw messageError(`${type}: sequence must be a non-negative integer, got ${show(value)}`);
  }
  return value;
}

/** Throws `bad(problem)` unless `value` has exactly the fields `names`. */
function checkFields(
  value: Record<string, unknown>,
  names: readonly string[],
  bad: (problem: string) => LockstepError,
): void {
  const missing = names.filter((n) => !Object.hasOwn(value, n));
  if (missing.length > 0) throw bad(`missing field ${missing.join(', ')}`);
  const keys = Object.keys(value);
  if (keys.length === names.length) return;
  const extra = keys.filter((k) => !names.includes(k));
  const shown = extra.slice(0, 5).map(quote).join(', ');
  throw bad(`unknown field ${shown}${extra.length > 5 ? ` and ${extra.length - 5} more` : ''}`);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function isSafeInteger(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v);
}

function stringOr(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** Quotes a peer's string for a message: escaped, cut to {@link QUOTE_CHARS}. */
function quote(s: string): string {
  return s.length > QUOTE_CHARS ? `${JSON.stringify(s.slice(0, QUOTE_CHARS))}…` : JSON.stringify(s);
}

/** Describes a peer's value briefly for a message. */
function show(v: unknown): string {
  if (typeof v === 'string') return quote(v);
  if (v === undefined) return 'nothing';
  if (v === null || typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return `an array of ${v.length}`;
  return `a ${typeof v}`;
}

function recordError(path: string | undefined, problem: string): LockstepError {
  const where = path === undefined ? 'Peer record' : `Peer record ${quote(path)}`;
  return new LockstepError('PEER_INVALID', `${where}: ${problem}`);
}

function messageError(problem: string): LockstepError {
  return new LockstepError('PEER_INVALID', `Peer index message: ${problem}`);
}

/**
 * Encoding of index records to and from SQLite rows.
 */
import type { Chunk, EntryType, FileRecord } from '../core/record.js';
import { checkVector } from '../core/vector.js';
import { LockstepError } from '../base/errors.js';

/** One row of the `files` table, as better-sqlite3 returns it. */
export interface FileRow {
  id: number;
  device: number;
  path: string;
  type: number;
  size: number;
  mtime_s: number;
  mtime_ns: number;
  mode: number;
  inode: number;
  target: string;
  chunks: Buffer;
  version: string;
  deleted: number;
  sequence: number;
  modified_by: string;
  /** The version's fencing token (0: none). */
  token: number;
}

const TYPES: readonly EntryType[] = ['file', 'directory', 'symlink'];
const HASH_BYTES = 32;
const CHUNK_ENTRY = 4 + HASH_BYTES;
const NS_PER_S = 1_000_000_000n;

/** Packs a chunk list: per chunk a u32 big-endian length and the 32-byte hash. */
export function packChunks(chunks: readonly Chunk[]): Buffer {
  const buf = Buffer.allocUnsafe(chunks.length * CHUNK_ENTRY);
  chunks.forEach((c, i) => {
    const at = i * CHUNK_ENTRY;
    buf.writeUInt32BE(c.length, at);
    if (buf.write(c.hash, at + 4, HASH_BYTES, 'hex') !== HASH_BYTES) {
      throw new TypeError(`Chunk hash must be ${HASH_BYTES * 2} hex characters, got "${c.hash}"`);
    }
  });
  return buf;
}

/** Unpacks {@link packChunks}; offsets are the running sum of lengths. */
export function unpackChunks(buf: Uint8Array): Chunk[] {
  if (buf.length % CHUNK_ENTRY !== 0) {
    throw new LockstepError(
      'INDEX_INVALID',
      `Chunk list of ${buf.length} bytes is not a multiple of ${CHUNK_ENTRY}`,
    );
  }
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.length);
  const out: Chunk[] = [];
  let offset = 0;
  for (let at = 0; at < b.length; at += CHUNK_ENTRY) {
    const length = b.readUInt32BE(at);
    out.push({ offset, length, hash: b.toString('hex', at + 4, at + CHUNK_ENTRY) });
    offset += length;
  }
  return out;
}

/** Splits nanoseconds since the epoch into whole seconds and the rest. */
export function splitNs(ns: bigint): { s: number; ns: number } {
  let s = ns / NS_PER_S;
  let rest = ns % NS_PER_S;
  if (rest < 0n) {
    rest += NS_PER_S;
    s -= 1n;
  }
  return { s: Number(s), ns: Number(rest) };
}

/** Converts a row to a record, checking what a corrupt database could break. */
export function rowToRecord(row: FileRow): FileRecord {
  const type = TYPES[row.type];
  if (type === undefined)
    throw new LockstepError(
      'INDEX_INVALID',
      `Index row for ${row.path} has unknown type ${row.type}`,
    );
  return {
    path: row.path,
    type,
    size: row.size,
    mtimeNs: BigInt(row.mtime_s) * NS_PER_S + BigInt(row.mtime_ns),
    mode: row.mode,
    inode: row.inode,
    target: row.target,
    chunks: unpackChunks(row.chunks),
    version: checkVector(JSON.parse(row.version)),
    deleted: row.deleted !== 0,
    sequence: row.sequence,
    modifiedBy: row.modified_by,
    // Left out when 0, like a record that never had one.
    ...(row.token !== 0 ? { token: row.token } : {}),
  };
}

/** Converts a record to named statement parameters (without id and device). */
export function recordToParams(r: FileRecord): Record<string, unknown> {
  const t = splitNs(r.mtimeNs);
  return {
    path: r.path,
    type: TYPES.indexOf(r.type),
    size: r.size,
    mtime_s: t.s,
    mtime_ns: t.ns,
    mode: r.mode,
    inode: r.inode,
    target: r.target,
    chunks: packChunks(r.chunks),
    version: JSON.stringify(r.version),
    deleted: r.deleted ? 1 : 0,
    sequence: r.sequence,
    modified_by: r.modifiedBy,
    token: r.token ?? 0,
  };
}

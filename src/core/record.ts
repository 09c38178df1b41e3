/**
 * The index record: what a device knows about one path of the folder.
 */
import type { Vector } from './vector.js';

/** The kinds of entry in the folder. */
export type EntryType = 'file' | 'directory' | 'symlink';

/** One content-defined chunk of a file. */
export interface Chunk {
  /** Offset of the chunk in the file, in bytes. */
  readonly offset: number;
  /** Length in bytes (1 to the chunker's maximum). */
  readonly length: number;
  /** Hash of the chunk's bytes (see {@link HASH_ALGORITHM}), 32 bytes, hex. */
  readonly hash: string;
}

/** The chunk hash algorithm; carried by the protocol so peers can check it. */
export const HASH_ALGORITHM = 'blake3';

/** The record of one path in a device's index. */
export interface FileRecord {
  /** Folder-relative path, `/`-separated, NFC as found on disk, never empty. */
  readonly path: string;
  readonly type: EntryType;
  /** Size in bytes (0 for directories and tombstones; link target length for symlinks). */
  readonly size: number;
  /** Modification time in nanoseconds since the Unix epoch. */
  readonly mtimeNs: bigint;
  /** Permission bits (`mode & 0o7777`). */
  readonly mode: number;
  /** Chunks of a file, in order; empty for other types and for tombstones. */
  readonly chunks: readonly Chunk[];
  /** Symlink target, verbatim; empty for other types. */
  readonly target: string;
  /** The record's version. */
  readonly version: Vector;
  /** True when the path was deleted (a tombstone). */
  readonly deleted: boolean;
  /** The local sequence number at which this record last changed. */
  readonly sequence: number;
  /** Inode number on the local disk (change detection only; 0 when unknown). */
  readonly inode: number;
  /** Short ID of the device that made this version ('' when unknown); breaks conflict ties. */
  readonly modifiedBy: string;
  /**
   * The fencing token of the lock this version was written under: set when
   * the device that made it held the path's lock (as its replica knew it);
   * absent (or 0) for a version written without a lock. Between concurrent
   * versions the larger token wins (see `winsConflict`), and a device that
   * knows a later grant refuses a version with a smaller one (`lockVerdict`).
   */
  readonly token?: number;
}

/** A record's fencing token: 0 when it carries none. */
export function tokenOf(r: FileRecord): number {
  return r.token ?? 0;
}

/** `r` carrying fencing token `token` (0: none; the field is then left out). */
export function withToken(r: FileRecord, token: number): FileRecord {
  const { token: _old, ...rest } = r;
  return token === 0 ? rest : { ...rest, token };
}

/** Reports whether two records describe the same content (type, data, target, mode's exec bit). */
export function sameContent(a: FileRecord, b: FileRecord): boolean {
  if (a.deleted !== b.deleted || a.type !== b.type) return false;
  if (a.deleted) return true;
  if (a.type === 'symlink') return a.target === b.target;
  if (a.type === 'directory') return true;
  if (a.size !== b.size || a.chunks.length !== b.chunks.length) return false;
  if ((a.mode & 0o111) !== (b.mode & 0o111)) return false;
  return a.chunks.every((c, i) => c.hash === b.chunks[i]?.hash && c.length === b.chunks[i]?.length);
}

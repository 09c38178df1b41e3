/**
 * Deciding what a local observation means for the index: the pure half of the
 * scanner. Given the record the index holds and what is on disk now, say
 * whether nothing changed, only local bookkeeping changed (no new version), or
 * the path changed and needs a new version and sequence number.
 */
import type { Chunk, EntryType, FileRecord } from './record.js';
import { update } from './vector.js';

/** What the scanner saw on disk for one path. */
export interface Observed {
  readonly type: EntryType;
  readonly size: number;
  readonly mtimeNs: bigint;
  readonly mode: number;
  readonly inode: number;
  /** Chunks for a file (already hashed); empty otherwise. */
  readonly chunks: readonly Chunk[];
  /** Symlink target; '' otherwise. */
  readonly target: string;
}

/**
 * The outcome of comparing an observation with the index.
 * - `none`: nothing to record.
 * - `silent`: update local-only fields (inode, non-exec permission bits,
 *   directory mtime) without a new version: these are not synced.
 * - `bump`: a real change: new version, next sequence number.
 */
export type LocalOutcome = 'none' | 'silent' | 'bump';

/** Permission bits that are synced: the executable bits. Others (e.g. the
 * read-only state that lock enforcement sets) stay local. */
const SYNCED_MODE_BITS = 0o111;

/**
 * Compares the indexed record `old` with the observation `seen` (`null` when
 * the path is gone from disk).
 */
export function classify(old: FileRecord | undefined, seen: Observed | null): LocalOutcome {
  if (seen === null) {
    // Gone from disk: only a live record turns into a tombstone.
    return old !== undefined && !old.deleted ? 'bump' : 'none';
  }
  if (old === undefined || old.deleted || old.type !== seen.type) return 'bump';
  if ((old.mode & SYNCED_MODE_BITS) !== (seen.mode & SYNCED_MODE_BITS)) return 'bump';
  switch (seen.type) {
    case 'file':
      if (
        old.size !== seen.size ||
        old.mtimeNs !== seen.mtimeNs ||
        !sameChunks(old.chunks, seen.chunks)
      ) {
        return 'bump';
      }
      break;
    case 'symlink':
      if (old.target !== seen.target) return 'bump';
      break;
    case 'directory':
      // A directory's mtime moves whenever an entry inside changes; the
      // entries carry those changes, so the directory's own mtime is local.
      break;
  }
  if (old.inode !== seen.inode || old.mode !== seen.mode || old.mtimeNs !== seen.mtimeNs)
    return 'silent';
  return 'none';
}

/**
 * Builds the record to store for an observation. For `bump`, the version gets
 * `device`'s counter incremented and the record takes `sequence`; for
 * `silent`, version and sequence are kept.
 */
export function nextRecord(
  path: string,
  old: FileRecord | undefined,
  seen: Observed | null,
  outcome: Exclude<LocalOutcome, 'none'>,
  device: string,
  sequence: number,
): FileRecord {
  const version = outcome === 'bump' ? update(old?.version ?? {}, device) : (old?.version ?? {});
  const seq = outcome === 'bump' ? sequence : (old?.sequence ?? sequence);
  if (seen === null) {
    if (old === undefined) throw new Error(`cannot make a tombstone for unknown path ${path}`);
    return {
      ...old,
      size: 0,
      chunks: [],
      target: '',
      deleted: true,
      version,
      sequence: seq,
      inode: 0,
      modifiedBy: outcome === 'bump' ? device : old.modifiedBy,
    };
  }
  return {
    path,
    type: seen.type,
    size: seen.type === 'directory' ? 0 : seen.size,
    mtimeNs: seen.mtimeNs,
    mode: seen.mode & 0o7777,
    inode: seen.inode,
    chunks: seen.type === 'file' ? seen.chunks : [],
    target: seen.type === 'symlink' ? seen.target : '',
    version,
    deleted: false,
    sequence: seq,
    modifiedBy: outcome === 'bump' ? device : (old?.modifiedBy ?? device),
  };
}

function sameChunks(a: readonly Chunk[], b: readonly Chunk[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    if (a[i]?.hash !== b[i]?.hash || a[i]?.length !== b[i]?.length) return false;
  }
  return true;
}

/**
 * Planning sync: given this device's record of a path and every peer's
 * record of it, decide the global winner and what this device must do to
 * hold it. Pure: data in, data out; the puller does the I/O.
 */
import { conflictName } from './conflict-name.js';
import { sameContent, tokenOf, type FileRecord } from './record.js';
import { compare, merge, type Vector } from './vector.js';

/** Chosen in one place (see conflict-name.ts); re-exported for the planner's callers. */
export { conflictName } from './conflict-name.js';

/** One device's record of a path. */
export interface Candidate {
  /** The device's short ID. */
  readonly device: string;
  readonly record: FileRecord;
}

/**
 * What this device must do for one path. Every action but `none` ends with
 * the local record taking `version` (the winner's, merged with what this
 * device had) and the winner's content.
 * - `version`: the content is already here; record the new version only.
 * - `tombstone`: the winner is a delete and nothing is here; record it.
 * - `delete`: remove the local file, link or (empty) directory.
 * - `mkdir`, `symlink`: create the directory or link.
 * - `chmod`: same data, only the executable bit differs.
 * - `pull`: fetch the chunks this device has nowhere locally from `sources`
 *   and assemble the file.
 * With `conflictCopy`, the local entry lost a conflict: it is first moved to
 * that path (which then syncs like any file) and the winner takes its place.
 */
export type Action =
  | { readonly kind: 'none' }
  | {
      readonly kind: 'version' | 'tombstone' | 'delete' | 'mkdir' | 'symlink' | 'chmod' | 'pull';
      readonly record: FileRecord;
      readonly version: Vector;
      /** Devices holding the winner's content (for `pull`). */
      readonly sources: readonly string[];
      readonly conflictCopy?: string;
    };

/**
 * Between two records with concurrent versions, reports whether `a` wins:
 * an edit beats a delete, then the version written under the later lock
 * grant (the larger fencing token: a holder whose lock expired or was
 * forced while it was paused or cut off wrote under an older grant, and
 * that write loses, even after the lock has ended), then the newer mtime,
 * then the larger device ID that made the version (and, for determinism,
 * the larger vector text). The loser is kept as a conflict copy.
 */
export function winsConflict(a: FileRecord, b: FileRecord): boolean {
  if (a.deleted !== b.deleted) return !a.deleted;
  if (tokenOf(a) !== tokenOf(b)) return tokenOf(a) > tokenOf(b);
  if (a.mtimeNs !== b.mtimeNs) return a.mtimeNs > b.mtimeNs;
  if (a.modifiedBy !== b.modifiedBy) return a.modifiedBy > b.modifiedBy;
  return JSON.stringify(a.version) > JSON.stringify(b.version);
}

/**
 * The global winner among records of one path: a record whose version
 * dominates, or among concurrent ones the one that {@link winsConflict}.
 */
export function winner(records: readonly FileRecord[]): FileRecord | undefined {
  let best: FileRecord | undefined;
  for (const r of records) {
    if (best === undefined) {
      best = r;
      continue;
    }
    const o = compare(r.version, best.version);
    if (o === 'greater' || (o === 'concurrent' && winsConflict(r, best))) best = r;
  }
  return best;
}

/**
 * Plans what this device does for one path, from its own record (`local`,
 * undefined if it never saw the path) and the peers' records.
 */
export function planPath(local: FileRecord | undefined, remotes: readonly Candidate[]): Action {
  const w = winner([...(local ? [local] : []), ...remotes.map((c) => c.record)]);
  if (w === undefined) return { kind: 'none' };
  const sources = remotes
    .filter((c) => !c.record.deleted && sameContent(c.record, w))
    .map((c) => c.device);
  if (local === undefined) {
    return { kind: w.deleted ? 'tombstone' : kindFor(w), record: w, version: w.version, sources };
  }
  const o = compare(local.version, w.version);
  if (o === 'equal' || o === 'greater') return { kind: 'none' };
  const version = merge(local.version, w.version);
  if (sameContent(local, w)) return { kind: 'version', record: w, version, sources };
  if (w.deleted) {
    // Only a dominating delete can win (an edit beats a concurrent delete).
    return { kind: local.deleted ? 'tombstone' : 'delete', record: w, version, sources };
  }
  const base = { record: w, version, sources };
  if (o === 'concurrent' && !local.deleted) {
    return {
      kind: kindFor(w),
      ...base,
      conflictCopy: conflictName(local.path, local.mtimeNs, local.modifiedBy),
    };
  }
  if (
    !local.deleted &&
    local.type === 'file' &&
    w.type === 'file' &&
    sameContent(local, { ...w, mode: local.mode })
  ) {
    return { kind: 'chmod', ...base };
  }
  return { kind: kindFor(w), ...base };
}

function kindFor(w: FileRecord): 'mkdir' | 'symlink' | 'pull' {
  return w.type === 'directory' ? 'mkdir' : w.type === 'symlink' ? 'symlink' : 'pull';
}

/**
 * The puller's half of the lock rules: what a planned change of a locked
 * path is (for {@link lockVerdict}, which decides), and the steps that keep
 * a refused version on the holder's device. Pure but for reading the index.
 */
import { lockVerdict, type LockVerdict } from '../core/lock-rules.js';
import { conflictCopyName } from '../core/conflict-name.js';
import type { Action, Candidate } from '../core/plan.js';
import { sameContent, tokenOf, withToken, type FileRecord } from '../core/record.js';
import { dominates, merge, update } from '../core/vector.js';
import type { IndexStore } from '../store/index-store.js';

/** The lock on a path, as the puller needs it. */
export interface PathLock {
  /** Short ID of the device where the holder works. */
  readonly holder: string;
  /** The grant's fencing token. */
  readonly token: number;
}

/** A planned change (not `none`). */
export type Planned = Exclude<Action, { kind: 'none' }>;

/** One planned change: the plan's action for a path, with what it was planned from. */
export type Step = Planned & {
  readonly path: string;
  /** The local record the plan was made from. */
  readonly local: FileRecord | undefined;
  /** When it was planned (performance.now()), for the time a sync took. */
  readonly planned: number;
  /** For a copy kept of a refused version: the locked path it was refused for. */
  readonly refusedFor?: string;
};

/** What the lock rules say of applying plan `a` to a path under `lock`. */
export function verdictOf(
  self: string,
  lock: PathLock,
  a: Planned,
  local: FileRecord | undefined,
  remotes: readonly Candidate[],
): LockVerdict {
  return lockVerdict({
    origin: 'remote',
    lock: lock.holder === self ? 'here' : 'elsewhere',
    versionOnly: a.kind === 'version',
    madeByHolder: a.record.modifiedBy === lock.holder,
    holderHasSeen: holderHas(self, lock.holder, a.record, local, remotes),
    token: tokenOf(a.record),
    lockToken: lock.token,
  });
}

/**
 * Whether the device where a lock's holder works (`holder`) has seen
 * version `w` of the locked path, as far as this device knows: then `w` is
 * the holder's to keep, whoever made it. A holder's device with no live
 * record of the path has nothing to protect.
 */
function holderHas(
  self: string,
  holder: string,
  w: FileRecord,
  local: FileRecord | undefined,
  remotes: readonly Candidate[],
): boolean {
  if (holder === self) {
    return local === undefined || local.deleted || dominates(local.version, w.version);
  }
  const theirs = remotes.find((c) => c.device === holder)?.record;
  return theirs !== undefined && dominates(theirs.version, w.version);
}

/**
 * The step that keeps a refused version `a` of `path` on the holder's
 * device (this one, holding `lock`): first its content as a conflict copy
 * beside the path (named by the version's mtime and device; the path is
 * planned again once the copy is recorded), then this device's own content
 * recorded again, under the lock's token, with a version that dominates
 * the refused one: that brings the holder's content back everywhere.
 */
export function keepRefused(
  store: IndexStore,
  path: string,
  a: Planned,
  lock: PathLock,
  local: FileRecord,
): Step {
  const w = a.record;
  if (!w.deleted && w.type === 'file') {
    // The first name free, or holding this very content (then it is kept already).
    const copy = conflictCopyName(path, w.mtimeNs, w.modifiedBy, (name) => {
      const t = store.get(name);
      return t !== undefined && !t.deleted && !sameContent(t, w);
    });
    const there = store.get(copy);
    if (there === undefined || there.deleted) {
      return {
        ...a,
        kind: 'pull',
        // A new file made here: a version of its own (the refused one's
        // belongs to another path, and could supersede a file another
        // device made under the same name), and no lock's token.
        record: withToken({ ...w, path: copy, modifiedBy: store.localShort }, 0),
        version: update(there?.version ?? {}, store.localShort),
        path: copy,
        local: there,
        planned: performance.now(),
        refusedFor: path,
      };
    }
  }
  return {
    kind: 'version',
    record: withToken({ ...local, modifiedBy: store.localShort }, lock.token),
    version: update(merge(local.version, w.version), store.localShort),
    sources: [],
    path,
    local,
    planned: performance.now(),
  };
}

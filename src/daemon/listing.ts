/**
 * The merged listing clients see: the global view of a directory, of
 * everything below it, or of one path, with each entry's lock, holders and
 * transfer progress, sorted and paged.
 */
import type { ClientBackend, ListEntry, ListPage, ListQuery } from '../api/backend.js';
import { globalEntry, type HeldRecord } from '../core/global-view.js';
import type { LockRow } from '../core/lock-rules.js';
import { coveringLock } from '../core/lock-scope.js';
import type { GlobalViewReader } from '../store/global-view.js';
import type { DeviceRefs } from './client-refs.js';

/** A conflict copy's name: `NAME.conflict-YYYYMMDD-HHMMSS-ID[-N][.EXT]` (`-N` when the first name was taken). */
const CONFLICT_RE = /\.conflict-\d{8}-\d{6}-[A-Z2-7]{7}(-\d+)?(\.[^./]*)?$/;

/** What the listing reads of this device's copy of the lock table. */
export interface ListingLocks {
  /** The lock on `path`, if any. */
  get(path: string): LockRow | undefined;
  /** Every lock (they are few: a listing reads them once). */
  all(): LockRow[];
}

/** Where a {@link Listing} reads from. */
export interface ListingOptions {
  readonly view: GlobalViewReader;
  readonly locks: ListingLocks;
  /** Transfers in progress on this device, by path. */
  readonly progress: ReadonlyMap<string, { readonly done: number; readonly total: number }>;
  readonly refs: DeviceRefs;
}

/** The listing methods of a {@link ClientBackend}. */
export type Listing = Pick<ClientBackend, 'list' | 'listText' | 'file'>;

/** Builds the listing of a running device from its index's global view. */
export function createListing(o: ListingOptions): Listing {
  /** The entry clients see for one path's records, if the path exists in the global view. */
  const entryOf = (
    rows: readonly HeldRecord[],
    lockOf: (path: string) => LockRow | undefined,
  ): ListEntry | undefined => {
    const g = globalEntry(rows);
    if (g === undefined) return undefined;
    const w = g.record;
    const path = w.path;
    const lock = lockOf(path); // its own, or a directory lock above it
    const p = o.progress.get(path);
    return {
      name: path.slice(path.lastIndexOf('/') + 1),
      path,
      type: w.type,
      size: w.type === 'directory' ? 0 : w.size,
      modified: new Date(Number(w.mtimeNs / 1_000_000n)).toISOString(),
      lock: lock ? o.refs.lock(lock) : null,
      devices: g.holders.map((id) => o.refs.cached(id)),
      syncing: p ? { done: p.done, total: p.total } : null,
      conflict: CONFLICT_RE.test(path),
    };
  };

  /**
   * The global view of a directory's entries (or, recursively, of everything
   * below it) in path order, streamed from SQLite one path at a time.
   */
  function* viewEntries(q: ListQuery): Generator<ListEntry> {
    const dir = q.dir.replace(/\/+$/, '');
    // Locks are few: one read for the whole listing.
    const locks = new Map(o.locks.all().map((l) => [l.path, l]));
    const lockOf = (p: string) =>
      locks.size === 0 ? undefined : coveringLock(p, (q) => locks.get(q));
    const groups = q.recursive === true ? o.view.below(dir) : o.view.inside(dir);
    for (const rows of groups) {
      const e = entryOf(rows, lockOf);
      if (e) yield e;
    }
  }

  const list = (q: ListQuery): ListPage => {
    const dir = q.dir.replace(/\/+$/, '');
    const entries = [...viewEntries(q)];
    if (q.recursive === true && q.sort === 'name') {
      // Already in path order: a tree, each directory before what it holds.
      if (q.order === 'desc') entries.reverse();
      return { dir, total: entries.length, entries: entries.slice(q.offset, q.offset + q.limit) };
    }
    const dirFirst = (a: ListEntry, b: ListEntry) =>
      Number(b.type === 'directory') - Number(a.type === 'directory');
    const key = {
      name: (a: ListEntry, b: ListEntry) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
      size: (a: ListEntry, b: ListEntry) => a.size - b.size,
      modified: (a: ListEntry, b: ListEntry) =>
        a.modified < b.modified ? -1 : a.modified > b.modified ? 1 : 0,
    }[q.sort];
    const sign = q.order === 'desc' ? -1 : 1;
    entries.sort((a, b) => dirFirst(a, b) || sign * key(a, b) || (a.path < b.path ? -1 : 1));
    return { dir, total: entries.length, entries: entries.slice(q.offset, q.offset + q.limit) };
  };

  /**
   * A recursive listing by name, as JSON text built entry by entry: the
   * entries turn into text at once and die young, instead of all living
   * until the page is serialized.
   */
  const listText = (q: ListQuery): { text: string; count: number; total: number } | undefined => {
    if (q.recursive !== true || q.sort !== 'name' || q.order !== 'asc') return undefined;
    const parts: string[] = [];
    let total = 0;
    for (const e of viewEntries(q)) {
      if (total >= q.offset && parts.length < q.limit) parts.push(JSON.stringify(e));
      total++;
    }
    const dir = q.dir.replace(/\/+$/, '');
    const text = `{"dir":${JSON.stringify(dir)},"total":${total},"entries":[${parts.join(',')}]}`;
    return { text, count: parts.length, total };
  };

  return {
    list,
    listText,
    file: (path) => entryOf(o.view.at(path), (p) => coveringLock(p, (q) => o.locks.get(q))),
  };
}

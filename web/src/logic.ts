/**
 * The page's pure logic: sorting and filtering the listing, breadcrumbs,
 * which row an event touches, sync state and error wording. No DOM here, so
 * it is tested without a browser.
 */
import type { ClientEvent, ListEntry, Status } from '../../src/api/backend.js';

/** Columns the listing sorts by. */
export type SortKey = 'name' | 'size' | 'modified' | 'lock' | 'devices';

/** How the listing is sorted. */
export interface Sort {
  readonly key: SortKey;
  readonly order: 'asc' | 'desc';
}

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });

const compareBy: Record<SortKey, (a: ListEntry, b: ListEntry) => number> = {
  name: (a, b) => collator.compare(a.name, b.name),
  size: (a, b) => a.size - b.size,
  modified: (a, b) => (a.modified < b.modified ? -1 : a.modified > b.modified ? 1 : 0),
  lock: (a, b) => collator.compare(a.lock?.owner ?? '\u{10ffff}', b.lock?.owner ?? '\u{10ffff}'),
  devices: (a, b) => a.devices.length - b.devices.length,
};

/**
 * The entries sorted by `sort`, directories first (as `lockstep ls` does),
 * ties broken by name.
 */
export function sortEntries(entries: readonly ListEntry[], sort: Sort): ListEntry[] {
  const sign = sort.order === 'desc' ? -1 : 1;
  const key = compareBy[sort.key];
  return [...entries].sort(
    (a, b) =>
      Number(b.type === 'directory') - Number(a.type === 'directory') ||
      sign * key(a, b) ||
      collator.compare(a.name, b.name),
  );
}

/** The entries whose name contains `text` (any case); all for empty text. */
export function filterEntries(entries: readonly ListEntry[], text: string): ListEntry[] {
  const t = text.trim().toLowerCase();
  if (t === '') return [...entries];
  return entries.filter((e) => e.name.toLowerCase().includes(t));
}

/** The next sort when a column's header is chosen: the same column flips, another starts ascending. */
export function nextSort(cur: Sort, key: SortKey): Sort {
  if (cur.key === key) return { key, order: cur.order === 'asc' ? 'desc' : 'asc' };
  return { key, order: 'asc' };
}

/** The breadcrumbs of a directory: the folder root, then each directory down to `dir`. */
export function crumbs(dir: string): { name: string; dir: string }[] {
  const out = [{ name: 'Folder', dir: '' }];
  if (dir === '') return out;
  const parts = dir.split('/');
  parts.forEach((name, i) => out.push({ name, dir: parts.slice(0, i + 1).join('/') }));
  return out;
}

/** The directory a location hash names: `#/docs/drafts` is `docs/drafts`; anything else the root. */
export function dirOfHash(hash: string): string {
  if (!hash.startsWith('#/')) return '';
  const parts = hash
    .slice(2)
    .split('/')
    .filter((s) => s !== '')
    .map((s) => {
      try {
        return decodeURIComponent(s);
      } catch {
        return s;
      }
    });
  if (parts.some((s) => s === '.' || s === '..')) return '';
  return parts.join('/');
}

/** The location hash of a directory. */
export function hashOfDir(dir: string): string {
  return `#/${dir.split('/').filter(Boolean).map(encodeURIComponent).join('/')}`;
}

/** The one-time sign-in code in a location hash (`#signin=CODE`), if any. */
export function signinCodeOf(hash: string): string | undefined {
  const m = /^#signin=([A-Za-z0-9_-]{1,256})$/.exec(hash);
  return m?.[1];
}

/** The path an event is about, if any. */
export function pathOf(ev: ClientEvent): string | undefined {
  switch (ev.type) {
    case 'added':
    case 'modified':
    case 'deleted':
    case 'synced':
    case 'conflict':
      return ev.path;
    case 'locked':
    case 'unlocked':
    case 'expired':
    case 'forced':
    case 'dropped':
    case 'moved':
      return ev.lock.path;
    default:
      return undefined;
  }
}

/**
 * The entry of directory `dir` that a change to `path` shows on: the path
 * itself, or the directory of `dir` it lies in; undefined when it is elsewhere.
 */
export function rowOf(dir: string, path: string): string | undefined {
  const prefix = dir === '' ? '' : `${dir}/`;
  if (!path.startsWith(prefix) || path === dir) return undefined;
  const rest = path.slice(prefix.length);
  const i = rest.indexOf('/');
  return i < 0 ? path : prefix + rest.slice(0, i);
}

/** The sync state of an entry, in words, and its progress when it is being received. */
export function syncState(
  e: ListEntry,
  status: Pick<Status, 'device' | 'peers'> | undefined,
): { text: string; progress?: number } {
  if (e.syncing !== null) {
    const p = e.syncing.total === 0 ? 1 : e.syncing.done / e.syncing.total;
    return { text: `syncing ${Math.floor(p * 100)}%`, progress: p };
  }
  if (status === undefined) return { text: '' };
  const holds = new Set(e.devices.map((d) => d.id));
  const missing = [status.device, ...status.peers].filter((d) => !holds.has(d.id));
  if (missing.length === 0) return { text: 'in sync' };
  if (missing.some((d) => d.id === status.device.id)) return { text: 'not here yet' };
  return { text: `not yet on ${missing.map((d) => d.name).join(', ')}` };
}

/** A failed request, the way the page says it. */
export function errorText(err: { code?: string; message: string }): string {
  switch (err.code) {
    case 'LOCKED':
      return `Already locked: ${err.message}`;
    case 'AUTHORITY_UNREACHABLE':
    case 'AUTHORITY_DISAGREE':
      return `Locks are unavailable right now: ${err.message}`;
    case 'NOT_LOCK_OWNER':
      return `Not your lock: ${err.message}`;
    default:
      return err.message;
  }
}

/** A time for a table cell: `HH:MM` today, else `YYYY-MM-DD HH:MM` (local time). */
export function shortTime(iso: string, now: number): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const pad = (n: number) => String(n).padStart(2, '0');
  const day = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  const t = new Date(now);
  const today = `${t.getFullYear()}-${pad(t.getMonth() + 1)}-${pad(t.getDate())}`;
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return day === today ? hm : `${day} ${hm}`;
}

// The listing over an in-memory global view: no SQLite, no devices. What
// clients see of the records: sorting, paging, locks, progress, conflicts.
import { describe, expect, it } from 'vitest';
import type { ListQuery } from '../api/backend.js';
import type { HeldRecord } from '../core/global-view.js';
import type { FileRecord } from '../core/record.js';
import type { LockRow } from '../core/lock-rules.js';
import type { GlobalViewReader } from '../store/global-view.js';
import { DeviceRefs } from './client-refs.js';
import { createListing } from './listing.js';

const A = 'AAAAAAA'.padEnd(56, 'A');
const B = 'BBBBBBB'.padEnd(56, 'B');

function rec(path: string, over: Partial<FileRecord> = {}): FileRecord {
  return {
    path,
    type: 'file',
    size: 4,
    mtimeNs: 1_700_000_000_000_000_000n,
    mode: 0,
    chunks: [],
    target: '',
    version: { AAAAAAA: 1 },
    deleted: false,
    sequence: 0,
    inode: 0,
    modifiedBy: 'AAAAAAA',
    ...over,
  };
}

/** A global view over fixed rows, grouped by path in path order as the store gives them. */
function fakeView(rows: HeldRecord[]): GlobalViewReader {
  const sorted = [...rows].sort((x, y) => (x.record.path < y.record.path ? -1 : 1));
  const group = (keep: (p: string) => boolean) => {
    const out = new Map<string, HeldRecord[]>();
    for (const r of sorted) {
      if (keep(r.record.path)) out.set(r.record.path, [...(out.get(r.record.path) ?? []), r]);
    }
    return [...out.values()];
  };
  const prefix = (dir: string) => (dir === '' ? '' : `${dir}/`);
  return {
    inside: (dir) =>
      group((p) => p.startsWith(prefix(dir)) && !p.slice(prefix(dir).length).includes('/')),
    below: (dir) => group((p) => p.startsWith(prefix(dir))),
    at: (path) => sorted.filter((r) => r.record.path === path),
  };
}

const lock: LockRow = {
  id: 'L1',
  path: 'd/locked.txt',
  owner: 'bob',
  device: B,
  createdMs: 1_700_000_000_000,
  expiresMs: null,
  reason: 'editing',
  token: 7,
};
const listing = createListing({
  view: fakeView([
    { device: A, record: rec('d', { type: 'directory', size: 0 }) },
    { device: A, record: rec('d/big.txt', { size: 90 }) },
    { device: B, record: rec('d/big.txt', { size: 90 }) },
    { device: A, record: rec('d/locked.txt') },
    { device: B, record: rec('d/gone.txt', { deleted: true, version: { BBBBBBB: 1 } }) },
    { device: A, record: rec('d/e.conflict-20240101-101010-BBBBBBB.txt', { size: 1 }) },
    { device: A, record: rec('d/sub', { type: 'directory', size: 0 }) },
    { device: A, record: rec('d/sub/deep.txt') },
    { device: A, record: rec('top.txt') },
  ]),
  locks: { get: (p) => (p === lock.path ? lock : undefined), all: () => [lock] },
  progress: new Map([['d/big.txt', { done: 30, total: 90 }]]),
  refs: new DeviceRefs((id) => (id === A ? 'alpha' : 'beta')),
});
const q = (over: Partial<ListQuery>): ListQuery => ({
  dir: 'd',
  sort: 'name',
  order: 'asc',
  offset: 0,
  limit: 100,
  ...over,
});
const paths = (over: Partial<ListQuery>) => listing.list(q(over)).entries.map((e) => e.path);

describe('listing', () => {
  it('lists a directory, directories first, leaving out what is deleted everywhere', () => {
    expect(paths({})).toEqual([
      'd/sub',
      'd/big.txt',
      'd/e.conflict-20240101-101010-BBBBBBB.txt',
      'd/locked.txt',
    ]);
    expect(paths({ sort: 'size', order: 'desc' })).toEqual([
      'd/sub',
      'd/big.txt',
      'd/locked.txt',
      'd/e.conflict-20240101-101010-BBBBBBB.txt',
    ]);
    expect(paths({ dir: 'd///', offset: 1, limit: 2 })).toEqual([
      'd/big.txt',
      'd/e.conflict-20240101-101010-BBBBBBB.txt',
    ]);
    expect(listing.list(q({ dir: 'd/', limit: 1 }))).toMatchObject({ dir: 'd', total: 4 });
  });

  it('lists everything below a directory as a tree in path order', () => {
    expect(paths({ dir: '', recursive: true })).toEqual([
      'd',
      'd/big.txt',
      'd/e.conflict-20240101-101010-BBBBBBB.txt',
      'd/locked.txt',
      'd/sub',
      'd/sub/deep.txt',
      'top.txt',
    ]);
    expect(paths({ recursive: true, order: 'desc', limit: 2 })).toEqual([
      'd/sub/deep.txt',
      'd/sub',
    ]);
  });

  it('builds the recursive page as text equal to the listed page', () => {
    for (const page of [{ offset: 0, limit: 100 }, { offset: 2, limit: 2 }, { offset: 9 }]) {
      const text = listing.listText?.(q({ recursive: true, ...page }));
      expect(text?.text).toBe(JSON.stringify(listing.list(q({ recursive: true, ...page }))));
    }
    expect(listing.listText?.(q({ recursive: true, order: 'desc' }))).toBeUndefined();
    expect(listing.listText?.(q({}))).toBeUndefined();
  });

  it('shows holders, locks, transfers and conflict copies', () => {
    expect(listing.file('d/big.txt')).toEqual({
      name: 'big.txt',
      path: 'd/big.txt',
      type: 'file',
      size: 90,
      modified: '2023-11-14T22:13:20.000Z',
      lock: null,
      devices: [
        { id: A, short: 'AAAAAAA', name: 'alpha' },
        { id: B, short: 'BBBBBBB', name: 'beta' },
      ],
      syncing: { done: 30, total: 90 },
      conflict: false,
    });
    expect(listing.file('d/locked.txt')?.lock).toEqual({
      id: 'L1',
      path: 'd/locked.txt',
      owner: 'bob',
      device: { id: B, short: 'BBBBBBB', name: 'beta' },
      created: '2023-11-14T22:13:20.000Z',
      expires: null,
      reason: 'editing',
      scope: 'file',
    });
    expect(listing.file('d/e.conflict-20240101-101010-BBBBBBB.txt')?.conflict).toBe(true);
    expect(listing.file('d')?.size).toBe(0);
    expect(listing.file('d/gone.txt')).toBeUndefined();
    expect(listing.file('nothing')).toBeUndefined();
  });

  it("shows a directory lock on the directory's row and on every path below it", () => {
    const dirLock: LockRow = { ...lock, id: 'L2', path: 'd', scope: 'directory' };
    const byPath = new Map([
      [lock.path, lock],
      ['d', dirLock],
    ]);
    const withDir = createListing({
      view: fakeView([
        { device: A, record: rec('d', { type: 'directory', size: 0 }) },
        { device: A, record: rec('d/sub', { type: 'directory', size: 0 }) },
        { device: A, record: rec('d/sub/deep.txt') },
        { device: A, record: rec('d/e.conflict-20240101-101010-BBBBBBB.txt', { size: 1 }) },
        { device: A, record: rec('d/locked.txt') },
        { device: A, record: rec('dd.txt') },
      ]),
      locks: { get: (p) => byPath.get(p), all: () => [...byPath.values()] },
      progress: new Map(),
      refs: new DeviceRefs((id) => (id === A ? 'alpha' : 'beta')),
    });
    const held = (e: { path: string; lock: { path: string; scope: string } | null }) =>
      `${e.path}: ${e.lock === null ? '-' : `${e.lock.path} ${e.lock.scope}`}`;
    expect(withDir.list(q({ dir: '', recursive: true })).entries.map(held)).toEqual([
      'd: d directory',
      'd/e.conflict-20240101-101010-BBBBBBB.txt: -',
      'd/locked.txt: d/locked.txt file',
      'd/sub: d directory',
      'd/sub/deep.txt: d directory',
      'dd.txt: -',
    ]);
    expect(withDir.file('d/sub/deep.txt')?.lock?.path).toBe('d');
  });

  it('flags numbered conflict copies (a second clash) as conflicts too, and no look-alike', () => {
    const names = [
      'e.conflict-20240101-101010-BBBBBBB-2.txt',
      'e.conflict-20240101-101010-BBBBBBB-13',
      'e.conflict-20240101-101010-BBBBBBB-x.txt',
      'e.conflict-2024-BBBBBBB.txt',
    ];
    const l = createListing({
      view: fakeView(names.map((n) => ({ device: A, record: rec(n) }))),
      locks: { get: () => undefined, all: () => [] },
      progress: new Map(),
      refs: new DeviceRefs(() => 'alpha'),
    });
    expect(names.map((n) => l.file(n)?.conflict)).toEqual([true, true, false, false]);
  });
});

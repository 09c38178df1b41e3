import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { IndexStore, type ChunkLocation } from './index-store.js';
import { listMigrations, migrate } from './migrate.js';
import type { Observed } from '../core/local.js';

const DEV = 'AAAAAAA-BBBBBBB-CCCCCCC-DDDDDDD-EEEEEEE-FFFFFFF-GGGGGGG-HHHHHHH';
const H1 = '11'.repeat(32);
const H2 = '22'.repeat(32);

function file(
  size: number,
  mtimeNs: bigint,
  hashes: string[],
  extra: Partial<Observed> = {},
): Observed {
  let offset = 0;
  const chunks = hashes.map((hash) => {
    const c = { offset, length: size / hashes.length, hash };
    offset += c.length;
    return c;
  });
  return { type: 'file', size, mtimeNs, mode: 0o644, inode: 7, chunks, target: '', ...extra };
}

describe('IndexStore', () => {
  let dir: string;
  let store: IndexStore;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'lockstep-store-'));
    store = new IndexStore(join(dir, 'index.db'), DEV);
  });
  afterEach(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs every migration and uses WAL', () => {
    // Both are kept in the database file: a second connection reads them.
    const db = new Database(join(dir, 'index.db'), { readonly: true });
    try {
      expect(db.pragma('user_version', { simple: true })).toBe(listMigrations().at(-1)?.version);
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    } finally {
      db.close();
    }
  });

  it('a new file gets version {self: 1} and sequence 1, an edit bumps both', () => {
    const [a] = store.commit([{ path: 'a.txt', seen: file(100, 5n, [H1]) }]);
    expect(a?.version).toEqual({ AAAAAAA: 1 });
    expect(a?.sequence).toBe(1);
    const [b] = store.commit([{ path: 'a.txt', seen: file(100, 6n, [H2]) }]);
    expect(b?.version).toEqual({ AAAAAAA: 2 });
    expect(b?.sequence).toBe(2);
    expect(store.sequence).toBe(2);
    expect(store.get('a.txt')?.chunks).toEqual([{ offset: 0, length: 100, hash: H2 }]);
  });

  it('forgetLocal keeps the counter: a later change never reuses a version a peer may have seen', () => {
    store.commit([{ path: 'a.txt', seen: file(100, 5n, [H1]) }]);
    store.commit([{ path: 'a.txt', seen: file(100, 6n, [H2]) }]);
    expect(store.get('a.txt')?.version).toEqual({ AAAAAAA: 2 });
    store.forgetLocal('a.txt');
    expect(store.get('a.txt')).toBeUndefined();
    // Gone from disk while forgotten: nothing to record.
    expect(store.commit([{ path: 'a.txt', seen: null }])).toEqual([]);
    const [again] = store.commit([{ path: 'a.txt', seen: file(100, 7n, [H1]) }]);
    expect(again?.version).toEqual({ AAAAAAA: 3 });
    // Also when the content came back from a peer with an older counter of ours.
    store.forgetLocal('a.txt');
    const old = { ...(again as NonNullable<typeof again>), version: { AAAAAAA: 1, BBBBBBB: 4 } };
    store.commitSynced(old, old.version, null);
    const [next] = store.commit([{ path: 'a.txt', seen: file(100, 8n, [H2]) }]);
    expect(next?.version).toEqual({ AAAAAAA: 4, BBBBBBB: 4 });
    // And after a restart.
    store.forgetLocal('a.txt');
    store.close();
    store = new IndexStore(join(dir, 'index.db'), DEV);
    const [last] = store.commit([{ path: 'a.txt', seen: file(100, 9n, [H1]) }]);
    expect(last?.version).toEqual({ AAAAAAA: 5 });
  });

  it('an unchanged observation records nothing and takes no sequence number', () => {
    store.commit([{ path: 'a.txt', seen: file(100, 5n, [H1]) }]);
    expect(store.commit([{ path: 'a.txt', seen: file(100, 5n, [H1]) }])).toEqual([]);
    expect(store.sequence).toBe(1);
  });

  it('a changed inode or read-only bit is recorded silently, the exec bit bumps', () => {
    store.commit([{ path: 'a', seen: file(10, 5n, [H1]) }]);
    expect(
      store.commit([{ path: 'a', seen: file(10, 5n, [H1], { inode: 9, mode: 0o444 }) }]),
    ).toEqual([]);
    expect(store.get('a')?.inode).toBe(9);
    expect(store.get('a')?.mode).toBe(0o444);
    expect(
      store.commit([{ path: 'a', seen: file(10, 5n, [H1], { inode: 9, mode: 0o555 }) }]),
    ).toHaveLength(1);
  });

  it('a disappeared path becomes a tombstone with a new version, once', () => {
    store.commit([{ path: 'a', seen: file(10, 5n, [H1]) }]);
    const [t] = store.commit([{ path: 'a', seen: null }]);
    expect(t).toMatchObject({
      deleted: true,
      size: 0,
      chunks: [],
      version: { AAAAAAA: 2 },
      sequence: 2,
    });
    expect(store.commit([{ path: 'a', seen: null }])).toEqual([]);
    expect(store.findChunk(H1)).toEqual([]);
    // Recreated: the tombstone's version is the base, never reset.
    const [r] = store.commit([{ path: 'a', seen: file(10, 7n, [H1]) }]);
    expect(r?.version).toEqual({ AAAAAAA: 3 });
  });

  it('answers where a chunk is on disk', () => {
    store.commit([
      { path: 'x', seen: file(20, 5n, [H1, H2]) },
      { path: 'y', seen: file(10, 5n, [H2]) },
    ]);
    expect(store.findChunk(H2).sort((a, b) => a.path.localeCompare(b.path))).toEqual([
      { path: 'x', offset: 10, length: 10 },
      { path: 'y', offset: 0, length: 10 },
    ]);
    const H3 = 'cd'.repeat(32);
    const byPath = (m: Map<string, ChunkLocation[]>) =>
      new Map([...m].map(([h, at]) => [h, at.sort((a, b) => a.path.localeCompare(b.path))]));
    expect(byPath(store.chunkPlaces([H1, H3, H2, H2]))).toEqual(
      new Map([
        [H1, [{ path: 'x', offset: 0, length: 10 }]],
        [
          H2,
          [
            { path: 'x', offset: 10, length: 10 },
            { path: 'y', offset: 0, length: 10 },
          ],
        ],
      ]),
    );
    // At most `limit` places per hash.
    expect(store.chunkPlaces([H1, H2], 1).get(H2)).toHaveLength(1);
    expect(store.chunkPlaces([])).toEqual(new Map());
    store.commit([{ path: 'x', seen: null }]);
    expect(store.chunkPlaces([H1, H2])).toEqual(
      new Map([[H2, [{ path: 'y', offset: 0, length: 10 }]]]),
    );
    // Asked in slices: one found past the first slice of 8,192.
    const many = Array.from({ length: 10_000 }, (_, i) => i.toString(16).padStart(64, '0'));
    many[9_000] = H2;
    expect([...store.chunkPlaces(many).keys()]).toEqual([H2]);
  });

  it('lists changes since a sequence number and live paths within a directory', () => {
    store.commit([
      { path: 'd', seen: { ...file(0, 1n, []), type: 'directory' } },
      { path: 'd/a', seen: file(10, 1n, [H1]) },
      { path: 'd0', seen: file(10, 1n, [H1]) },
      { path: 'e', seen: file(10, 1n, [H1]) },
    ]);
    expect([...store.changedSince(2)].map((r) => r.path)).toEqual(['d0', 'e']);
    expect(store.livePathsWithin('d').sort()).toEqual(['d', 'd/a']);
  });

  it('lists the keys of the records directly inside a directory, and which have records below', () => {
    const dir: Observed = { ...file(0, 1n, []), type: 'directory' };
    const dirs = ['d', 'd/sub', 'd/sub/y', 'e'];
    const files = ['d/a', 'd/a-b', 'd/sub.txt', 'd/sub/x', 'd/sub/y/z', 'd/t', 'd-x', 'd0', 'e/f'];
    store.commit([
      ...dirs.map((path) => ({ path, seen: dir })),
      ...files.map((path) => ({ path, seen: file(10, 1n, [H1]) })),
    ]);
    store.commit([{ path: 'd/t', seen: null }]);
    const d = store.childKeys('d');
    expect([...d.keys.keys()].sort()).toEqual(['d/a', 'd/a-b', 'd/sub', 'd/sub.txt', 'd/t']);
    expect(d.keys.get('d/a')).toEqual({
      type: 'file',
      size: 10,
      mtimeNs: 1n,
      inode: 7,
      mode: 0o644,
      deleted: false,
    });
    expect(d.keys.get('d/sub')).toMatchObject({ type: 'directory', deleted: false });
    expect(d.keys.get('d/t')).toMatchObject({ deleted: true });
    expect(d.nested).toEqual(['d/sub']);
    const root = store.childKeys('');
    expect([...root.keys.keys()].sort()).toEqual(['d', 'd-x', 'd0', 'e']);
    expect(root.nested).toEqual(['d', 'e']);
    const sub = store.childKeys('d/sub');
    expect([...sub.keys.keys()].sort()).toEqual(['d/sub/x', 'd/sub/y']);
    expect(sub.nested).toEqual(['d/sub/y']);
    expect(store.childKeys('d/a')).toEqual({ keys: new Map(), nested: [] });
    expect(store.childKeys('none')).toEqual({ keys: new Map(), nested: [] });
  });

  it('childKeys of every directory together give exactly every local record', () => {
    // Names that sort around '/' and '0', and beyond ASCII.
    const names = ['a', 'a b', 'a-', 'a.x', 'a0', 'a~', 'é', '\u{1F600}', 'z'];
    const paths: string[] = [];
    for (const x of names) {
      paths.push(x);
      for (const y of names.slice(0, 5)) {
        paths.push(`${x}/${y}`);
        paths.push(`${x}/${y}/${names[(x.length + y.length) % names.length]}`);
      }
    }
    store.commit(paths.map((path, i) => ({ path, seen: file(i, BigInt(i), [H1]) })));
    store.commit(paths.filter((_, i) => i % 7 === 0).map((path) => ({ path, seen: null })));
    const all = new Map(
      [...store.all()].map((r) => [
        r.path,
        {
          type: r.type,
          size: r.size,
          mtimeNs: r.mtimeNs,
          inode: r.inode,
          mode: r.mode,
          deleted: r.deleted,
        },
      ]),
    );
    const dirs = ['', ...paths];
    const got = new Map<string, unknown>();
    for (const dir of dirs) {
      const { keys, nested } = store.childKeys(dir);
      for (const [p, k] of keys) {
        expect(p.slice(0, p.lastIndexOf('/') + 1)).toBe(dir === '' ? '' : `${dir}/`);
        expect(got.has(p)).toBe(false);
        got.set(p, k);
      }
      const prefix = dir === '' ? '' : `${dir}/`;
      const expected = new Set<string>();
      for (const p of paths) {
        const slash = p.indexOf('/', prefix.length);
        if (p.startsWith(prefix) && slash >= 0) expected.add(p.slice(0, slash));
      }
      expect(nested).toHaveLength(expected.size);
      expect(new Set(nested)).toEqual(expected);
    }
    expect(got).toEqual(all);
  });

  it('keeps mtime nanoseconds exactly', () => {
    const ns = 1_732_459_200_123_456_789n;
    store.commit([{ path: 'a', seen: file(10, ns, [H1]) }]);
    expect(store.get('a')?.mtimeNs).toBe(ns);
  });

  it("survives reopening and refuses another device's index", () => {
    store.commit([{ path: 'a', seen: file(10, 5n, [H1]) }]);
    store.close();
    store = new IndexStore(join(dir, 'index.db'), DEV);
    expect(store.get('a')?.version).toEqual({ AAAAAAA: 1 });
    expect(() => new IndexStore(join(dir, 'index.db'), DEV.replace('AAAAAAA', 'ZZZZZZZ'))).toThrow(
      /belongs to device/,
    );
  });

  it('writes a new version under the fencing token of the lock held here; a silent update keeps it', () => {
    let held = 7;
    store.fence = (path) => (path === 'locked.txt' ? held : 0);
    const [a, b] = store.commit([
      { path: 'locked.txt', seen: file(10, 5n, [H1]) },
      { path: 'free.txt', seen: file(10, 5n, [H1]) },
    ]);
    expect(a?.token).toBe(7);
    expect(b?.token).toBeUndefined();
    // A local-only change (inode, read-only bit) is no new version: same token.
    held = 0;
    store.commit([{ path: 'locked.txt', seen: file(10, 5n, [H1], { inode: 9 }) }]);
    expect(store.get('locked.txt')?.token).toBe(7);
    // After the lock: a new version carries none; under the next grant, the next token.
    const [c] = store.commit([{ path: 'locked.txt', seen: file(10, 6n, [H2]) }]);
    expect(c?.token).toBeUndefined();
    held = 9;
    const [t] = store.commit([{ path: 'locked.txt', seen: null }]);
    expect(t).toMatchObject({ deleted: true, token: 9 });
    store.close();
    store = new IndexStore(join(dir, 'index.db'), DEV);
    expect(store.get('locked.txt')?.token).toBe(9);
    expect(store.changedBatch(0, 10).map((r) => [r.path, r.token])).toEqual([
      ['free.txt', undefined],
      ['locked.txt', 9],
    ]);
  });

  it('migrates an index from before version tokens, keeping every record (token 0)', () => {
    const file5 = join(dir, 'v5.db');
    const db = new Database(file5);
    migrate(
      db,
      listMigrations().filter((m) => m.version <= 5),
    );
    db.prepare('INSERT INTO devices (idx, id, short_id) VALUES (1, ?, ?)').run(DEV, 'AAAAAAA');
    db.prepare(
      `INSERT INTO files (device, path, type, size, mtime_s, mtime_ns, mode, inode, target, chunks, version, deleted, sequence, modified_by)
       VALUES (1, 'old.txt', 0, 0, 5, 0, 420, 0, '', x'', '{"AAAAAAA":3}', 0, 3, 'AAAAAAA')`,
    ).run();
    db.close();
    const old = new IndexStore(file5, DEV);
    try {
      expect(old.get('old.txt')).toMatchObject({ version: { AAAAAAA: 3 }, sequence: 3 });
      expect(old.get('old.txt')?.token).toBeUndefined();
    } finally {
      old.close();
    }
  });

  it('refuses a database from a newer schema', () => {
    const db = new Database(join(dir, 'new.db'));
    db.pragma('user_version = 999');
    expect(() => migrate(db)).toThrow(/newer than this Lockstep knows/);
    db.close();
  });
});

// The lock table's copy in memory against its SQLite file, and the fencing-token counter.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { formatDeviceId } from '../core/device-id.js';
import { IndexStore } from '../store/index-store.js';
import type { LockRow } from '../core/lock-rules.js';
import { LockTable } from './lock-table.js';

const A = formatDeviceId(new Uint8Array(32).fill(1));

describe('LockTable', () => {
  let dir: string;
  let store: IndexStore;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'lockstep-locktable-'));
    store = new IndexStore(join(dir, 'index.db'), A);
  });
  afterEach(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** What the SQLite file holds, read by a table opened afresh. */
  const onDisk = () => store.lockTable().all();
  /** The copy in memory of `t`, path by path, for every lock on disk, and its size. */
  const inMemory = (t: LockTable) => {
    const disk = onDisk();
    expect(t.size).toBe(disk.length);
    return disk.map((l) => t.get(l.path));
  };

  const row = (path: string, token = 0): LockRow => ({
    path,
    id: `id-${path}`,
    owner: 'alice',
    device: A,
    createdMs: 1,
    expiresMs: null,
    reason: '',
    token,
    scope: 'file',
  });

  it("keeps a lock's scope; a row put without one is a file lock", () => {
    const t = store.lockTable();
    t.durably(() => t.put({ ...row('proj'), scope: 'directory' }));
    const { scope: _, ...old } = row('old.txt');
    t.put(old);
    expect(t.get('proj')?.scope).toBe('directory');
    expect(t.get('old.txt')?.scope).toBe('file');
    expect(onDisk().map((l) => [l.path, l.scope])).toEqual([
      ['old.txt', 'file'],
      ['proj', 'directory'],
    ]);
  });

  it('answers from memory what the file holds, through puts, a rolled-back change and removes', () => {
    const t = store.lockTable();
    t.durably(() => t.put(row('a.psd')));
    t.put({ ...row('b.psd'), expiresMs: 50 });
    expect(t.get('a.psd')).toEqual(row('a.psd'));
    expect(t.size).toBe(2);
    expect(() =>
      t.durably(() => {
        t.remove('a.psd');
        throw new Error('refused');
      }),
    ).toThrow('refused');
    expect(t.get('a.psd')).toEqual(row('a.psd'));
    expect(inMemory(t)).toEqual(onDisk());
    expect(t.expiredBy(49)).toEqual([]);
    expect(t.expiredBy(50).map((l) => l.path)).toEqual(['b.psd']);
    expect(t.nextExpiry()).toBe(50);
    t.remove('a.psd');
    expect(t.get('a.psd')).toBeUndefined();
    expect(inMemory(t)).toEqual(onDisk());
    expect([...t.all().map((l) => l.path)]).toEqual(['b.psd']);
  });

  it('hands out tokens that only grow: across a rolled-back grant, a restart, and tokens seen from elsewhere', () => {
    const t = store.lockTable();
    expect(t.durably(() => t.takeToken())).toBe(1);
    expect(t.durably(() => t.takeToken())).toBe(2);
    // A grant that rolls back takes its token back with it: nothing was handed out.
    expect(() =>
      t.durably(() => {
        t.takeToken();
        throw new Error('refused');
      }),
    ).toThrow();
    // A lock granted by another authority raises the counter to its token, never lowers it.
    t.put(row('x', 40));
    t.put(row('y', 7));
    store.close();
    store = new IndexStore(join(dir, 'index.db'), A);
    const again = store.lockTable();
    expect(again.lastToken()).toBe(40);
    expect(again.durably(() => again.takeToken())).toBe(41);
    again.replace([]);
    expect(again.durably(() => again.takeToken())).toBe(42);
  });

  it('a replica replaced by a snapshot, and a snapshot that fails half way, match the file', () => {
    const t = store.lockTable();
    t.replace([row('x'), row('y')]);
    expect(inMemory(t)).toEqual(onDisk());
    expect(t.get('x')?.id).toBe('id-x');
    // A row the table refuses (NOT NULL owner) rolls the whole snapshot back.
    const bad = { ...row('z'), owner: null } as unknown as LockRow;
    expect(() => t.replace([row('w'), bad])).toThrow();
    expect(t.get('w')).toBeUndefined();
    expect(t.get('x')?.id).toBe('id-x');
    expect(inMemory(t)).toEqual(onDisk());
    expect(t.size).toBe(2);
  });
});

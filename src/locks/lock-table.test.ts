// The lock table's copy in memory against its SQLite file.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { formatDeviceId } from '../core/device-id.js';
import { IndexStore } from '../store/index-store.js';
import { LockTable, type LockRow } from './lock-table.js';

const A = formatDeviceId(new Uint8Array(32).fill(1));
const name = () => 'A';

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
  const onDisk = () => new LockTable(store.db).all();
  /** The copy in memory of `t`, path by path, for every lock on disk, and its size. */
  const inMemory = (t: LockTable) => {
    const disk = onDisk();
    expect(t.size).toBe(disk.length);
    return disk.map((l) => t.get(l.path));
  };

  it('answers from memory what the file holds, through grants, a refused grant and releases', () => {
    const t = new LockTable(store.db);
    const { lock } = t.grant({ path: 'a.psd', owner: 'alice', device: A }, 1000, name);
    t.grant({ path: 'b.psd', owner: 'bob', device: A, ttlMs: 50 }, 1000, name);
    expect(t.get('a.psd')).toEqual(lock);
    expect(t.size).toBe(2);
    expect(() => t.grant({ path: 'a.psd', owner: 'bob', device: A }, 1001, name)).toThrow(
      /already locked by alice/,
    );
    expect(inMemory(t)).toEqual(onDisk());
    expect(t.size).toBe(2);
    // b.psd expired: granted to carol, the expired one handed back.
    const again = t.grant({ path: 'b.psd', owner: 'carol', device: A }, 2000, name);
    expect(again.expired?.owner).toBe('bob');
    expect(t.get('b.psd')?.owner).toBe('carol');
    t.release('a.psd', { name: 'alice', admin: false }, false);
    expect(t.get('a.psd')).toBeUndefined();
    expect(inMemory(t)).toEqual(onDisk());
    expect([...t.all().map((l) => l.path)]).toEqual(['b.psd']);
  });

  it('a replica replaced by a snapshot, and a snapshot that fails half way, match the file', () => {
    const t = new LockTable(store.db);
    const row = (path: string): LockRow => ({
      path,
      id: `id-${path}`,
      owner: 'alice',
      device: A,
      createdMs: 1,
      expiresMs: null,
      reason: '',
    });
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

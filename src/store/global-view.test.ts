// The global view's reads against a real index: which paths each query
// returns, grouped by path with every device's record, and the store's
// transaction wrapper.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { HeldRecord } from '../core/global-view.js';
import type { FileRecord } from '../core/record.js';
import { IndexStore } from './index-store.js';

const DEV = 'AAAAAAA-BBBBBBB-CCCCCCC-DDDDDDD-EEEEEEE-FFFFFFF-GGGGGGG-HHHHHHH';
const PEER = 'BBBBBBB-BBBBBBB-CCCCCCC-DDDDDDD-EEEEEEE-FFFFFFF-GGGGGGG-HHHHHHH';
const PEER2 = 'CCCCCCC-BBBBBBB-CCCCCCC-DDDDDDD-EEEEEEE-FFFFFFF-GGGGGGG-HHHHHHH';
const H1 = '11'.repeat(32);

function rec(path: string, over: Partial<FileRecord> = {}): FileRecord {
  return {
    path,
    type: 'file',
    size: 4,
    mtimeNs: 1_700_000_000_123_456_789n,
    mode: 0o755,
    chunks: [{ offset: 0, length: 4, hash: H1 }],
    target: '',
    version: { BBBBBBB: 1 },
    deleted: false,
    sequence: 1,
    inode: 0,
    modifiedBy: 'BBBBBBB',
    ...over,
  };
}

/** Each group as its path and the devices of its records (in any order within a path). */
const shape = (groups: Iterable<HeldRecord[]>) =>
  [...groups].map((g) =>
    [g[0]?.record.path, ...g.map((h) => h.device.slice(0, 7)).sort()].join(' '),
  );

describe('GlobalView', () => {
  let dir: string;
  let store: IndexStore;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'lockstep-global-view-'));
    store = new IndexStore(join(dir, 'index.db'), DEV);
    const d = { type: 'directory' as const, size: 0, chunks: [], mode: 0o755 };
    // `a0` and `a.txt` sort next to `a/`'s range; `ab/c` has no record of `ab`.
    const paths = ['a.txt', 'a0', 'ab/c', 'a/x', 'a/y/z', 'b'];
    store.applyRemote(PEER, [rec('a', d), rec('a/y', d), ...paths.map((p) => rec(p))]);
    store.applyRemote(PEER2, [rec('a/x'), rec('b', { deleted: true, size: 0, chunks: [] })]);
    store.commitSynced(rec('a/x'), { BBBBBBB: 1 }, null);
  });
  afterEach(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads the paths directly inside a directory, each with every device that has a record', () => {
    expect(shape(store.view.inside(''))).toEqual([
      'a BBBBBBB',
      'a.txt BBBBBBB',
      'a0 BBBBBBB',
      'b BBBBBBB CCCCCCC',
    ]);
    expect(shape(store.view.inside('a'))).toEqual(['a/x AAAAAAA BBBBBBB CCCCCCC', 'a/y BBBBBBB']);
    expect(shape(store.view.inside('a/y'))).toEqual(['a/y/z BBBBBBB']);
    expect(shape(store.view.inside('nothing'))).toEqual([]);
  });

  it('reads every path below a directory in path order', () => {
    expect(shape(store.view.below('a'))).toEqual([
      'a/x AAAAAAA BBBBBBB CCCCCCC',
      'a/y BBBBBBB',
      'a/y/z BBBBBBB',
    ]);
    expect(shape(store.view.below('')).map((s) => s.split(' ')[0])).toEqual([
      'a',
      'a.txt',
      'a/x',
      'a/y',
      'a/y/z',
      'a0',
      'ab/c',
      'b',
    ]);
  });

  it('reads one path, with the fields the view shows', () => {
    const rows = store.view.at('b').sort((x, y) => (x.device < y.device ? -1 : 1));
    expect(rows.map((h) => [h.device, h.record.deleted])).toEqual([
      [PEER, false],
      [PEER2, true],
    ]);
    expect(rows[0]?.record).toEqual({
      ...rec('b'),
      mode: 0,
      chunks: [],
      sequence: 0,
      inode: 0,
    });
    expect(store.view.at('missing')).toEqual([]);
  });

  it('decodes each version text once, so equal versions are one object', () => {
    const [local, peer] = store.view.at('a/x');
    expect(local?.record.version).toEqual({ BBBBBBB: 1 });
    expect(local?.record.version).toBe(peer?.record.version);
  });

  it('runs a transaction all or nothing', () => {
    const failing = store.transaction(() => {
      store.applyRemote(PEER, [rec('new')]);
      throw new Error('no');
    });
    expect(failing).toThrow('no');
    expect(store.peerRecord(PEER, 'new')).toBeUndefined();
    expect(store.transaction((p: string) => store.applyRemote(PEER, [rec(p)]))('new')).toEqual([
      'new',
    ]);
    expect(store.peerRecord(PEER, 'new')?.path).toBe('new');
  });
});

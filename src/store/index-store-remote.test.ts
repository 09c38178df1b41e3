// The index's peer half: records received from peers, candidates per path,
// and content recorded after sync put it on disk.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FileRecord } from '../core/record.js';
import { IndexStore } from './index-store.js';

const DEV = 'AAAAAAA-BBBBBBB-CCCCCCC-DDDDDDD-EEEEEEE-FFFFFFF-GGGGGGG-HHHHHHH';
const PEER = 'BBBBBBB-BBBBBBB-CCCCCCC-DDDDDDD-EEEEEEE-FFFFFFF-GGGGGGG-HHHHHHH';
const PEER2 = 'CCCCCCC-BBBBBBB-CCCCCCC-DDDDDDD-EEEEEEE-FFFFFFF-GGGGGGG-HHHHHHH';
const H1 = '11'.repeat(32);

function rec(path: string, sequence: number, over: Partial<FileRecord> = {}): FileRecord {
  return {
    path,
    type: 'file',
    size: 4,
    mtimeNs: 1_700_000_000_123_456_789n,
    mode: 0o755,
    chunks: [{ offset: 0, length: 4, hash: H1 }],
    target: '',
    version: { BBBBBBB: sequence },
    deleted: false,
    sequence,
    inode: 0,
    modifiedBy: 'BBBBBBB',
    ...over,
  };
}

describe('IndexStore, peer records', () => {
  let dir: string;
  let store: IndexStore;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'lockstep-store-remote-'));
    store = new IndexStore(join(dir, 'index.db'), DEV);
  });
  afterEach(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('stores peer records apart from local ones and tracks the last sequence received', () => {
    expect(store.peerState(PEER)).toEqual({ indexId: '', sequence: 0 });
    store.applyRemote(PEER, [rec('a', 3), rec('b', 5)]);
    expect(store.peerState(PEER).sequence).toBe(5);
    store.applyRemote(PEER, [], 9); // caught up at 9
    expect(store.peerState(PEER).sequence).toBe(9);
    expect(store.get('a')).toBeUndefined();
    const c = store.candidates('a');
    expect(c.local).toBeUndefined();
    expect(c.remotes).toEqual([{ device: 'BBBBBBB', record: rec('a', 3) }]);
    expect(store.pathsToPlan()).toEqual(['a', 'b']);
    store.commitSynced(rec('a', 3), { BBBBBBB: 3 }, null);
    expect(store.pathsToPlan()).toEqual(['b']);
    // A newer record of the same path replaces the old one.
    store.applyRemote(PEER, [rec('a', 10, { deleted: true, size: 0, chunks: [] })]);
    expect(store.candidates('a').remotes[0]?.record.deleted).toBe(true);
    expect(store.peerState(PEER).sequence).toBe(10);
  });

  it('keeps each peer separate and forgets one whose index was replaced', () => {
    store.applyRemote(PEER, [rec('a', 1)]);
    store.applyRemote(PEER2, [rec('a', 1, { modifiedBy: '' })]);
    expect(
      store
        .candidates('a')
        .remotes.map((r) => r.device)
        .sort(),
    ).toEqual(['BBBBBBB', 'CCCCCCC']);
    store.resetPeer(PEER, 'new-index');
    expect(store.peerState(PEER)).toEqual({ indexId: 'new-index', sequence: 0 });
    expect(store.candidates('a').remotes.map((r) => r.device)).toEqual(['CCCCCCC']);
  });

  it('records synced content without a new version, under the next local sequence', () => {
    const before = store.sequence;
    const out = store.commitSynced(
      rec('x/y', 4),
      { BBBBBBB: 4, AAAAAAA: 1 },
      {
        inode: 42,
        mtimeNs: 5n,
        mode: 0o700,
      },
    );
    expect(out.sequence).toBe(before + 1);
    expect(store.sequence).toBe(before + 1);
    const got = store.get('x/y') as FileRecord;
    expect(got.version).toEqual({ AAAAAAA: 1, BBBBBBB: 4 });
    expect(got.modifiedBy).toBe('BBBBBBB');
    expect([got.inode, got.mtimeNs, got.mode]).toEqual([42, 5n, 0o700]);
    // Its chunks are now found locally, for reuse by later pulls.
    expect(store.findChunk(H1)).toEqual([{ path: 'x/y', offset: 0, length: 4 }]);
    // And peers are offered it.
    expect(store.changedBatch(before, 10).map((r) => r.path)).toEqual(['x/y']);
    // A synced delete drops the chunks.
    store.commitSynced(rec('x/y', 5, { deleted: true, size: 0, chunks: [] }), { BBBBBBB: 5 }, null);
    expect(store.findChunk(H1)).toEqual([]);
    expect(store.get('x/y')?.deleted).toBe(true);
  });

  it("keeps a peer's fencing token, and the token of content synced from it", () => {
    store.applyRemote(PEER, [rec('f', 2, { token: 12 }), rec('g', 3)]);
    const remote = store.candidates('f').remotes[0]?.record;
    expect(remote?.token).toBe(12);
    expect(store.candidates('g').remotes[0]?.record.token).toBeUndefined();
    store.commitSynced(remote as FileRecord, { BBBBBBB: 2 }, null);
    expect(store.get('f')?.token).toBe(12);
    expect(store.view.at('f').map((h) => h.record.token)).toEqual([12, 12]);
  });

  it('pages through local changes in sequence order', () => {
    for (let i = 0; i < 5; i++) store.commitSynced(rec(`f${i}`, 1), { BBBBBBB: 1 }, null);
    const first = store.changedBatch(0, 2);
    expect(first.map((r) => r.path)).toEqual(['f0', 'f1']);
    const next = store.changedBatch(first[1]?.sequence ?? 0, 10);
    expect(next.map((r) => r.path)).toEqual(['f2', 'f3', 'f4']);
  });

  it('has a stable index ID of its own', () => {
    const id = store.indexId;
    expect(id).toMatch(/^[A-Za-z0-9_-]{16}$/);
    expect(store.indexId).toBe(id);
  });
});

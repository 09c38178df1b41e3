// The puller in process, its finish through a FolderWriter on a FaultyFs:
// a file whose change fails is reported as a problem and keeps what it had,
// the other files sync on, and once the fault is gone the retry brings it.
import { existsSync, readFileSync, readdirSync, renameSync, symlinkSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../base/clock.js';
import { SerialQueue } from '../base/serial-queue.js';
import type { FileRecord } from '../core/record.js';
import { FaultyFs } from '../folder/faulty-fs.js';
import { confinedFs } from '../confined/fs.js';
import { FolderWriter } from '../folder/writer.js';
import { hashHex } from '../scan/chunker.js';
import {
  PEER,
  fileRecord,
  localFile,
  makeFixture,
  memoryLog,
  type Fixture,
} from '../testing/folder.js';
import { FdCache } from './fd-cache.js';
import type { ChunkFetcher } from './fetcher.js';
import { Puller, retryDelay } from './puller.js';

let fx: Fixture;
let faulty: FaultyFs;
let puller: Puller;
let fds: FdCache;
let applied: string[];
let clock: ManualClock;
const chunks = new Map<string, Buffer>();

beforeEach(() => {
  fx = makeFixture();
  faulty = new FaultyFs(confinedFs(fx.root));
  applied = [];
  clock = new ManualClock(Date.now());
  fds = new FdCache(confinedFs(fx.root));
  const queue = new SerialQueue();
  // Serves every chunk the test offered, as a peer would.
  const fetcher = {
    into: (hash: string, _len: number, _src: unknown, _hint: unknown, use: (b: Buffer) => void) => {
      const data = chunks.get(hash);
      if (data === undefined) return Promise.reject(new Error(`no peer has ${hash}`));
      use(data);
      return Promise.resolve();
    },
  } as unknown as ChunkFetcher;
  puller = new Puller({
    root: fx.root,
    store: fx.store,
    clock,
    log: memoryLog(),
    queue,
    fetcher,
    fds,
    ignores: () => false,
    stopped: () => false,
    syncfs: () => Promise.resolve(),
    scanNow: () => Promise.resolve(),
    writer: new FolderWriter({ root: fx.root, store: fx.store, queue, fs: faulty }),
    applied: (rec) => applied.push(rec.path),
  });
});
afterEach(() => {
  puller.close();
  fds.close();
  fx.close();
});

/** The peer has `data` at `path` (a version that supersedes this device's). */
function peerHas(path: string, data: Buffer, version: Record<string, number>): FileRecord {
  chunks.set(hashHex(data), data);
  const rec = {
    ...fileRecord(path, data, version),
    sequence: fx.store.peerState(PEER).sequence + 1,
  };
  fx.store.applyRemote(PEER, [rec]);
  return rec;
}

function peerDeleted(local: FileRecord): void {
  const version = { ...local.version, BBBBBBB: 1 };
  fx.store.applyRemote(PEER, [
    {
      ...local,
      version,
      deleted: true,
      size: 0,
      chunks: [],
      modifiedBy: 'BBBBBBB',
      sequence: fx.store.peerState(PEER).sequence + 1,
    },
  ]);
}

async function until(what: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!what()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

function read(path: string): string {
  return readFileSync(join(fx.root, path), 'utf8');
}

describe('Puller, finishing through a failing filesystem', () => {
  it('disk full on one rename: that file is a problem, keeps its old content, the others sync; the retry brings it', async () => {
    localFile(fx.store, fx.root, 'a.txt', Buffer.from('old a'));
    peerHas('a.txt', Buffer.from('new a'), { AAAAAAA: 1, BBBBBBB: 1 });
    peerHas('b.txt', Buffer.from('new b'), { BBBBBBB: 1 });
    faulty.inject({ op: 'rename', path: '/a.txt', code: 'ENOSPC' });
    puller.scheduleAll();
    await until(() => puller.problems.has('a.txt') && applied.includes('b.txt'));
    expect(puller.problems.get('a.txt')).toMatch(/ENOSPC/);
    expect(read('a.txt')).toBe('old a');
    expect(fx.store.get('a.txt')?.version).toEqual({ AAAAAAA: 1 });
    expect(read('b.txt')).toBe('new b');
    faulty.heal();
    puller.retryNow();
    await until(() => applied.includes('a.txt'));
    expect(read('a.txt')).toBe('new a');
    expect(puller.problems.size).toBe(0);
  });

  it('permission denied on one delete: that file stays (live in the index), the other delete goes on', async () => {
    const c = localFile(fx.store, fx.root, 'c.txt', Buffer.from('c'));
    const d = localFile(fx.store, fx.root, 'd.txt', Buffer.from('d'));
    peerDeleted(c);
    peerDeleted(d);
    faulty.inject({ op: 'unlink', path: '/c.txt', code: 'EACCES' });
    puller.scheduleAll();
    await until(() => puller.problems.has('c.txt') && applied.includes('d.txt'));
    expect(puller.problems.get('c.txt')).toMatch(/EACCES/);
    expect(read('c.txt')).toBe('c');
    expect(fx.store.get('c.txt')?.deleted).toBe(false);
    expect(existsSync(join(fx.root, 'd.txt'))).toBe(false);
  });

  it('a parent swapped for a symlink while a file is finished: nothing lands outside, the file is a problem', async () => {
    mkdirSync(join(fx.root, 'dir'));
    fx.store.commitSynced(
      { ...fileRecord('dir', Buffer.alloc(0), { AAAAAAA: 1 }), type: 'directory' },
      { AAAAAAA: 1 },
      null,
    );
    peerHas('dir/x.txt', Buffer.from('x'), { BBBBBBB: 1 });
    peerHas('y.txt', Buffer.from('y'), { BBBBBBB: 1 });
    faulty.inject({
      op: 'rename',
      path: '/dir/x.txt',
      times: 1,
      before: () => {
        renameSync(join(fx.root, 'dir'), join(fx.outside, 'dir'));
        symlinkSync(join(fx.outside, 'dir'), join(fx.root, 'dir'));
      },
    });
    puller.scheduleAll();
    await until(() => puller.problems.has('dir/x.txt') && applied.includes('y.txt'));
    expect(puller.problems.get('dir/x.txt')).toMatch(/replaced/);
    expect(readdirSync(join(fx.outside, 'dir'))).toEqual([]);
    expect(fx.store.get('dir/x.txt')).toBeUndefined();
    expect(read('y.txt')).toBe('y');
  });
});

describe('Puller, retry backoff', () => {
  it('waits 1 s, doubling per failure up to a minute', () => {
    expect([1, 2, 3, 4, 6, 7, 20].map(retryDelay)).toEqual([
      1000, 2000, 4000, 8000, 32_000, 60_000, 60_000,
    ]);
  });

  it('tries a failed file again when the backoff has passed on its clock, and not before', async () => {
    peerHas('r.txt', Buffer.from('new r'), { BBBBBBB: 1 });
    faulty.inject({ op: 'rename', path: '/r.txt', code: 'ENOSPC', times: 2 });
    puller.scheduleAll();
    await until(() => puller.problems.has('r.txt'));
    const renames = () =>
      faulty.calls.filter((c) => c.startsWith('rename ') && c.endsWith('/r.txt')).length;
    expect(renames()).toBe(1);
    clock.advance(999);
    await new Promise((r) => setTimeout(r, 50));
    expect(renames()).toBe(1);
    clock.advance(1);
    await until(() => renames() === 2);
    // The second failure waits twice as long.
    await until(() => clock.pending === 1);
    clock.advance(1999);
    await new Promise((r) => setTimeout(r, 50));
    expect(renames()).toBe(2);
    clock.advance(1);
    await until(() => applied.includes('r.txt'));
    expect(read('r.txt')).toBe('new r');
    expect(puller.problems.size).toBe(0);
  });
});

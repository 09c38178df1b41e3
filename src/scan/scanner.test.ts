import {
  appendFileSync,
  chmodSync,
  mkdirSync,
  mkdtempSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { IndexStore } from '../store/index-store.js';
import { MARKER_NAME } from '../core/path.js';
import { chunkFile } from './chunker.js';
import { IgnoreRules } from './ignore-rules.js';
import { Scanner, type FileHasher } from './scanner.js';

const DEV = 'AAAAAAA-BBBBBBB-CCCCCCC-DDDDDDD-EEEEEEE-FFFFFFF-GGGGGGG-HHHHHHH';
const realHasher: FileHasher = { hashFile: (p) => chunkFile(p) };

describe('Scanner', () => {
  let tmp: string;
  let root: string;
  let store: IndexStore;
  let hasher: FileHasher;
  let scanner: Scanner;

  const w = (rel: string, data: string | Buffer) => {
    mkdirSync(join(root, rel, '..'), { recursive: true });
    writeFileSync(join(root, rel), data);
  };
  const rec = (rel: string) => store.get(rel);
  const make = () =>
    new Scanner({
      root,
      index: store,
      hasher: { hashFile: (p) => hasher.hashFile(p) },
      ignore: IgnoreRules.load(root),
    });

  beforeEach(() => {
    tmp = mkdtempSync(join(tmpdir(), 'lockstep-scan-'));
    root = join(tmp, 'folder');
    mkdirSync(root);
    writeFileSync(join(root, MARKER_NAME), 'marker');
    store = new IndexStore(join(tmp, 'index.db'), DEV);
    hasher = realHasher;
    scanner = make();
  });
  afterEach(() => {
    store.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('indexes files, directories and symlinks, with version {self: 1}', async () => {
    w('a.txt', 'hello');
    w('d/e/b.bin', Buffer.alloc(300_000, 7));
    mkdirSync(join(root, 'empty'));
    symlinkSync('a.txt', join(root, 'link'));
    const res = await scanner.scanAll();
    expect(res.changed.map((r) => r.path).sort()).toEqual([
      'a.txt',
      'd',
      'd/e',
      'd/e/b.bin',
      'empty',
      'link',
    ]);
    expect(rec('a.txt')).toMatchObject({
      type: 'file',
      size: 5,
      deleted: false,
      version: { AAAAAAA: 1 },
    });
    expect(rec('d/e/b.bin')?.chunks.reduce((n, c) => n + c.length, 0)).toBe(300_000);
    expect(rec('empty')).toMatchObject({ type: 'directory' });
    expect(rec('link')).toMatchObject({ type: 'symlink', target: 'a.txt', chunks: [] });
    expect(rec(MARKER_NAME)).toBeUndefined();
  });

  it('a rescan of an unchanged tree hashes nothing and records nothing', async () => {
    w('a.txt', 'hello');
    w('d/b.txt', 'world');
    await scanner.scanAll();
    const seq = store.sequence;
    const res = await scanner.scanAll();
    expect(res.changed).toEqual([]);
    expect(res.hashedBytes).toBe(0);
    expect(store.sequence).toBe(seq);
  });

  it('a modified file gets new chunks and the next version', async () => {
    w('a.txt', 'hello');
    await scanner.scanAll();
    const before = rec('a.txt');
    w('a.txt', 'hello, world');
    const res = await scanner.scanAll();
    expect(res.changed.map((r) => r.path)).toEqual(['a.txt']);
    expect(rec('a.txt')?.version).toEqual({ AAAAAAA: 2 });
    expect(rec('a.txt')?.chunks[0]?.hash).not.toBe(before?.chunks[0]?.hash);
    expect(rec('a.txt')?.sequence).toBeGreaterThan(before?.sequence ?? 0);
  });

  it('a deleted file and a removed directory tree become tombstones', async () => {
    w('a.txt', 'x');
    w('d/e/f.txt', 'y');
    await scanner.scanAll();
    unlinkSync(join(root, 'a.txt'));
    rmSync(join(root, 'd'), { recursive: true });
    const res = await scanner.scanAll();
    expect(res.changed.map((r) => r.path).sort()).toEqual(['a.txt', 'd', 'd/e', 'd/e/f.txt']);
    for (const p of ['a.txt', 'd', 'd/e', 'd/e/f.txt'])
      expect(rec(p)).toMatchObject({ deleted: true, version: { AAAAAAA: 2 } });
  });

  it('a rename is a tombstone at the old path and the same chunks at the new one', async () => {
    w('old.bin', Buffer.alloc(100_000, 1));
    await scanner.scanAll();
    const chunks = rec('old.bin')?.chunks;
    renameSync(join(root, 'old.bin'), join(root, 'new.bin'));
    await scanner.scanAll();
    expect(rec('old.bin')?.deleted).toBe(true);
    expect(rec('new.bin')?.chunks).toEqual(chunks);
    expect(store.findChunk(chunks?.[0]?.hash ?? '')).toEqual([
      expect.objectContaining({ path: 'new.bin' }),
    ]);
  });

  it('never follows a symlink to a directory, inside or outside the folder', async () => {
    const outside = join(tmp, 'outside');
    mkdirSync(outside);
    writeFileSync(join(outside, 'secret.txt'), 'secret');
    symlinkSync(outside, join(root, 'out'));
    await scanner.scanAll();
    expect(rec('out')).toMatchObject({ type: 'symlink', target: outside });
    expect(rec('out/secret.txt')).toBeUndefined();
  });

  it('honours .lockstepignore (gitignore syntax), and directory-only rules', async () => {
    w('.lockstepignore', '*.tmp\nbuild/\n!keep.tmp\n');
    w('a.tmp', 'x');
    w('keep.tmp', 'x');
    w('build/out.o', 'x');
    w('src/build', 'a file named build is not a directory');
    scanner = make();
    await scanner.scanAll();
    expect(rec('a.tmp')).toBeUndefined();
    expect(rec('keep.tmp')).toBeDefined();
    expect(rec('build')).toBeUndefined();
    expect(rec('build/out.o')).toBeUndefined();
    expect(rec('src/build')).toBeDefined();
    expect(rec('.lockstepignore')).toBeDefined();
  });

  it('ignores its own temp files', async () => {
    w('d/.lockstep-tmp-abc', 'partial');
    await scanner.scanAll();
    expect(rec('d/.lockstep-tmp-abc')).toBeUndefined();
  });

  it('records an unreadable file as a problem and indexes the rest', async () => {
    w('ok.txt', 'fine');
    w('bad.txt', 'locked away');
    hasher = {
      hashFile: async (p) => {
        if (p.endsWith('bad.txt'))
          throw Object.assign(new Error(`EACCES: permission denied, open '${p}'`), {
            code: 'EACCES',
          });
        return chunkFile(p);
      },
    };
    const res = await scanner.scanAll();
    expect(rec('ok.txt')).toBeDefined();
    expect(rec('bad.txt')).toBeUndefined();
    expect(res.problems).toEqual([expect.objectContaining({ path: 'bad.txt', code: 'EACCES' })]);
    expect(scanner.problems.has('bad.txt')).toBe(true);
    hasher = realHasher;
    await scanner.scanAll();
    expect(scanner.problems.has('bad.txt')).toBe(false);
    expect(rec('bad.txt')).toBeDefined();
  });

  it.skipIf(process.getuid?.() === 0)(
    'records a file without read permission as a problem (real EACCES)',
    async () => {
      w('ok.txt', 'fine');
      w('bad.txt', 'locked away');
      chmodSync(join(root, 'bad.txt'), 0o000);
      const res = await scanner.scanAll();
      expect(rec('ok.txt')).toBeDefined();
      expect(res.problems).toEqual([expect.objectContaining({ path: 'bad.txt', code: 'EACCES' })]);
    },
  );

  it('a file that changes while it is hashed is hashed again and indexed with its final content', async () => {
    w('grow.txt', 'one');
    let calls = 0;
    hasher = {
      hashFile: async (p) => {
        const r = await chunkFile(p);
        if (calls++ === 0) appendFileSync(p, ' two'); // changes after being read
        return r;
      },
    };
    await scanner.scanAll();
    expect(calls).toBe(2);
    expect(rec('grow.txt')?.size).toBe('one two'.length);
    const fresh = await chunkFile(join(root, 'grow.txt'));
    expect(rec('grow.txt')?.chunks).toEqual(fresh.chunks);
  });

  it('a file that never stops changing is reported, not indexed half-way', async () => {
    w('busy.txt', 'x');
    hasher = {
      hashFile: async (p) => {
        const r = await chunkFile(p);
        appendFileSync(p, 'x');
        return r;
      },
    };
    const res = await scanner.scanAll();
    expect(rec('busy.txt')).toBeUndefined();
    expect(res.problems[0]?.message).toMatch(/changed while it was being hashed/);
  });

  it('finds changes made while the device was stopped', async () => {
    w('a.txt', 'one');
    w('b.txt', 'two');
    await scanner.scanAll();
    store.close();
    w('a.txt', 'one, edited');
    unlinkSync(join(root, 'b.txt'));
    w('c.txt', 'three');
    store = new IndexStore(join(tmp, 'index.db'), DEV);
    scanner = make();
    const res = await scanner.scanAll();
    expect(res.changed.map((r) => `${r.path}:${r.deleted}`).sort()).toEqual([
      'a.txt:false',
      'b.txt:true',
      'c.txt:false',
    ]);
  });

  it('notices an mtime-only change and a chmod +x', async () => {
    w('a.sh', 'echo hi');
    await scanner.scanAll();
    utimesSync(join(root, 'a.sh'), new Date(2020, 1, 1), new Date(2020, 1, 1));
    expect((await scanner.scanAll()).changed).toHaveLength(1);
    chmodSync(join(root, 'a.sh'), 0o755);
    expect((await scanner.scanAll()).changed).toHaveLength(1);
    chmodSync(join(root, 'a.sh'), 0o555); // read-only: local only
    expect((await scanner.scanAll()).changed).toHaveLength(0);
  });

  it('scans single paths and subtrees: a new directory is walked whole', async () => {
    w('a.txt', 'x');
    await scanner.scanAll();
    w('n/m/deep.txt', 'y');
    const res = await scanner.scan([{ path: 'n', subtree: false }]);
    expect(res.changed.map((r) => r.path).sort()).toEqual(['n', 'n/m', 'n/m/deep.txt']);
    unlinkSync(join(root, 'a.txt'));
    await scanner.scan([{ path: 'a.txt', subtree: false }]);
    expect(rec('a.txt')?.deleted).toBe(true);
  });

  it('a directory replaced by a file tombstones what was inside', async () => {
    w('d/x.txt', 'x');
    await scanner.scanAll();
    rmSync(join(root, 'd'), { recursive: true });
    w('d', 'now a file');
    await scanner.scan([{ path: 'd', subtree: false }]);
    expect(rec('d')).toMatchObject({ type: 'file', deleted: false });
    expect(rec('d/x.txt')?.deleted).toBe(true);
  });

  it('a full scan tombstones what was inside a directory now a file or a symlink, and nothing beside it', async () => {
    for (const p of ['d/x.txt', 'd/e/y.txt', 'l/z.txt', 'd-1.txt', 'd.txt', 'd0/w.txt', 'e/v.txt'])
      w(p, p);
    await scanner.scanAll();
    rmSync(join(root, 'd'), { recursive: true });
    rmSync(join(root, 'l'), { recursive: true });
    w('d', 'now a file');
    symlinkSync('e', join(root, 'l'));
    const res = await scanner.scanAll();
    expect(res.changed.map((r) => `${r.path}:${r.deleted}`).sort()).toEqual([
      'd/e/y.txt:true',
      'd/e:true',
      'd/x.txt:true',
      'd:false',
      'l/z.txt:true',
      'l:false',
    ]);
    expect(rec('d')).toMatchObject({ type: 'file' });
    expect(rec('l')).toMatchObject({ type: 'symlink', target: 'e' });
  });

  it('paths that become ignored are left alone: no tombstones', async () => {
    w('build/out.o', 'x');
    w('build/sub/more.o', 'x');
    w('a.tmp', 'x');
    w('src/a.c', 'x');
    await scanner.scanAll();
    w('.lockstepignore', '*.tmp\nbuild/\n');
    scanner = make();
    const res = await scanner.scanAll();
    expect(res.changed.map((r) => r.path)).toEqual(['.lockstepignore']);
    for (const p of ['build', 'build/out.o', 'build/sub/more.o', 'a.tmp'])
      expect(rec(p)?.deleted).toBe(false);
  });

  it('compares a directory of many entries, and finds what went from it', async () => {
    for (let i = 0; i < 700; i++) w(`big/f${i}.txt`, `file ${i}`);
    w('big/sub/deep.txt', 'deep');
    expect((await scanner.scanAll()).changed).toHaveLength(703);
    expect((await scanner.scanAll()).changed).toEqual([]);
    for (let i = 0; i < 700; i += 2) unlinkSync(join(root, `big/f${i}.txt`));
    rmSync(join(root, 'big/sub'), { recursive: true });
    w('big/f1.txt', 'edited');
    const res = await scanner.scanAll();
    const deleted = res.changed.filter((r) => r.deleted).map((r) => r.path);
    expect(deleted).toHaveLength(352);
    expect(deleted).toContain('big/sub/deep.txt');
    expect(res.changed.filter((r) => !r.deleted).map((r) => r.path)).toEqual(['big/f1.txt']);
    expect(rec('big/f3.txt')?.deleted).toBe(false);
  });

  it('a subtree scan finds what went from below it, and leaves the rest alone', async () => {
    w('d/a/x.txt', 'x');
    w('d/b.txt', 'b');
    w('e/c.txt', 'c');
    await scanner.scanAll();
    rmSync(join(root, 'd/a'), { recursive: true });
    unlinkSync(join(root, 'e/c.txt'));
    const res = await scanner.scan([{ path: 'd', subtree: true }]);
    expect(res.changed.map((r) => `${r.path}:${r.deleted}`).sort()).toEqual([
      'd/a/x.txt:true',
      'd/a:true',
    ]);
    expect(rec('e/c.txt')?.deleted).toBe(false);
  });

  describe('safety stop', () => {
    it('a missing folder marker stops the scan and records no deletions', async () => {
      w('a.txt', 'x');
      await scanner.scanAll();
      unlinkSync(join(root, 'a.txt'));
      unlinkSync(join(root, MARKER_NAME));
      await expect(scanner.scanAll()).rejects.toMatchObject({
        code: 'FOLDER_STOPPED',
        message: /marker/,
      });
      expect(rec('a.txt')?.deleted).toBe(false);
    });
    it('a vanished folder root stops the scan and records no deletions', async () => {
      w('a.txt', 'x');
      await scanner.scanAll();
      rmSync(root, { recursive: true });
      await expect(scanner.scanAll()).rejects.toMatchObject({
        code: 'FOLDER_STOPPED',
        message: /missing/,
      });
      await expect(scanner.scan([{ path: 'a.txt', subtree: false }])).rejects.toMatchObject({
        code: 'FOLDER_STOPPED',
      });
      expect(rec('a.txt')?.deleted).toBe(false);
    });
  });
});

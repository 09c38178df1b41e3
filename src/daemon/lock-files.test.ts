// Enforcement's file operations on a real folder: write bits, conflict
// copies, and nothing done through a symlink or outside the folder.
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SerialQueue } from '../base/serial-queue.js';
import { FolderWriter } from '../folder/writer.js';
import { IndexStore } from '../store/index-store.js';
import { SELF } from '../testing/folder.js';
import { folderLockFiles } from './lock-files.js';

describe('folderLockFiles, through the folder writer', () => {
  let store: IndexStore;
  let writer: FolderWriter;
  let dir: string;
  let root: string;
  let outside: string;
  const mode = (p: string) => fs.lstatSync(p).mode & 0o777;
  const T = Date.UTC(2024, 0, 2, 3, 4, 5);

  beforeEach(() => {
    dir = fs.mkdtempSync(join(tmpdir(), 'lockstep-lockfiles-'));
    root = join(dir, 'folder');
    outside = join(dir, 'outside');
    fs.mkdirSync(join(root, 'docs'), { recursive: true });
    fs.mkdirSync(outside);
    fs.writeFileSync(join(root, 'docs/a.txt'), 'a', { mode: 0o644 });
    fs.writeFileSync(join(outside, 'a.txt'), 'secret', { mode: 0o644 });
    store = new IndexStore(join(dir, 'index.db'), SELF);
    writer = new FolderWriter({ root, store, queue: new SerialQueue() });
  });
  afterEach(() => {
    store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('makes a file read-only and writable again; reports when there is none', () => {
    const files = folderLockFiles(writer, 'AAAAAAA', () => T);
    expect(files.setReadOnly('docs/a.txt', true)).toBe(true);
    expect(mode(join(root, 'docs/a.txt'))).toBe(0o444);
    expect(files.setReadOnly('docs/a.txt', false)).toBe(true);
    expect(mode(join(root, 'docs/a.txt'))).toBe(0o644);
    expect(files.setReadOnly('docs/none.txt', true)).toBe(false);
    expect(files.setReadOnly('docs', true)).toBe(false);
  });

  it('never changes a file outside the folder through a symlink', () => {
    const files = folderLockFiles(writer, 'AAAAAAA', () => T);
    fs.symlinkSync(join(outside, 'a.txt'), join(root, 'link.txt'));
    expect(files.setReadOnly('link.txt', true)).toBe(false);
    fs.rmSync(join(root, 'docs'), { recursive: true });
    fs.symlinkSync(outside, join(root, 'docs'));
    expect(() => files.setReadOnly('docs/a.txt', true)).toThrow(/symlink/);
    expect(() => files.setAside('docs/a.txt')).toThrow(/symlink/);
    expect(mode(join(outside, 'a.txt'))).toBe(0o644);
    expect(fs.readdirSync(outside)).toEqual(['a.txt']);
  });

  it('sets a file aside under a conflict name, writable, numbering clashes without piling up suffixes', () => {
    const files = folderLockFiles(writer, 'AAAAAAA', () => T);
    const base = 'docs/a.conflict-20240102-030405-AAAAAAA.txt';
    const copies: (string | undefined)[] = [];
    for (let i = 0; i < 3; i++) {
      fs.writeFileSync(join(root, 'docs/a.txt'), `edit ${i}`, { mode: 0o444 });
      copies.push(files.setAside('docs/a.txt'));
    }
    const numbered = (n: number) => base.replace('AAAAAAA.txt', `AAAAAAA-${n}.txt`);
    expect(copies).toEqual([base, numbered(2), numbered(3)]);
    expect(fs.readFileSync(join(root, numbered(3)), 'utf8')).toBe('edit 2');
    expect(mode(join(root, numbered(3)))).toBe(0o644);
    expect(fs.existsSync(join(root, 'docs/a.txt'))).toBe(false);
    expect(files.setAside('docs/a.txt')).toBeUndefined();
  });
});

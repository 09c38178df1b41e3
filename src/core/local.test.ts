import { describe, expect, it } from 'vitest';
import { classify, nextRecord, type LocalOutcome, type Observed } from './local.js';
import type { FileRecord } from './record.js';

const H1 = 'a'.repeat(64);
const H2 = 'b'.repeat(64);
const obsF: Observed = {
  type: 'file',
  size: 4,
  mtimeNs: 10n,
  mode: 0o644,
  inode: 1,
  chunks: [{ offset: 0, length: 4, hash: H1 }],
  target: '',
};
const recF: FileRecord = {
  path: 'f',
  ...obsF,
  version: { AAAAAAA: 1 },
  deleted: false,
  sequence: 1,
  modifiedBy: 'AAAAAAA',
};
const obsD: Observed = {
  type: 'directory',
  size: 0,
  mtimeNs: 10n,
  mode: 0o755,
  inode: 2,
  chunks: [],
  target: '',
};
const recD: FileRecord = {
  path: 'd',
  ...obsD,
  version: { AAAAAAA: 1 },
  deleted: false,
  sequence: 2,
  modifiedBy: 'AAAAAAA',
};
const obsL: Observed = {
  type: 'symlink',
  size: 3,
  mtimeNs: 10n,
  mode: 0o777,
  inode: 3,
  chunks: [],
  target: 'abc',
};
const recL: FileRecord = {
  path: 'l',
  ...obsL,
  version: { AAAAAAA: 1 },
  deleted: false,
  sequence: 3,
  modifiedBy: 'AAAAAAA',
};
const tomb: FileRecord = { ...recF, deleted: true, chunks: [], size: 0 };

const table: {
  name: string;
  old: FileRecord | undefined;
  seen: Observed | null;
  want: LocalOutcome;
}[] = [
  { name: 'new file', old: undefined, seen: obsF, want: 'bump' },
  { name: 'unchanged file', old: recF, seen: obsF, want: 'none' },
  {
    name: 'content changed',
    old: recF,
    seen: { ...obsF, chunks: [{ offset: 0, length: 4, hash: H2 }] },
    want: 'bump',
  },
  { name: 'size changed', old: recF, seen: { ...obsF, size: 5 }, want: 'bump' },
  { name: 'mtime changed, same content', old: recF, seen: { ...obsF, mtimeNs: 11n }, want: 'bump' },
  { name: 'inode changed only', old: recF, seen: { ...obsF, inode: 9 }, want: 'silent' },
  {
    name: 'made read-only (lock enforcement)',
    old: recF,
    seen: { ...obsF, mode: 0o444 },
    want: 'silent',
  },
  { name: 'made executable', old: recF, seen: { ...obsF, mode: 0o755 }, want: 'bump' },
  { name: 'file replaced by directory', old: recF, seen: { ...obsD }, want: 'bump' },
  { name: 'file gone', old: recF, seen: null, want: 'bump' },
  { name: 'tombstone still gone', old: tomb, seen: null, want: 'none' },
  { name: 'never seen and gone', old: undefined, seen: null, want: 'none' },
  { name: 'file recreated over tombstone', old: tomb, seen: obsF, want: 'bump' },
  { name: 'directory mtime moved', old: recD, seen: { ...obsD, mtimeNs: 99n }, want: 'silent' },
  { name: 'directory unchanged', old: recD, seen: obsD, want: 'none' },
  { name: 'symlink retargeted', old: recL, seen: { ...obsL, target: 'xyz' }, want: 'bump' },
  { name: 'symlink unchanged', old: recL, seen: obsL, want: 'none' },
];

describe('classify()', () => {
  for (const c of table) it(c.name, () => expect(classify(c.old, c.seen)).toBe(c.want));
});

describe('nextRecord()', () => {
  it('a bump increments the device counter and takes the sequence', () => {
    const r = nextRecord('f', recF, { ...obsF, size: 5 }, 'bump', 'BBBBBBB', 7);
    expect(r).toMatchObject({ version: { AAAAAAA: 1, BBBBBBB: 1 }, sequence: 7, size: 5 });
  });
  it('a silent update keeps version and sequence', () => {
    const r = nextRecord('f', recF, { ...obsF, inode: 9 }, 'silent', 'AAAAAAA', 7);
    expect(r).toMatchObject({ version: { AAAAAAA: 1 }, sequence: 1, inode: 9 });
  });
  it('a tombstone keeps type and path, drops content', () => {
    const r = nextRecord('f', recF, null, 'bump', 'AAAAAAA', 4);
    expect(r).toMatchObject({
      path: 'f',
      type: 'file',
      deleted: true,
      size: 0,
      chunks: [],
      version: { AAAAAAA: 2 },
    });
  });
});

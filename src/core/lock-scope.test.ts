import { describe, expect, it } from 'vitest';
import type { LockRow, LockScope } from './lock-rules.js';
import { conflictMessage, conflictingLock, coveringLock, covers } from './lock-scope.js';

const lock = (path: string, scope?: LockScope): LockRow => ({
  path,
  id: `id-${path.replaceAll('/', '_')}`,
  owner: 'alice',
  device: 'AAA',
  createdMs: 0,
  expiresMs: null,
  reason: '',
  token: 1,
  ...(scope === undefined ? {} : { scope }),
});
const dir = (path: string) => lock(path, 'directory');
const file = (path: string) => lock(path, 'file');

describe('coveringLock', () => {
  const cases: { name: string; held: LockRow[]; path: string; want: string | undefined }[] = [
    {
      name: 'a file under a locked directory',
      held: [dir('proj')],
      path: 'proj/a.txt',
      want: 'proj',
    },
    {
      name: 'deep below a locked directory',
      held: [dir('proj')],
      path: 'proj/x/y/z.md',
      want: 'proj',
    },
    { name: 'the locked directory itself', held: [dir('proj')], path: 'proj', want: 'proj' },
    {
      name: 'sibling with a common prefix',
      held: [dir('proj')],
      path: 'project/a.txt',
      want: undefined,
    },
    {
      name: 'sibling named like the directory plus text',
      held: [dir('proj')],
      path: 'proj.txt',
      want: undefined,
    },
    {
      name: 'the parent of a locked directory',
      held: [dir('proj/sub')],
      path: 'proj/a.txt',
      want: undefined,
    },
    { name: 'a locked file', held: [file('proj/a.txt')], path: 'proj/a.txt', want: 'proj/a.txt' },
    {
      name: "a locked file's sibling",
      held: [file('proj/a.txt')],
      path: 'proj/b.txt',
      want: undefined,
    },
    {
      name: 'a file lock covers nothing below its path',
      held: [file('proj')],
      path: 'proj/a.txt',
      want: undefined,
    },
    {
      name: 'a row without scope is a file lock',
      held: [lock('proj')],
      path: 'proj/a.txt',
      want: undefined,
    },
    { name: 'root-level file under no lock', held: [dir('proj')], path: 'a.txt', want: undefined },
    { name: 'root-level locked directory', held: [dir('a')], path: 'a/b', want: 'a' },
    {
      name: 'a conflict copy below a locked directory is not covered',
      held: [dir('proj')],
      path: 'proj/a.conflict-20261124-180340-B7XKQ2M.txt',
      want: undefined,
    },
    {
      name: 'nor anything inside a directory kept as a conflict copy',
      held: [dir('proj')],
      path: 'proj/sub.conflict-20261124-180340-B7XKQ2M-2/f.txt',
      want: undefined,
    },
    {
      name: 'a conflict copy that is itself locked as a file is covered by that lock',
      held: [dir('proj'), file('proj/a.conflict-20261124-180340-B7XKQ2M.txt')],
      path: 'proj/a.conflict-20261124-180340-B7XKQ2M.txt',
      want: 'proj/a.conflict-20261124-180340-B7XKQ2M.txt',
    },
    {
      name: 'a file lock below a directory lock: the nearest wins',
      held: [dir('proj'), file('proj/a.txt')],
      path: 'proj/a.txt',
      want: 'proj/a.txt',
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const byPath = new Map(c.held.map((l) => [l.path, l]));
      expect(coveringLock(c.path, (p) => byPath.get(p))?.path).toBe(c.want);
      // covers agrees with coveringLock
      expect(c.held.some((l) => covers(l, c.path))).toBe(c.want !== undefined);
    });
  }
});

describe('conflictingLock', () => {
  const cases: {
    name: string;
    want: { path: string; scope: LockScope };
    held: LockRow[];
    conflict: string | undefined;
  }[] = [
    {
      name: 'file under a locked directory',
      want: { path: 'proj/a.txt', scope: 'file' },
      held: [dir('proj')],
      conflict: 'proj',
    },
    {
      name: 'directory over a locked file',
      want: { path: 'proj', scope: 'directory' },
      held: [file('proj/x/a.txt')],
      conflict: 'proj/x/a.txt',
    },
    {
      name: 'directory over a locked directory',
      want: { path: 'proj', scope: 'directory' },
      held: [dir('proj/sub')],
      conflict: 'proj/sub',
    },
    {
      name: 'directory under a locked directory',
      want: { path: 'proj/sub', scope: 'directory' },
      held: [dir('proj')],
      conflict: 'proj',
    },
    {
      name: 'the same file',
      want: { path: 'a.txt', scope: 'file' },
      held: [file('a.txt')],
      conflict: 'a.txt',
    },
    {
      name: 'the same directory',
      want: { path: 'proj', scope: 'directory' },
      held: [dir('proj')],
      conflict: 'proj',
    },
    {
      name: 'sibling with a common prefix: "proj" vs "project"',
      want: { path: 'project', scope: 'directory' },
      held: [dir('proj')],
      conflict: undefined,
    },
    {
      name: 'sibling with a common prefix the other way',
      want: { path: 'proj', scope: 'directory' },
      held: [file('project/a.txt'), dir('project')],
      conflict: undefined,
    },
    {
      name: 'a file beside a locked file',
      want: { path: 'proj/b.txt', scope: 'file' },
      held: [file('proj/a.txt')],
      conflict: undefined,
    },
    {
      name: 'root-level: a file beside a locked directory',
      want: { path: 'a.txt', scope: 'file' },
      held: [dir('proj'), file('b.txt')],
      conflict: undefined,
    },
    {
      name: 'root-level: a directory over a root-level file',
      want: { path: 'docs', scope: 'directory' },
      held: [file('docs.md')],
      conflict: undefined,
    },
    {
      name: 'nothing held',
      want: { path: 'proj', scope: 'directory' },
      held: [],
      conflict: undefined,
    },
    {
      name: 'a conflict copy below a locked directory may be locked',
      want: { path: 'proj/a.conflict-20261124-180340-B7XKQ2M.txt', scope: 'file' },
      held: [dir('proj')],
      conflict: undefined,
    },
  ];
  for (const c of cases) {
    it(c.name, () => expect(conflictingLock(c.want, c.held)?.path).toBe(c.conflict));
  }
});

describe('conflictMessage', () => {
  const name = () => 'A';
  it('names the holder for the same path', () => {
    expect(conflictMessage({ path: 'a.txt', scope: 'file' }, file('a.txt'), name)).toBe(
      'a.txt is already locked by alice@A since 1970-01-01T00:00:00.000Z',
    );
  });
  it('names the directory lock that covers a file', () => {
    expect(conflictMessage({ path: 'proj/a.txt', scope: 'file' }, dir('proj'), name)).toBe(
      'proj/a.txt is inside proj/, locked by alice@A since 1970-01-01T00:00:00.000Z',
    );
  });
  it('names the lock below a directory', () => {
    expect(conflictMessage({ path: 'proj', scope: 'directory' }, file('proj/a.txt'), name)).toMatch(
      /^proj\/ holds proj\/a\.txt, locked by alice@A since /,
    );
  });
});

// The page's pure logic: sorting, filtering, navigation, sync state, errors.
import { describe, expect, it } from 'vitest';
import type { DeviceRef, ListEntry, Status } from '../../src/api/backend.js';
import {
  crumbs,
  dirOfHash,
  errorText,
  filterEntries,
  hashOfDir,
  nextSort,
  rowOf,
  shortTime,
  signinCodeOf,
  sortEntries,
  syncState,
} from './logic';

const A: DeviceRef = { id: 'AAAAAAA-1', short: 'AAAAAAA', name: 'A' };
const B: DeviceRef = { id: 'BBBBBBB-1', short: 'BBBBBBB', name: 'B' };

function entry(name: string, over: Partial<ListEntry> = {}): ListEntry {
  return {
    name,
    path: name,
    type: 'file',
    size: 0,
    modified: '2026-01-01T00:00:00.000Z',
    lock: null,
    devices: [A, B],
    syncing: null,
    conflict: false,
    ...over,
  };
}

const status = { device: A, peers: [{ ...B }] } as unknown as Pick<Status, 'device' | 'peers'>;

describe('sortEntries()', () => {
  const list = [
    entry('b.txt', { size: 10, modified: '2026-01-03T00:00:00Z' }),
    entry('docs', { type: 'directory' }),
    entry('A.txt', { size: 30, modified: '2026-01-01T00:00:00Z' }),
    entry('file10', { size: 20, modified: '2026-01-02T00:00:00Z' }),
    entry('file9', { size: 20, modified: '2026-01-02T00:00:00Z' }),
  ];
  const names = (s: Parameters<typeof sortEntries>[1]) => sortEntries(list, s).map((e) => e.name);

  it('sorts by name, any case, numbers as numbers, directories first', () => {
    expect(names({ key: 'name', order: 'asc' })).toEqual([
      'docs',
      'A.txt',
      'b.txt',
      'file9',
      'file10',
    ]);
    expect(names({ key: 'name', order: 'desc' })).toEqual([
      'docs',
      'file10',
      'file9',
      'b.txt',
      'A.txt',
    ]);
  });

  it('sorts by size and by modified time, ties by name', () => {
    expect(names({ key: 'size', order: 'asc' })).toEqual([
      'docs',
      'b.txt',
      'file9',
      'file10',
      'A.txt',
    ]);
    expect(names({ key: 'modified', order: 'desc' })).toEqual([
      'docs',
      'b.txt',
      'file9',
      'file10',
      'A.txt',
    ]);
  });

  it('nextSort() flips the same column and starts another ascending', () => {
    expect(nextSort({ key: 'name', order: 'asc' }, 'name')).toEqual({ key: 'name', order: 'desc' });
    expect(nextSort({ key: 'name', order: 'desc' }, 'size')).toEqual({ key: 'size', order: 'asc' });
  });
});

describe('filterEntries()', () => {
  it('keeps names containing the text, in any case; empty text keeps all', () => {
    const list = [entry('Report.pdf'), entry('notes.txt'), entry('report-old.pdf')];
    expect(filterEntries(list, 'REPORT').map((e) => e.name)).toEqual([
      'Report.pdf',
      'report-old.pdf',
    ]);
    expect(filterEntries(list, '  ')).toHaveLength(3);
  });
});

describe('navigation', () => {
  it('crumbs() lists the root and each directory down', () => {
    expect(crumbs('')).toEqual([{ name: 'Folder', dir: '' }]);
    expect(crumbs('docs/drafts')).toEqual([
      { name: 'Folder', dir: '' },
      { name: 'docs', dir: 'docs' },
      { name: 'drafts', dir: 'docs/drafts' },
    ]);
  });

  it('hashOfDir() and dirOfHash() round-trip, names with spaces and # included', () => {
    for (const d of ['', 'docs', 'a b/c#d', 'ünï/x%y']) expect(dirOfHash(hashOfDir(d))).toBe(d);
    expect(dirOfHash('#signin=abc')).toBe('');
    expect(dirOfHash('#/../etc')).toBe('');
  });

  it('signinCodeOf() finds a code only in a #signin= hash', () => {
    expect(signinCodeOf('#signin=abc_DEF-123')).toBe('abc_DEF-123');
    expect(signinCodeOf('#/docs')).toBeUndefined();
    expect(signinCodeOf('#signin=<script>')).toBeUndefined();
  });

  it('rowOf() names the entry of the shown directory a change lands in', () => {
    expect(rowOf('', 'a.txt')).toBe('a.txt');
    expect(rowOf('', 'docs/drafts/x.md')).toBe('docs');
    expect(rowOf('docs', 'docs/drafts/x.md')).toBe('docs/drafts');
    expect(rowOf('docs', 'docs')).toBeUndefined();
    expect(rowOf('docs', 'docsx/a')).toBeUndefined();
    expect(rowOf('docs', 'other/a')).toBeUndefined();
  });
});

describe('syncState()', () => {
  it('says in sync, syncing with progress, or which devices lack the file', () => {
    expect(syncState(entry('x'), status)).toEqual({ text: 'in sync' });
    expect(syncState(entry('x', { syncing: { done: 40, total: 100 } }), status)).toEqual({
      text: 'syncing 40%',
      progress: 0.4,
    });
    expect(syncState(entry('x', { devices: [A] }), status)).toEqual({ text: 'not yet on B' });
    expect(syncState(entry('x', { devices: [B] }), status)).toEqual({ text: 'not here yet' });
    expect(syncState(entry('x'), undefined)).toEqual({ text: '' });
  });
});

describe('errorText()', () => {
  it('leads with what went wrong for lock errors, else passes the message on', () => {
    expect(errorText({ code: 'LOCKED', message: 'x is already locked by alice@A' })).toBe(
      'Already locked: x is already locked by alice@A',
    );
    expect(errorText({ code: 'AUTHORITY_UNREACHABLE', message: 'A cannot be reached' })).toMatch(
      /^Locks are unavailable right now: A cannot be reached/,
    );
    expect(errorText({ code: 'NOT_FOUND', message: 'No such path: x' })).toBe('No such path: x');
  });
});

describe('shortTime()', () => {
  it('shows the time alone for today, the date too for another day', () => {
    const now = new Date(2026, 10, 24, 18, 30).getTime();
    expect(shortTime(new Date(2026, 10, 24, 9, 5).toISOString(), now)).toBe('09:05');
    expect(shortTime(new Date(2026, 10, 23, 23, 59).toISOString(), now)).toBe('2026-11-23 23:59');
  });
});

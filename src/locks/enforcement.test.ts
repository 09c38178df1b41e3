// Enforcement in process, with recorded file operations instead of a disk.
import { describe, expect, it } from 'vitest';
import pino from 'pino';
import type { LockRow } from '../core/lock-rules.js';
import { coveringLock } from '../core/lock-scope.js';
import { LockEnforcement, type LockedFiles } from './enforcement.js';

const SELF = 'SELF';
const lock = (path: string, device: string, scope: LockRow['scope'] = 'file'): LockRow => ({
  path,
  id: `id-${path}`,
  owner: 'alice',
  device,
  createdMs: 0,
  expiresMs: null,
  reason: '',
  token: 1,
  scope,
});

function setup(opts: { failAside?: string } = {}) {
  const locks = new Map<string, LockRow>();
  const onDisk = new Set([
    'a.txt',
    'b.txt',
    'mine.txt',
    'proj/x.txt',
    'proj/sub/y.txt',
    'proj/x.conflict-20261124-180340-B7XKQ2M.txt',
    'project/z.txt',
  ]);
  const readOnly = new Set<string>();
  const log: string[] = [];
  const files: LockedFiles = {
    setReadOnly(path, on) {
      if (!onDisk.has(path)) return false;
      if (on) readOnly.add(path);
      else readOnly.delete(path);
      return true;
    },
    setAside(path) {
      if (path === opts.failAside) throw new Error('disk full');
      if (!onDisk.delete(path)) return undefined;
      return `${path}.copy`;
    },
  };
  let queued: Promise<void> = Promise.resolve();
  const e = new LockEnforcement({
    self: SELF,
    lockOf: (p) => coveringLock(p, (q) => locks.get(q)),
    pathsBelow: (dir) => [...onDisk].filter((p) => p.startsWith(`${dir}/`)),
    files,
    log: pino({ level: 'silent' }),
    serially: (fn) => (queued = queued.then(fn)),
    forgetLocal: (p) => log.push(`forget ${p}`),
    scanNow: (ps) => Promise.resolve(log.push(`scan ${ps.join(',')}`)),
    pullAgain: (ps) => log.push(`pull ${ps.join(',')}`),
    lockedChange: (p, copy) => log.push(`lockedChange ${p} ${copy ?? '-'}`),
    deviceName: (id) => id,
  });
  return { e, locks, readOnly, log, onDisk, idle: () => queued };
}

describe('LockEnforcement', () => {
  it("writes local changes under the token of a lock held here, and no other device's", () => {
    const { e, locks } = setup();
    locks.set('a.txt', { ...lock('a.txt', 'OTHER'), token: 8 });
    locks.set('mine.txt', { ...lock('mine.txt', SELF), token: 9 });
    expect(e.fencingToken('mine.txt')).toBe(9);
    expect(e.fencingToken('a.txt')).toBe(0);
    expect(e.fencingToken('b.txt')).toBe(0);
  });

  it('vetoes local changes only of files locked on another device', () => {
    const { e, locks } = setup();
    locks.set('a.txt', lock('a.txt', 'OTHER'));
    locks.set('mine.txt', lock('mine.txt', SELF));
    expect(e.vetoes('a.txt')).toBe(true);
    expect(e.vetoes('mine.txt')).toBe(false);
    expect(e.vetoes('b.txt')).toBe(false);
  });

  it('makes a file read-only while locked elsewhere, writable after, and keeps it so for a late pull', () => {
    const { e, locks, readOnly } = setup();
    locks.set('a.txt', lock('a.txt', 'OTHER'));
    locks.set('mine.txt', lock('mine.txt', SELF));
    e.enforceAll([...locks.values()]);
    expect([...readOnly]).toEqual(['a.txt']);
    const gone = locks.get('a.txt') as LockRow;
    locks.delete('a.txt');
    e.lockChanged(gone);
    expect(readOnly.size).toBe(0);
    // A pull planned while it was read-only lands after the unlock: writable again.
    readOnly.add('a.txt');
    e.applied('a.txt');
    expect(readOnly.size).toBe(0);
    // Once done, a later pull of an unlocked file is left alone.
    readOnly.add('a.txt');
    e.applied('a.txt');
    expect(readOnly.has('a.txt')).toBe(true);
  });

  it('makes every file below a directory locked elsewhere read-only, conflict copies aside, and writable after', () => {
    const { e, locks, readOnly } = setup();
    const dir = lock('proj', 'OTHER', 'directory');
    locks.set('proj', dir);
    e.lockChanged(dir);
    expect([...readOnly].sort()).toEqual(['proj/sub/y.txt', 'proj/x.txt']);
    expect(e.vetoes('proj/new/file.txt')).toBe(true);
    expect(e.vetoes('proj/x.conflict-20261124-180340-B7XKQ2M.txt')).toBe(false);
    expect(e.vetoes('project/z.txt')).toBe(false);
    locks.delete('proj');
    e.lockChanged(dir);
    expect(readOnly.size).toBe(0);
  });

  it("leaves the modes below a directory locked here as they are (the holder's own)", () => {
    const { e, locks, readOnly } = setup();
    readOnly.add('proj/sub/y.txt'); // made read-only by its owner
    locks.set('proj', lock('proj', SELF, 'directory'));
    e.enforceAll([...locks.values()]);
    expect([...readOnly]).toEqual(['proj/sub/y.txt']);
    expect(e.vetoes('proj/x.txt')).toBe(false);
    e.applied('proj/sub/y.txt');
    expect([...readOnly]).toEqual(['proj/sub/y.txt']);
  });

  it('restores locked files changed here: copy, forget, scan the copies, pull the holder version', async () => {
    const { e, locks, log, idle } = setup();
    locks.set('a.txt', lock('a.txt', 'OTHER'));
    locks.set('gone.txt', lock('gone.txt', 'OTHER'));
    e.restore(['a.txt', 'gone.txt']);
    await idle();
    expect(log).toEqual([
      'lockedChange a.txt a.txt.copy',
      'forget a.txt',
      'lockedChange gone.txt -',
      'forget gone.txt',
      'scan a.txt.copy',
      'pull a.txt,gone.txt',
    ]);
  });

  it('goes on with the other paths when one cannot be set aside', async () => {
    const { e, log, idle } = setup({ failAside: 'a.txt' });
    e.restore(['a.txt', 'b.txt']);
    await idle();
    expect(log).toEqual([
      'lockedChange b.txt b.txt.copy',
      'forget b.txt',
      'scan b.txt.copy',
      'pull a.txt,b.txt',
    ]);
  });
});

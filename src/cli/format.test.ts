// What people see: the merged listing, lock replies, events and status.
process.env.TZ = 'UTC';

import { describe, expect, it } from 'vitest';
import type { ClientEvent, ListEntry, LockInfo } from '../api/backend.js';
import { DEV_A, DEV_B, FakeBackend, SAMPLE_FILES } from '../testing/fake-backend.js';
import {
  eventLine,
  formatLocal,
  listingTable,
  lockCell,
  lockedLine,
  locksTable,
  printable,
  statusText,
  unlockedLine,
} from './format.js';

const NOW = Date.parse('2026-11-24T18:00:00.000Z');
const lock = (over: Partial<LockInfo> = {}): LockInfo => ({
  id: 'l1',
  path: 'b.txt',
  owner: 'alice',
  device: DEV_A,
  created: '2026-11-24T17:00:00.000Z',
  expires: null,
  reason: '',
  scope: 'file',
  ...over,
});

function sampleEntries(): ListEntry[] {
  const b = new FakeBackend(SAMPLE_FILES);
  b.lockTable.set('b.txt', lock({ expires: '2026-11-24T19:00:00.000Z' }));
  return [...b.list({ dir: '', sort: 'name', order: 'asc', offset: 0, limit: 100 }).entries];
}

describe('listingTable()', () => {
  it("prints DESIGN.md's columns: sizes, local dates, lock with time left, devices, progress", () => {
    expect(listingTable(sampleEntries().slice(0, 4), NOW)).toBe(
      [
        '  #  NAME   SIZE       MODIFIED             LOCK                ON',
        '  1  a.jpg  45.5 KiB   2021-09-26 11:00:06                      A B',
        '  2  b.txt  661 B      2021-09-27 18:51:43  alice@A  (1h left)  A B',
        '  3  c.pdf  8.2 MiB    2021-07-08 23:50:38                      A B  syncing 40%',
        '  4  d.gif  128.9 KiB  2021-09-26 11:00:06                      B',
      ].join('\n'),
    );
  });

  it('marks directories with a trailing / and conflict copies, sorts device names', () => {
    const entries = sampleEntries();
    const docs = { ...(entries[4] as ListEntry), devices: [DEV_B, DEV_A] };
    const lines = listingTable([docs, entries[5] as ListEntry], NOW).split('\n');
    expect(lines[1]).toMatch(/^ {2}1 {2}docs\/ +2021-09-20 10:00:00 +A B$/);
    expect(lines[2]).toMatch(/e\.conflict-20261124-180340-B7XKQ2M\.txt .* B {2}conflict copy$/);
  });

  it('numbers from `first` and right-aligns the numbers', () => {
    const entries = Array.from({ length: 12 }, (_, i) => ({
      ...(sampleEntries()[0] as ListEntry),
      name: `f${i}`,
    }));
    const lines = listingTable(entries, NOW, 1).split('\n');
    expect(lines[1]).toMatch(/^ {3}1 {2}f0 /);
    expect(lines[12]).toMatch(/^ {2}12 {2}f11 /);
  });

  it('never lets a name put control characters on the terminal', () => {
    expect(printable('evil\u001b[2Jname\n.txt')).toBe('evil?[2Jname?.txt');
  });
});

describe('lock text', () => {
  it('shows no expiry, time left, or expired', () => {
    expect(lockCell(null, NOW)).toBe('');
    expect(lockCell(lock(), NOW)).toBe('alice@A');
    expect(lockCell(lock({ expires: '2026-11-24T19:20:00.000Z' }), NOW)).toBe(
      'alice@A  (1h 20m left)',
    );
    expect(lockCell(lock({ expires: '2026-11-24T17:59:00.000Z' }), NOW)).toBe('alice@A  (expired)');
  });

  it('shows a directory lock on the directory, and on each path below it with the directory', () => {
    const dir = lock({ path: 'proj', scope: 'directory' });
    expect(lockCell(dir, NOW, 'proj')).toBe('alice@A');
    expect(lockCell(dir, NOW, 'proj/a.txt')).toBe('alice@A (proj/)');
    expect(lockCell({ ...dir, expires: '2026-11-24T19:00:00.000Z' }, NOW, 'proj/x/b.txt')).toBe(
      'alice@A (proj/)  (1h left)',
    );
    expect(lockedLine(dir, NOW)).toBe(
      'locked proj/ (directory) for alice (no expiry) — every file below it is read-only on every other device',
    );
    expect(unlockedLine(dir)).toBe(
      'unlocked proj/ (was locked by alice@A since 2026-11-24 17:00:00)',
    );
    expect(locksTable([dir, lock({ path: 'project.txt' })], NOW).split('\n')).toEqual([
      'PATH               OWNER    SINCE                EXPIRES  REASON',
      'proj/ (directory)  alice@A  2026-11-24 17:00:00  never',
      'project.txt        alice@A  2026-11-24 17:00:00  never',
    ]);
    expect(eventLine({ type: 'unlocked', lock: dir, time: '2026-11-24T18:02:11.000Z' })).toBe(
      '18:02:11  unlocked  proj/ by alice@A',
    );
  });

  it('replies to lock and unlock as DESIGN.md says', () => {
    expect(lockedLine(lock({ path: 'c.pdf' }), NOW)).toBe(
      'locked c.pdf for alice (no expiry) — read-only on every other device',
    );
    expect(lockedLine(lock({ expires: '2026-11-24T20:00:00.000Z' }), NOW)).toBe(
      'locked b.txt for alice (expires in 2h, at 2026-11-24 20:00:00) — read-only on every other device',
    );
    expect(unlockedLine(lock())).toBe(
      'unlocked b.txt (was locked by alice@A since 2026-11-24 17:00:00)',
    );
  });

  it('lists locks as a table, or says there are none', () => {
    expect(locksTable([], NOW)).toBe('No locks.');
    expect(
      locksTable(
        [lock({ path: 'z.txt', reason: 'editing' }), lock({ expires: '2026-11-24T19:00:00Z' })],
        NOW,
      ),
    ).toBe(
      [
        'PATH   OWNER    SINCE                EXPIRES  REASON',
        'b.txt  alice@A  2026-11-24 17:00:00  in 1h',
        'z.txt  alice@A  2026-11-24 17:00:00  never    editing',
      ].join('\n'),
    );
  });
});

describe('eventLine()', () => {
  const t = '2026-11-24T18:02:11.000Z';
  it.each<[ClientEvent, string]>([
    [
      { type: 'modified', path: 'b.txt', device: DEV_B, size: 7270, oldSize: 661, time: t },
      '18:02:11  modified  b.txt on B (661 B -> 7.1 KiB)',
    ],
    [
      { type: 'synced', path: 'b.txt', device: DEV_A, deleted: false, durationMs: 4, time: t },
      '18:02:11  synced    b.txt to A (4 ms)',
    ],
    [
      { type: 'synced', path: 'x', device: DEV_A, deleted: true, time: t },
      '18:02:11  synced    delete of x to A',
    ],
    [
      { type: 'added', path: 'n.txt', device: DEV_A, size: 10, time: t },
      '18:02:11  added     n.txt on A (10 B)',
    ],
    [
      { type: 'deleted', path: 'n.txt', device: DEV_A, size: 0, time: t },
      '18:02:11  deleted   n.txt on A',
    ],
    [
      {
        type: 'conflict',
        path: 'e.txt',
        copy: 'e.conflict-20261124-180340-B7XKQ2M.txt',
        device: DEV_B,
        time: t,
      },
      '18:02:11  conflict  e.txt on B: edited on two devices at once; the losing version is kept as\n' +
        '                    e.conflict-20261124-180340-B7XKQ2M.txt',
    ],
    [
      { type: 'locked', lock: lock({ reason: 'big edit' }), time: t },
      '18:02:11  locked    b.txt by alice@A (no expiry): big edit',
    ],
    [{ type: 'unlocked', lock: lock(), time: t }, '18:02:11  unlocked  b.txt by alice@A'],
    [
      { type: 'expired', lock: lock(), time: t },
      '18:02:11  expired   b.txt: the lock of alice@A ran out',
    ],
    [
      { type: 'forced', lock: lock(), by: 'admin', time: t },
      '18:02:11  forced    b.txt: the lock of alice@A was removed by admin',
    ],
    [{ type: 'connected', device: DEV_B, time: t }, '18:02:11  connected  B (BBBBBBB)'],
    [
      { type: 'disconnected', device: DEV_B, reason: 'timeout', time: t },
      '18:02:11  disconnected  B (BBBBBBB): timeout',
    ],
  ])('prints %j', (ev, line) => {
    expect(eventLine(ev)).toBe(line);
  });
});

describe('statusText()', () => {
  it('shows the device, authority, what is left, peers and problems', () => {
    const s = new FakeBackend(SAMPLE_FILES).status();
    const text = statusText({
      ...s,
      peers: [
        ...s.peers,
        {
          id: 'C',
          short: 'CCCCCCC',
          name: 'C',
          address: '10.0.0.3:7700',
          connected: false,
          lastSeen: null,
          error: 'connection refused',
        },
      ],
      problems: [{ path: 'x.bin', message: 'permission denied' }],
    });
    expect(text).toBe(
      [
        'Device     A (AAAAAAA), lockstep 0.1.0',
        'Folder     /srv/shared',
        'Locks      authority A (AAAAAAA), this device',
        'To sync    1 file, 8.2 MiB',
        'Local      7 files, 8.6 MiB',
        'Peers      1 of 2 connected',
        '  B (BBBBBBB)  127.0.0.1:7710  connected',
        '  C (CCCCCCC)  10.0.0.3:7700   disconnected  connection refused',
        'Problems   1',
        '  x.bin: permission denied',
      ].join('\n'),
    );
    expect(statusText({ ...s, lockAuthority: null })).toMatch(
      /Locks +refused: the devices disagree/,
    );
  });

  it('formats dates in local time', () => {
    expect(formatLocal('2021-09-26T11:00:06.000Z')).toBe('2021-09-26 11:00:06');
    expect(formatLocal('not a date')).toBe('not a date');
  });
});

// Table tests of the Jepsen-style checker (jepsen-checker.ts) on tiny
// hand-made histories: each rule passes a valid history and names the
// violation in a broken one.
import { describe, expect, it } from 'vitest';
import {
  check,
  checkAuthority,
  checkGrants,
  conflictCopies,
  earliestEnd,
  type Attempt,
  type AuthorityLock,
  type Folder,
} from './jepsen-checker.js';

const COPY = (stem: string) => `${stem}.conflict-20261205-120000-ABCDEFG.txt`;

/** A granted attempt on f.txt. */
function granted(
  n: number,
  invokeMs: number,
  completeMs: number,
  more: Partial<Attempt> & { write?: boolean } = {},
): Attempt {
  const { write, ...rest } = more;
  const a: Attempt = {
    n,
    device: 'A',
    user: `u${n}`,
    path: 'f.txt',
    ttlS: null,
    invokeMs,
    completeMs,
    answer: { type: 'granted', id: `L${n}` },
    ...rest,
  };
  if (write !== true) return a;
  const at = a.completeMs + 1;
  return {
    ...a,
    writes: [
      {
        attempt: n,
        device: a.device,
        path: a.path,
        content: `attempt ${n}`,
        lockId: `L${n}`,
        startMs: at,
        endMs: at + 1,
      },
    ],
  };
}

const lock = (n: number, token: number, createRev: number, endRev: number | null) =>
  ({ id: `L${n}`, path: 'f.txt', token, createRev, endRev }) satisfies AuthorityLock;

describe('the Jepsen checker', () => {
  it('earliest end: the first unlock, or the TTL from the invocation', () => {
    expect(earliestEnd(granted(1, 0, 10))).toBe(Infinity);
    expect(earliestEnd(granted(1, 0, 10, { unlockMs: 50 }))).toBe(50);
    expect(earliestEnd(granted(1, 100, 110, { ttlS: 1 }))).toBe(1100);
    expect(earliestEnd(granted(1, 100, 110, { ttlS: 1, unlockMs: 2000 }))).toBe(1100);
  });

  const cases: {
    name: string;
    attempts: Attempt[];
    authority: AuthorityLock[];
    want: RegExp | null;
  }[] = [
    {
      name: 'one after the other, unlocked in between',
      attempts: [granted(1, 0, 10, { unlockMs: 20 }), granted(2, 15, 30, { unlockMs: 40 })],
      authority: [lock(1, 5, 5, 6), lock(2, 7, 7, 8)],
      want: null,
    },
    {
      name: 'the second granted after the first TTL ran out',
      attempts: [granted(1, 0, 10, { ttlS: 1 }), granted(2, 900, 1001)],
      authority: [lock(1, 5, 5, 6), lock(2, 7, 7, null)],
      want: null,
    },
    {
      name: 'the second granted before the first could have ended',
      attempts: [granted(1, 0, 10, { unlockMs: 100 }), granted(2, 20, 30)],
      authority: [lock(1, 5, 5, 6), lock(2, 7, 7, null)],
      want: /two holders at once: attempt 2 .* was granted while attempt 1 /,
    },
    {
      name: 'the second granted before the first TTL could have run out',
      attempts: [granted(1, 0, 10, { ttlS: 2 }), granted(2, 1000, 1999)],
      authority: [lock(1, 5, 5, 6), lock(2, 7, 7, null)],
      want: /two holders at once/,
    },
    {
      name: 'a grant the authority never recorded',
      attempts: [granted(1, 0, 10, { unlockMs: 20 }), granted(2, 30, 40)],
      authority: [lock(1, 5, 5, 6)],
      want: /attempt 2 .* was granted lock L2 on f\.txt, which the authority never recorded/,
    },
    {
      name: 'tokens backwards in real time',
      attempts: [granted(1, 0, 10, { unlockMs: 20 }), granted(2, 30, 40)],
      authority: [lock(1, 9, 5, 6), lock(2, 7, 7, null)],
      want: /tokens go backwards in real time/,
    },
    {
      name: 'two grants sharing a token',
      attempts: [granted(1, 0, 10, { unlockMs: 20 }), granted(2, 30, 40)],
      authority: [lock(1, 7, 5, 6), lock(2, 7, 7, null)],
      want: /two grants share token 7/,
    },
    {
      name: 'the authority granted over a standing lock',
      attempts: [],
      authority: [lock(1, 5, 5, 9), lock(2, 7, 7, null)],
      want: /the authority granted lock L2 at revision 7 while lock L1 .* stood until 9/,
    },
    {
      name: 'the authority with a token that does not grow',
      attempts: [],
      authority: [lock(1, 5, 5, 6), lock(2, 4, 7, null)],
      want: /token 4 of lock L2 does not grow past 5/,
    },
  ];
  for (const c of cases) {
    it(`mutual exclusion: ${c.name}`, () => {
      const v = [...checkAuthority(c.authority), ...checkGrants(c.attempts, c.authority)];
      if (c.want === null) expect(v).toEqual([]);
      else expect(v.join('\n')).toMatch(c.want);
    });
  }

  it('refused and failed attempts hold nothing', () => {
    const attempts: Attempt[] = [
      granted(1, 0, 10, { unlockMs: 100 }),
      { ...granted(2, 20, 30), answer: { type: 'refused', status: 423, code: 'LOCKED' } },
      { ...granted(3, 20, 30), answer: { type: 'failed', why: 'timed out' } },
    ];
    expect(checkGrants(attempts, [lock(1, 5, 5, null)])).toEqual([]);
  });

  it('finds the conflict copies of a path', () => {
    const f: Folder = new Map([
      ['f.txt', 'x'],
      [COPY('f'), 'y'],
      [COPY('g'), 'z'],
      ['d/f.txt', 'w'],
      ['f.conflict-1.txt', 'v'],
    ]);
    expect(conflictCopies(f, 'f.txt')).toEqual([COPY('f')]);
    expect(conflictCopies(new Map([[`d/${COPY('f')}`, 'y']]), 'd/f.txt')).toEqual([
      `d/${COPY('f')}`,
    ]);
  });

  // Writes: 1 (token 5) and 2 (token 7) in order; 3 is attempt 1's holder
  // writing again after 2's grant: stale.
  const w1 = granted(1, 0, 10, { unlockMs: 20, write: true });
  const w2 = granted(2, 30, 40, { unlockMs: 60, write: true, device: 'B' });
  const stale: Attempt = {
    ...granted(3, -20, -10, { unlockMs: -5 }),
    answer: { type: 'granted', id: 'L3' },
    writes: [
      {
        attempt: 3,
        device: 'A',
        path: 'f.txt',
        content: 'attempt 3, stale',
        lockId: 'L3',
        startMs: 50,
        endMs: 51,
      },
    ],
  };
  const again = { ...(w2.writes?.[0] as NonNullable<Attempt['writes']>[number]) };
  const twice: Attempt = {
    ...w2,
    writes: [
      ...(w2.writes ?? []),
      { ...again, content: 'attempt 2, again', startMs: 45, endMs: 46 },
    ],
  };
  const authority = [lock(1, 5, 5, 6), lock(2, 7, 7, 8), { ...lock(3, 4, 3, 4) }];
  const initial = new Map([['f.txt', 'initial']]);
  const both = (f: [string, string][]) =>
    new Map<string, Folder>([
      ['A', new Map(f)],
      ['B', new Map(f)],
    ]);
  const fencing: {
    name: string;
    attempts: Attempt[];
    folders: Map<string, Folder>;
    want: RegExp | null;
  }[] = [
    {
      name: 'the largest token wins everywhere',
      attempts: [w1, w2],
      folders: both([['f.txt', 'attempt 2']]),
      want: null,
    },
    {
      name: 'no writes: the initial content stays',
      attempts: [],
      folders: both([['f.txt', 'initial']]),
      want: null,
    },
    {
      name: 'an older token won',
      attempts: [w1, w2],
      folders: both([['f.txt', 'attempt 1']]),
      want: /f\.txt on A holds "attempt 1" \(token 5\), not the write under the largest token 7/,
    },
    {
      name: 'devices differ',
      attempts: [w1, w2],
      folders: new Map<string, Folder>([
        ['A', new Map([['f.txt', 'attempt 2']])],
        ['B', new Map([['f.txt', 'attempt 1']])],
      ]),
      want: /f\.txt differs between A and B/,
    },
    {
      name: 'a stale write kept as a conflict copy everywhere',
      attempts: [w1, w2, stale],
      folders: both([
        ['f.txt', 'attempt 2'],
        [COPY('f'), 'attempt 3, stale'],
      ]),
      want: null,
    },
    {
      name: 'a stale write lost',
      attempts: [w1, w2, stale],
      folders: both([['f.txt', 'attempt 2']]),
      want: /the stale write of attempt 3 at A \(token 4, made at 50 after attempt 1's grant with token 5 completed at 10\) is not a conflict copy on 2 device/,
    },
    {
      name: 'a stale write that won',
      attempts: [w1, w2, stale],
      folders: both([['f.txt', 'attempt 3, stale']]),
      want: /f\.txt on A holds "attempt 3, stale" \(token 4\)/,
    },
    {
      name: 'a stale write replaced by a later-token write at its own device',
      attempts: [w1, w2, stale, granted(4, 70, 80, { write: true })],
      folders: both([['f.txt', 'attempt 4']]),
      want: null,
    },
    {
      name: 'a stale write lost, then written over at another device',
      attempts: [w1, w2, stale, granted(4, 70, 80, { write: true, device: 'B' })],
      folders: both([['f.txt', 'attempt 4']]),
      want: /the stale write of attempt 3 at A .* is not a conflict copy on 2 device/,
    },
    {
      name: 'two writes under one token: the later one wins',
      attempts: [w1, twice],
      folders: both([['f.txt', 'attempt 2, again']]),
      want: null,
    },
    {
      name: 'two writes under one token: the earlier one won',
      attempts: [w1, twice],
      folders: both([['f.txt', 'attempt 2']]),
      want: /f\.txt on A holds "attempt 2" \(token 7\), not the write under the largest token 7: "attempt 2, again"/,
    },
  ];
  for (const c of fencing) {
    it(`fencing: ${c.name}`, () => {
      const a4 = lock(4, 9, 9, null);
      const v = check({
        attempts: c.attempts,
        authority: [...authority, a4],
        folders: c.folders,
        initial,
      });
      if (c.want === null) expect(v.violations).toEqual([]);
      else expect(v.violations.join('\n')).toMatch(c.want);
    });
  }
});

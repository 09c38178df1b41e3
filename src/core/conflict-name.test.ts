// Conflict-copy names: the first choice as DESIGN.md shows it, then numbered
// names that keep the extension last, however many clashes come.
import { describe, expect, it } from 'vitest';
import { conflictCopyName, conflictName } from './conflict-name.js';

const T = 1_795_543_420_000_000_000n; // 2026-11-24 18:03:40 UTC
const D = 'B7XKQ2M';

describe('conflictCopyName', () => {
  const cases: {
    name: string;
    path: string;
    taken: readonly string[];
    device?: string;
    want: string;
  }[] = [
    {
      name: 'a free first choice is the name DESIGN.md shows',
      path: 'e.txt',
      taken: [],
      want: 'e.conflict-20261124-180340-B7XKQ2M.txt',
    },
    {
      name: 'one clash numbers the copy before the extension',
      path: 'e.txt',
      taken: ['e.conflict-20261124-180340-B7XKQ2M.txt'],
      want: 'e.conflict-20261124-180340-B7XKQ2M-2.txt',
    },
    {
      name: 'repeated clashes count up and never stack suffixes',
      path: 'e.txt',
      taken: [
        'e.conflict-20261124-180340-B7XKQ2M.txt',
        'e.conflict-20261124-180340-B7XKQ2M-2.txt',
        'e.conflict-20261124-180340-B7XKQ2M-3.txt',
      ],
      want: 'e.conflict-20261124-180340-B7XKQ2M-4.txt',
    },
    {
      name: 'a gap in the numbers is filled',
      path: 'e.txt',
      taken: ['e.conflict-20261124-180340-B7XKQ2M.txt', 'e.conflict-20261124-180340-B7XKQ2M-3.txt'],
      want: 'e.conflict-20261124-180340-B7XKQ2M-2.txt',
    },
    {
      name: 'a name without an extension is numbered at its end',
      path: 'a/b/Makefile',
      taken: ['a/b/Makefile.conflict-20261124-180340-B7XKQ2M'],
      want: 'a/b/Makefile.conflict-20261124-180340-B7XKQ2M-2',
    },
    {
      name: 'a leading dot is not an extension',
      path: '.bashrc',
      taken: ['.bashrc.conflict-20261124-180340-B7XKQ2M'],
      want: '.bashrc.conflict-20261124-180340-B7XKQ2M-2',
    },
    {
      name: 'only the last extension goes after the tag',
      path: 'x.tar.gz',
      taken: ['x.tar.conflict-20261124-180340-B7XKQ2M.gz'],
      want: 'x.tar.conflict-20261124-180340-B7XKQ2M-2.gz',
    },
    {
      name: 'a dot in a directory name is not the extension',
      path: 'v1.2/notes',
      taken: [],
      want: 'v1.2/notes.conflict-20261124-180340-B7XKQ2M',
    },
    {
      name: 'a copy of a copy is tagged again, the extension still last',
      path: 'e.conflict-20261124-180340-B7XKQ2M.txt',
      taken: [],
      want: 'e.conflict-20261124-180340-B7XKQ2M.conflict-20261124-180340-B7XKQ2M.txt',
    },
    {
      name: 'an unknown device is named UNKNOWN',
      path: 'e.txt',
      taken: [],
      device: '',
      want: 'e.conflict-20261124-180340-UNKNOWN.txt',
    },
  ];
  it.each(cases)('$name', ({ path, taken, device, want }) => {
    const asked: string[] = [];
    const got = conflictCopyName(path, T, device ?? D, (n) => {
      asked.push(n);
      return taken.includes(n);
    });
    expect(got).toBe(want);
    // Each candidate is asked about once, in order, and the answer was the last one asked.
    expect(new Set(asked).size).toBe(asked.length);
    expect(asked.at(-1)).toBe(want);
  });

  it('starts from conflictName, the name every device picks for the same loser', () => {
    expect(conflictCopyName('d/e.txt', T, D, () => false)).toBe(conflictName('d/e.txt', T, D));
  });

  it('gives up with a RangeError rather than loop forever when every name is taken', () => {
    expect(() => conflictCopyName('e.txt', T, D, () => true)).toThrow(RangeError);
  });
});

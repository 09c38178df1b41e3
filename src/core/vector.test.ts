import { describe, expect, it } from 'vitest';
import {
  checkVector,
  compare,
  dominates,
  merge,
  update,
  type Ordering,
  type Vector,
} from './vector.js';

const cases: { name: string; a: Vector; b: Vector; want: Ordering }[] = [
  { name: 'two empty vectors are equal', a: {}, b: {}, want: 'equal' },
  {
    name: 'same counters are equal',
    a: { AAAAAAA: 2, BBBBBBB: 1 },
    b: { BBBBBBB: 1, AAAAAAA: 2 },
    want: 'equal',
  },
  { name: 'a missing key counts as zero', a: { AAAAAAA: 1 }, b: {}, want: 'greater' },
  { name: 'one counter ahead is greater', a: { AAAAAAA: 3 }, b: { AAAAAAA: 2 }, want: 'greater' },
  { name: 'one counter behind is lesser', a: { AAAAAAA: 2 }, b: { AAAAAAA: 3 }, want: 'lesser' },
  {
    name: 'an extra device is greater',
    a: { AAAAAAA: 2, BBBBBBB: 1 },
    b: { AAAAAAA: 2 },
    want: 'greater',
  },
  {
    name: 'each ahead on another device is concurrent',
    a: { AAAAAAA: 2, BBBBBBB: 1 },
    b: { AAAAAAA: 1, BBBBBBB: 2 },
    want: 'concurrent',
  },
  {
    name: 'disjoint devices are concurrent',
    a: { AAAAAAA: 1 },
    b: { BBBBBBB: 1 },
    want: 'concurrent',
  },
];

describe('compare()', () => {
  for (const c of cases) {
    it(c.name, () => {
      expect(compare(c.a, c.b)).toBe(c.want);
      const mirrored = {
        greater: 'lesser',
        lesser: 'greater',
        equal: 'equal',
        concurrent: 'concurrent',
      }[c.want];
      expect(compare(c.b, c.a)).toBe(mirrored);
    });
  }
});

describe('update() and merge()', () => {
  it('update() increments only the given device and leaves the input alone', () => {
    const v = { AAAAAAA: 1 };
    expect(update(v, 'BBBBBBB')).toEqual({ AAAAAAA: 1, BBBBBBB: 1 });
    expect(update(update(v, 'AAAAAAA'), 'AAAAAAA')).toEqual({ AAAAAAA: 3 });
    expect(v).toEqual({ AAAAAAA: 1 });
  });
  it('merge() dominates both inputs', () => {
    const a = { AAAAAAA: 3, BBBBBBB: 1 };
    const b = { BBBBBBB: 4, CCCCCCC: 1 };
    const m = merge(a, b);
    expect(m).toEqual({ AAAAAAA: 3, BBBBBBB: 4, CCCCCCC: 1 });
    expect(dominates(m, a) && dominates(m, b)).toBe(true);
  });
});

describe('checkVector()', () => {
  it('accepts a valid vector', () => expect(checkVector({ ABCDEF2: 5 })).toEqual({ ABCDEF2: 5 }));
  for (const bad of [
    null,
    [],
    'x',
    { abc: 1 },
    { ABCDEFG: 0 },
    { ABCDEFG: 1.5 },
    { ABCDEFG: '1' },
  ]) {
    it(`rejects ${JSON.stringify(bad)}`, () => expect(() => checkVector(bad)).toThrow(TypeError));
  }
});

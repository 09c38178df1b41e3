import { describe, expect, it } from 'vitest';
import {
  DEFAULT_CDC,
  GEAR_SEED,
  cutAll,
  gearTable,
  nextBoundary,
  validateCdcParams,
  type CdcParams,
} from './fastcdc.js';
import { seededBytes } from '../testing/seeded.js';

const SMALL: CdcParams = { min: 256, avg: 1024, max: 4096 };
const offsetsOf = (lens: number[]) => {
  let at = 0;
  return lens.map((n) => (at += n));
};
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

describe('gear table', () => {
  it('is xorshift32 (13/17/5) from the documented seed', () => {
    const g = gearTable();
    expect(g).toHaveLength(256);
    let x = GEAR_SEED;
    for (let i = 0; i < 256; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      expect(g[i]).toBe(x >>> 0);
    }
  });

  it('never changes (boundaries are part of the protocol)', () => {
    const g = gearTable();
    expect(GEAR_SEED).toBe(0x4c6f636b);
    expect([g[0], g[1], g[255]].map((v) => v!.toString(16))).toEqual([
      'a0483e2a',
      '5628906c',
      'e375d263',
    ]);
    expect(g.reduce((a, b) => (a + b) >>> 0, 0)).toBe(1003875844);
  });

  it('is returned as a copy', () => {
    gearTable()[0] = 0;
    expect(gearTable()[0]).toBe(0xa0483e2a);
  });
});

describe('nextBoundary', () => {
  it('cuts seeded data at the same fixed places forever', () => {
    const d = seededBytes(2 * 2 ** 20, 42);
    expect(cutAll(d)).toEqual([
      72797, 74607, 89129, 70804, 68678, 91358, 115231, 53473, 76013, 70421, 78463, 73495, 97873,
      41671, 65894, 55514, 19883, 87490, 66310, 67926, 23391, 82548, 86684, 77176, 71909, 68322,
      103460, 144552, 2080,
    ]);
    expect(cutAll(d, SMALL).slice(0, 16)).toEqual([
      1102, 1169, 1172, 1055, 1056, 1752, 1059, 1047, 279, 1069, 584, 1760, 1173, 1080, 1027, 1243,
    ]);
    expect(cutAll(seededBytes(2 * 2 ** 20, 42))).toEqual(cutAll(d));
  });

  it('keeps every chunk within [min, max] but the last, which is within [1, max]', () => {
    for (const [params, n] of [
      [DEFAULT_CDC, 16 * 2 ** 20],
      [SMALL, 2 ** 20],
    ] as const) {
      const lens = cutAll(seededBytes(n + 777, 7), params);
      expect(sum(lens)).toBe(n + 777);
      for (const len of lens.slice(0, -1)) {
        expect(len).toBeGreaterThanOrEqual(params.min);
        expect(len).toBeLessThanOrEqual(params.max);
      }
      expect(lens.at(-1)).toBeGreaterThanOrEqual(1);
      expect(lens.at(-1)).toBeLessThanOrEqual(params.max);
    }
  });

  it('averages near avg, clustered by normalized chunking', () => {
    for (const [params, n] of [
      [DEFAULT_CDC, 32 * 2 ** 20],
      [SMALL, 4 * 2 ** 20],
    ] as const) {
      const lens = cutAll(seededBytes(n, 99), params).slice(0, -1);
      const mean = sum(lens) / lens.length;
      expect(mean).toBeGreaterThan(0.9 * params.avg);
      expect(mean).toBeLessThan(1.4 * params.avg);
      // Normalization: few chunks are cut by the max-size rule or come out tiny.
      expect(lens.filter((l) => l === params.max).length / lens.length).toBeLessThan(0.01);
      expect(lens.filter((l) => l < params.avg / 2).length / lens.length).toBeLessThan(0.2);
    }
  });

  it('cuts data without cut points (all zeros) at max', () => {
    const lens = cutAll(new Uint8Array(DEFAULT_CDC.max * 3 + 5));
    expect(lens).toEqual([DEFAULT_CDC.max, DEFAULT_CDC.max, DEFAULT_CDC.max, 5]);
  });

  it('gives the same boundaries however the data is fed in', () => {
    const d = seededBytes(3 * 2 ** 20, 5);
    const whole = offsetsOf(cutAll(d));
    const fed: number[] = [];
    const rnd = seededBytes(4096, 11);
    let start = 0;
    let end = 0;
    for (let k = 0; start < d.length; k++) {
      const eof = end === d.length;
      const n = nextBoundary(d, start, end, eof);
      if (n > 0) {
        start += n;
        fed.push(start);
      } else {
        expect(eof).toBe(false);
        end = Math.min(d.length, end + 1 + rnd[k % rnd.length]! * 97); // uneven windows
      }
    }
    expect(fed).toEqual(whole);
  });

  it('resynchronizes after an insertion or deletion: only the edited chunk changes', () => {
    const d = seededBytes(8 * 2 ** 20, 3);
    const mid = 4 * 2 ** 20 + 12345;
    const ins = new Uint8Array(d.length + 100);
    ins.set(d.subarray(0, mid));
    ins.set(seededBytes(100, 77), mid);
    ins.set(d.subarray(mid), mid + 100);
    const del = new Uint8Array(d.length - 100);
    del.set(d.subarray(0, mid));
    del.set(d.subarray(mid + 100), mid);
    const before = new Set(offsetsOf(cutAll(d)));
    for (const [edited, shift] of [
      [ins, 100],
      [del, -100],
    ] as const) {
      const after = offsetsOf(cutAll(edited)).map((o) => (o > mid ? o - shift : o));
      const moved = after.filter((o) => !before.has(o));
      expect(moved.length).toBeLessThanOrEqual(1);
      expect(
        after
          .filter((o) => o < mid - DEFAULT_CDC.max || o > mid + DEFAULT_CDC.max)
          .every((o) => before.has(o)),
      ).toBe(true);
    }
  });

  it('returns 0 while more data is needed, and the rest at eof', () => {
    const d = seededBytes(DEFAULT_CDC.max * 2, 1);
    expect(nextBoundary(d, 0, 0, false)).toBe(0);
    expect(nextBoundary(d, 0, 0, true)).toBe(0);
    expect(nextBoundary(d, 10, 10 + DEFAULT_CDC.min, false)).toBe(0);
    expect(nextBoundary(d, 10, 10 + DEFAULT_CDC.min, true)).toBe(DEFAULT_CDC.min);
    expect(nextBoundary(d, 0, 1, true)).toBe(1);
    // With max bytes at hand there is always an answer.
    const first = cutAll(d)[0]!;
    expect(nextBoundary(d, 0, DEFAULT_CDC.max, false)).toBe(first);
    expect(nextBoundary(d, 0, first - 1, false)).toBe(0);
    expect(nextBoundary(d, 0, first - 1, true)).toBe(first - 1);
  });

  it('rejects a range outside the buffer', () => {
    const d = new Uint8Array(10);
    expect(() => nextBoundary(d, 5, 11, true)).toThrow(RangeError);
    expect(() => nextBoundary(d, 6, 5, true)).toThrow(RangeError);
    expect(() => nextBoundary(d, -1, 5, true)).toThrow(RangeError);
  });
});

describe('validateCdcParams', () => {
  it('accepts the defaults', () => {
    expect(validateCdcParams(DEFAULT_CDC)).toBe(DEFAULT_CDC);
    expect(DEFAULT_CDC).toEqual({ min: 16384, avg: 65536, max: 262144 });
  });

  it.each([
    [{ min: 10, avg: 1024, max: 4096 }, /min.*10/],
    [{ min: 256.5, avg: 1024, max: 4096 }, /min.*256\.5/],
    [{ min: 256, avg: 1000, max: 4096 }, /avg.*1000/],
    [{ min: 2048, avg: 1024, max: 4096 }, /avg \(1024\).*min \(2048\)/],
    [{ min: 256, avg: 1024, max: 1024 }, /max \(1024\)/],
    [{ min: 256, avg: 1024, max: 2 ** 31 }, /max.*2147483648/],
    [{ min: 256, avg: 1024, max: Number.NaN }, /max.*NaN/],
  ])('rejects %o', (p, msg) => {
    expect(() => validateCdcParams(p)).toThrow(RangeError);
    expect(() => validateCdcParams(p)).toThrow(msg);
    expect(() => nextBoundary(new Uint8Array(10), 0, 10, true, p)).toThrow(msg);
  });
});

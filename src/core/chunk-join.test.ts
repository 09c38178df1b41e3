import { describe, expect, it } from 'vitest';
import { seededBytes } from '../testing/seeded.js';
import { joinCuts } from './chunk-join.js';
import { nextBoundary, type CdcParams } from './fastcdc.js';
import type { Chunk } from './record.js';

// Small chunks, so that a few hundred KiB hold many.
const P: CdcParams = { min: 256, avg: 1024, max: 4096 };

/** Cuts `buf` from `from` as if a chunk began there, stopping once a chunk ends past `stopAfter`. */
function cut(buf: Uint8Array, from = 0, stopAfter = Infinity): Chunk[] {
  const out: Chunk[] = [];
  for (let at = from; at < buf.length && at <= stopAfter;) {
    const n = nextBoundary(buf, at, buf.length, true, P);
    out.push({ offset: at, length: n, hash: `${at}+${n}` });
    at += n;
  }
  return out;
}

describe('joinCuts', () => {
  const random = seededBytes(300_000, 7);
  const whole = cut(random);

  it.each([1, 1000, 4096, 65_536, 150_000, 299_000])(
    'random data split at %i joins to the one-run cuts',
    (mid) => {
      expect(joinCuts(cut(random, 0, mid + 16_384), cut(random, mid))).toEqual(whole);
    },
  );

  it('a split exactly at a cut: the tail is taken whole', () => {
    const at = (whole[40] as Chunk).offset;
    expect(joinCuts(cut(random, 0, at + 16_384), cut(random, at))).toEqual(whole);
  });

  it('a head that ran to the end of the file needs nothing of the tail', () => {
    expect(joinCuts(whole, cut(random, 200_000))).toEqual(whole);
    expect(joinCuts(whole, [])).toEqual(whole);
  });

  it('a head that stops before any shared cut gives undefined (go on in one run)', () => {
    // Stops before the tail's first cut: nothing to join at.
    expect(joinCuts(cut(random, 0, 100_000), cut(random, 150_000))).toBeUndefined();
  });

  it('one byte repeated cuts in a fixed phase: joins only where the phases meet', () => {
    const same = new Uint8Array(100_000).fill(0x5a);
    const one = cut(same);
    const period = (one[0] as Chunk).length;
    // In phase (a multiple of the period): joined at once.
    expect(joinCuts(cut(same, 0, period * 10 + 8192), cut(same, period * 10))).toEqual(one);
    // Out of phase: never meets; the caller goes on from the head's end, and
    // that gives the one-run cuts too.
    const head = cut(same, 0, period * 10 + 1 + 8192);
    expect(joinCuts(head, cut(same, period * 10 + 1))).toBeUndefined();
    const end = (head.at(-1) as Chunk).offset + (head.at(-1) as Chunk).length;
    expect([...head, ...cut(same, end)]).toEqual(one);
  });
});

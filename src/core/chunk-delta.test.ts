import { describe, expect, it } from 'vitest';
import { applyChunkOps, diffChunks, type ChunkOp } from './chunk-delta.js';
import type { Chunk } from './record.js';

/** A chunk list from letters: 'abc' is three chunks of 10 bytes with hashes a…, b…, c…. */
function list(spec: string, length = 10): Chunk[] {
  return [...spec].map((ch, i) => ({ offset: i * length, length, hash: ch.repeat(64) }));
}
const h = (ch: string) => ch.repeat(64);

describe('diffChunks', () => {
  const cases: { name: string; base: string; next: string; ops: ChunkOp[] }[] = [
    { name: 'same list: one copy', base: 'abcdef', next: 'abcdef', ops: [[0, 6]] },
    {
      name: 'empty base: all new',
      base: '',
      next: 'ab',
      ops: [
        [10, h('a')],
        [10, h('b')],
      ],
    },
    { name: 'empty next', base: 'abc', next: '', ops: [] },
    {
      name: 'edit in the middle',
      base: 'abcdef',
      next: 'abXdef',
      ops: [
        [0, 2],
        [10, h('X')],
        [3, 3],
      ],
    },
    {
      name: 'insert at the start',
      base: 'abc',
      next: 'Zabc',
      ops: [
        [10, h('Z')],
        [0, 3],
      ],
    },
    {
      name: 'append',
      base: 'abc',
      next: 'abcd',
      ops: [
        [0, 3],
        [10, h('d')],
      ],
    },
    { name: 'truncate', base: 'abcdef', next: 'abc', ops: [[0, 3]] },
    {
      name: 'reordered runs',
      base: 'abcdef',
      next: 'defabc',
      ops: [
        [3, 3],
        [0, 3],
      ],
    },
    {
      name: 'repeated chunk',
      base: 'aab',
      next: 'aaab',
      ops: [
        [0, 2],
        [0, 1],
        [2, 1],
      ],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const base = list(c.base);
      const next = list(c.next);
      const ops = diffChunks(base, next);
      expect(ops).toEqual(c.ops);
      expect(applyChunkOps(base, ops)).toEqual(next);
    });
  }

  it('does not copy a chunk whose length differs', () => {
    const base = list('ab');
    const next = [{ offset: 0, length: 7, hash: h('a') }];
    expect(diffChunks(base, next)).toEqual([[7, h('a')]]);
  });

  it('round-trips random edits of a long list', () => {
    let seed = 7;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
    for (let round = 0; round < 200; round++) {
      const base = list(Array.from({ length: 1 + rand(60) }, () => alphabet[rand(36)]).join(''));
      const next = list(Array.from({ length: rand(60) }, () => alphabet[rand(36)]).join(''));
      expect(applyChunkOps(base, diffChunks(base, next))).toEqual(next);
    }
  });
});

describe('applyChunkOps', () => {
  it('refuses a copy past the end of the base', () => {
    expect(applyChunkOps(list('abc'), [[2, 2]])).toBe('op 0 copies chunks 2 to 3 of a base with 3');
  });
  it('refuses ops that describe too many chunks before building any', () => {
    const ops: ChunkOp[] = Array.from({ length: 1000 }, () => [0, 3]);
    expect(applyChunkOps(list('abc'), ops, 2999)).toBe('ops describe 3000 chunks, more than 2999');
    expect(applyChunkOps(list('abc'), ops, 3000)).toHaveLength(3000);
  });
  it('recomputes offsets', () => {
    const got = applyChunkOps(list('ab', 5), [
      [7, h('z')],
      [0, 2],
    ]);
    expect(got).toEqual([
      { offset: 0, length: 7, hash: h('z') },
      { offset: 7, length: 5, hash: h('a') },
      { offset: 12, length: 5, hash: h('b') },
    ]);
  });
});

import { describe, expect, it } from 'vitest';
import { LockstepError } from '../base/errors.js';
import type { Chunk, FileRecord } from '../core/record.js';
import type { Vector } from '../core/vector.js';
import {
  DELTA_MIN_CHUNKS,
  DeltaBaseMissing,
  chunkListDigest,
  decodeIndexMessage,
  fromWire,
  toWire,
  toWireDelta,
  type BaseResolver,
} from './wire.js';

const A = 'AAAAAAA';
const B = 'BBBBBBB';
const hash = (n: number) => n.toString(16).padStart(64, '0');

function chunks(ids: readonly number[], length = 1000): Chunk[] {
  return ids.map((id, i) => ({ offset: i * length, length, hash: hash(id) }));
}

function file(version: Vector, ids: readonly number[]): FileRecord {
  const list = chunks(ids);
  return {
    path: 'media/big.mov',
    type: 'file',
    size: list.length * 1000,
    mtimeNs: 1_700_000_000_000_000_000n,
    mode: 0o644,
    chunks: list,
    target: '',
    version,
    deleted: false,
    sequence: 9,
    inode: 0,
    modifiedBy: A,
  };
}

const ids = Array.from({ length: 100 }, (_, i) => i + 1);
const old = file({ [A]: 1 }, ids);
// 100 chunks: two replaced in the middle, one inserted near the start.
const edited = file({ [A]: 2 }, [1, 2, 500, ...ids.slice(2, 50), 600, 601, ...ids.slice(52)]);

/** Resolves only `old` (as the receiver holding it would). */
const holdsOld: BaseResolver = (path, version) =>
  path === old.path && JSON.stringify(version) === JSON.stringify(old.version) ? [old.chunks] : [];

describe('chunk-list deltas on the wire', () => {
  it('encodes a small edit of a big file as a few ops and decodes it back', () => {
    const wire = toWireDelta(edited, old);
    expect(wire.base?.version).toEqual(old.version);
    expect(wire.chunks.length).toBeLessThan(10);
    const json = JSON.parse(JSON.stringify(wire)) as unknown;
    expect(fromWire(json, holdsOld)).toEqual(edited);
    expect(JSON.stringify(wire).length * 5).toBeLessThan(JSON.stringify(toWire(edited)).length);
  });

  it('sends small files, tombstones and unrelated contents whole', () => {
    const small = file({ [A]: 2 }, ids.slice(0, DELTA_MIN_CHUNKS - 1));
    expect(toWireDelta(small, old)).toEqual(toWire(small));
    const other = file(
      { [A]: 2 },
      ids.map((i) => i + 1000),
    );
    expect(toWireDelta(other, old)).toEqual(toWire(other));
    const tomb = { ...edited, deleted: true, size: 0, chunks: [] };
    expect(toWireDelta(tomb, old)).toEqual(toWire(tomb));
    expect(toWireDelta(edited, undefined)).toEqual(toWire(edited));
    expect(toWireDelta(edited, { ...old, deleted: true, chunks: [], size: 0 })).toEqual(
      toWire(edited),
    );
  });

  it('refuses a delta from a peer that was not asked for one', () => {
    const wire = JSON.parse(JSON.stringify(toWireDelta(edited, old))) as unknown;
    expect(() => fromWire(wire)).toThrow(/chunk delta, which was not asked for/);
  });

  it('throws DeltaBaseMissing when the base is not held, and nothing else is taken', () => {
    const wire = JSON.parse(JSON.stringify(toWireDelta(edited, old))) as unknown;
    expect(() => fromWire(wire, () => [])).toThrow(DeltaBaseMissing);
    expect(() =>
      decodeIndexMessage({ type: 'records', records: [toWire(old), wire] }, () => []),
    ).toThrow(DeltaBaseMissing);
  });

  const bad: { name: string; change: (w: Record<string, unknown>) => void; error: RegExp }[] = [
    {
      name: 'a copy past the end of the base',
      change: (w) => (w.chunks = [[0, 101]]),
      error: /does not fit its base/,
    },
    {
      name: 'a copy with count 0',
      change: (w) => (w.chunks = [[0, 0]]),
      error: /must be a \[start, count\] copy/,
    },
    {
      name: 'a negative start',
      change: (w) => (w.chunks = [[-1, 3]]),
      error: /must be a \[start, count\] copy/,
    },
    {
      name: 'sizes that no longer add up',
      change: (w) => (w.size = 5),
      error: /chunks for 5 bytes|sum to/,
    },
    {
      name: 'a base that is not a version',
      change: (w) => ((w.base as Record<string, unknown>).version = { nope: 1 }),
      error: /invalid base version/,
    },
    {
      name: 'a base without a digest',
      change: (w) => (w.base = { version: old.version }),
      error: /base: missing field digest/,
    },
    {
      name: 'a base digest that is not hex',
      change: (w) => ((w.base as Record<string, unknown>).digest = 'zz'),
      error: /base digest must be 32 lowercase hex/,
    },
    {
      name: 'copies that describe more chunks than a record may have',
      change: (w) => {
        w.size = 2 ** 40;
        w.chunks = Array.from({ length: 10_000 }, () => [0, 100]);
      },
      error: /describes 1000000 chunks, more than 250000/,
    },
    {
      name: 'a base on a tombstone',
      change: (w) => {
        w.deleted = true;
      },
      error: /must have no chunks|cannot carry a chunk delta/,
    },
  ];
  for (const c of bad) {
    it(`refuses ${c.name}`, () => {
      const wire = JSON.parse(JSON.stringify(toWireDelta(edited, old))) as Record<string, unknown>;
      c.change(wire);
      let caught: unknown;
      try {
        fromWire(wire, holdsOld);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(LockstepError);
      expect((caught as LockstepError).code).toBe('PEER_INVALID');
      expect((caught as Error).message).toMatch(c.error);
    });
  }

  it('names lists by content: same chunks, same digest; any change, another', () => {
    expect(chunkListDigest(chunks([1, 2, 3]))).toBe(chunkListDigest(chunks([1, 2, 3])));
    expect(chunkListDigest(chunks([1, 2, 3]))).toMatch(/^[0-9a-f]{32}$/);
    expect(chunkListDigest(chunks([1, 2, 4]))).not.toBe(chunkListDigest(chunks([1, 2, 3])));
    expect(chunkListDigest(chunks([1, 2, 3], 11))).not.toBe(chunkListDigest(chunks([1, 2, 3])));
    expect(chunkListDigest(chunks([1, 2]))).not.toBe(chunkListDigest(chunks([1, 2, 3])));
  });
  it('never applies a delta to another list that carries the same version', () => {
    // Same version, other content (a reused counter, or a hostile third peer's row).
    const impostor = chunks(ids.map((i) => i + 5000));
    const wire = JSON.parse(JSON.stringify(toWireDelta(edited, old))) as unknown;
    expect(() => fromWire(wire, () => [impostor])).toThrow(DeltaBaseMissing);
    // The right list among the candidates is found.
    expect(fromWire(wire, () => [impostor, old.chunks])).toEqual(edited);
  });

  it('bounds the chunk entries one message may make', () => {
    const wire = JSON.parse(JSON.stringify(toWireDelta(edited, old))) as Record<string, unknown>;
    wire.size = 2 ** 40;
    wire.chunks = Array.from({ length: 1000 }, () => [0, 100]); // 100,000 chunks each
    const msg = decodeIndexMessage(
      { type: 'records', records: Array.from({ length: 12 }, () => ({ ...wire })) },
      holdsOld,
    );
    expect(msg.type === 'records' && msg.records.length).toBe(0);
    const reasons = msg.type === 'records' ? msg.rejected.map((r) => r.reason) : [];
    expect(reasons.some((r) => /more than 1000000 chunk entries/.test(r))).toBe(true);
  });

  it('leaves a bad delta record to the rejected list, like any bad record', () => {
    const wire = JSON.parse(JSON.stringify(toWireDelta(edited, old))) as Record<string, unknown>;
    wire.chunks = [[0, 500]];
    const msg = decodeIndexMessage({ type: 'records', records: [toWire(old), wire] }, holdsOld);
    expect(msg.type === 'records' && msg.records.length).toBe(1);
    expect(msg.type === 'records' && msg.rejected[0]?.path).toBe(old.path);
  });

  it('keeps the copy entries checked against a base from another device too', () => {
    const fromB = file({ [A]: 1, [B]: 1 }, ids);
    const next = file({ [A]: 2, [B]: 1 }, [...ids.slice(0, 99), 777]);
    const wire = JSON.parse(JSON.stringify(toWireDelta(next, fromB))) as unknown;
    expect(fromWire(wire, (_p, v) => (v[B] === 1 ? [fromB.chunks] : []))).toEqual(next);
  });
});

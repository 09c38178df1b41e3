import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { blake3 } from '@napi-rs/blake-hash';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CDC, type CdcParams } from '../core/fastcdc.js';
import type { Chunk } from '../core/record.js';
import { READ_SIZE, chunkBuffer, chunkFile, chunkHandle, chunkSmallFile } from './chunker.js';
import { seededBytes } from '../testing/seeded.js';

const SMALL: CdcParams = { min: 256, avg: 1024, max: 4096 };
const { min, max } = DEFAULT_CDC;

/** Checks chunks tile `data` exactly and each hash is BLAKE3 of its slice. */
function expectTiles(data: Uint8Array, chunks: Chunk[]): void {
  let at = 0;
  for (const c of chunks) {
    expect(c.offset).toBe(at);
    expect(c.length).toBeGreaterThan(0);
    expect(c.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(c.hash).toBe(blake3(data.subarray(c.offset, c.offset + c.length)).toString('hex'));
    at += c.length;
  }
  expect(at).toBe(data.length);
}

describe('chunker', () => {
  let tmp: string;
  const file = (name: string, data: Uint8Array) => {
    const p = join(tmp, name);
    writeFileSync(p, data);
    return p;
  };

  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'lockstep-chunker-'));
  });
  afterAll(() => {
    rmSync(tmp, { recursive: true, force: true });
  });

  it('gives an empty file zero chunks', async () => {
    expect(chunkBuffer(new Uint8Array(0))).toEqual([]);
    expect(await chunkFile(file('empty', new Uint8Array(0)))).toEqual({ size: 0, chunks: [] });
  });

  it.each([
    ['1 byte', 1],
    ['min - 1', min - 1],
    ['min', min],
    ['min + 1', min + 1],
    ['max', max],
    ['max + 1', max + 1],
    ['just under the small-file limit', 1024 * 1024 - 1],
    ['the small-file limit', 1024 * 1024],
    ['one read buffer', READ_SIZE],
    ['more than two read buffers', 2 * READ_SIZE + max + 12345],
  ])('chunkFile equals chunkBuffer: %s', async (_name, n) => {
    const data = seededBytes(n, n);
    const r = await chunkFile(file(`f${n}`, data));
    const mem = chunkBuffer(data);
    expect(r.size).toBe(n);
    expect(r.chunks).toEqual(mem);
    expectTiles(data, r.chunks);
    for (const c of r.chunks.slice(0, -1)) {
      expect(c.length).toBeGreaterThanOrEqual(min);
      expect(c.length).toBeLessThanOrEqual(max);
    }
  });

  it('carries chunks across read buffers with other parameters too', async () => {
    const data = seededBytes(READ_SIZE + 3 * 4096 + 7, 123);
    const r = await chunkFile(file('small-params', data), { params: SMALL });
    expect(r.chunks).toEqual(chunkBuffer(data, SMALL));
    expect(r.chunks.length).toBeGreaterThan(READ_SIZE / SMALL.max);
    expectTiles(data, r.chunks);
  });

  it('changes at most 2 chunks when 100 bytes are inserted or deleted mid-file', async () => {
    const data = seededBytes(8 * 2 ** 20, 9);
    const mid = 4 * 2 ** 20 + 777;
    const base = new Set((await chunkFile(file('orig', data))).chunks.map((c) => c.hash));
    const inserted = Buffer.concat([
      data.subarray(0, mid),
      seededBytes(100, 1234),
      data.subarray(mid),
    ]);
    const deleted = Buffer.concat([data.subarray(0, mid), data.subarray(mid + 100)]);
    for (const [name, edited] of [
      ['inserted', inserted],
      ['deleted', deleted],
    ] as const) {
      const { chunks } = await chunkFile(file(name, edited));
      expectTiles(edited, chunks);
      const fresh = chunks.filter((c) => !base.has(c.hash));
      expect(fresh.length).toBeGreaterThanOrEqual(1);
      expect(fresh.length).toBeLessThanOrEqual(2);
    }
  });

  it('reads to the end even when the file outgrew its stat size', async () => {
    const data = seededBytes(3 * READ_SIZE + 5, 4);
    const fh = await open(file('grown', data), 'r');
    try {
      for (const hint of [0, 100, READ_SIZE, 10 * READ_SIZE]) {
        const r = await chunkHandle(fh, hint);
        expect(r.size).toBe(data.length);
        expect(r.chunks).toEqual(chunkBuffer(data));
      }
    } finally {
      await fh.close();
    }
  });

  it('chunkSmallFile gives what chunkFile gives, or undefined for a file bigger than hinted', async () => {
    for (const n of [0, 1, 5000, min + 1, 700_000, 2 ** 20 - 1]) {
      const p = file(`small${n}`, seededBytes(n, n + 3));
      expect(await chunkSmallFile(p, n)).toEqual(await chunkFile(p));
      expect(await chunkSmallFile(p, n, SMALL)).toEqual(await chunkFile(p, { params: SMALL }));
      // A file that shrank since it was seen.
      if (n + 100 < 2 ** 20) expect(await chunkSmallFile(p, n + 100)).toEqual(await chunkFile(p));
    }
    const p = file('grew', seededBytes(5000, 9));
    expect(await chunkSmallFile(p, 4999)).toBeUndefined();
    expect(await chunkSmallFile(p, 0)).toBeUndefined();
    expect(await chunkSmallFile(p, 2 ** 20)).toBeUndefined();
    await expect(chunkSmallFile(join(tmp, 'missing'), 10)).rejects.toMatchObject({
      code: 'ENOENT',
    });
    await expect(chunkSmallFile(tmp, 10)).rejects.toMatchObject({ code: 'EISDIR' });
  });

  it('keeps the file system error code', async () => {
    await expect(chunkFile(join(tmp, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' });
    mkdirSync(join(tmp, 'dir'));
    await expect(chunkFile(join(tmp, 'dir'))).rejects.toMatchObject({ code: 'EISDIR' });
  });

  it('stops when aborted', async () => {
    const p = file('abort', seededBytes(3 * READ_SIZE, 8));
    await expect(chunkFile(p, { signal: AbortSignal.abort() })).rejects.toMatchObject({
      name: 'AbortError',
    });
    const ac = new AbortController();
    const pending = chunkFile(p, { signal: ac.signal });
    ac.abort(new Error('stop'));
    await expect(pending).rejects.toThrow('stop');
    // The spare buffers were not corrupted by a read left in flight.
    const data = seededBytes(2 * READ_SIZE + 99, 10);
    expect((await chunkFile(file('after-abort', data))).chunks).toEqual(chunkBuffer(data));
  });

  it('rejects bad parameters', async () => {
    const bad = { min: 1, avg: 1024, max: 4096 };
    expect(() => chunkBuffer(new Uint8Array(1), bad)).toThrow(RangeError);
    await expect(chunkFile(file('p', new Uint8Array(1)), { params: bad })).rejects.toThrow(
      RangeError,
    );
  });
});

import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { chunkFile } from './chunker.js';
import { HashPool } from './hash-pool.js';
import { seededBytes } from '../testing/seeded.js';

// A stand-in worker speaking the pool's protocol, so queueing, error codes,
// crashes and close are tested without the compiled hash-worker.js. It
// answers with its threadId in place of chunks.
const FAKE_WORKER = `
import { parentPort, threadId } from 'node:worker_threads';
import { statSync } from 'node:fs';
parentPort.on('message', ({ id, path }) => {
  if (path.endsWith('crash')) process.exit(7);
  if (path.endsWith('denied')) {
    return parentPort.postMessage({ id, ok: false, name: 'Error', message: 'EACCES: permission denied', code: 'EACCES', errno: -13, syscall: 'open' });
  }
  const size = statSync(path).size;
  setTimeout(() => parentPort.postMessage({ id, ok: true, size, chunks: [{ offset: threadId, length: 0, hash: '' }] }), 30);
});
`;

describe('HashPool', () => {
  let tmp: string;
  let pool: HashPool | undefined;
  const file = (name: string, data: Uint8Array) => {
    const p = join(tmp, name);
    writeFileSync(p, data);
    return p;
  };

  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'lockstep-pool-'));
    writeFileSync(join(tmp, 'fake-worker.mjs'), FAKE_WORKER);
  });
  afterAll(() => {
    rmSync(tmp, { recursive: true, force: true });
  });
  afterEach(async () => {
    await pool?.close();
    pool = undefined;
  });

  it('hashes inline when the compiled worker is absent, with chunkFile results', async () => {
    pool = new HashPool({ workerUrl: pathToFileURL(join(tmp, 'no-such-worker.js')) });
    expect(pool.usesWorkers).toBe(false);
    for (const n of [0, 1, 100_000, 3 * 2 ** 20 + 5]) {
      const p = file(`inline${n}`, seededBytes(n, n + 1));
      expect(await pool.hashFile(p)).toEqual(await chunkFile(p));
      expect(await pool.hashFile(p, n)).toEqual(await chunkFile(p));
      expect(await pool.hashFile(p, 0)).toEqual(await chunkFile(p));
    }
    await expect(pool.hashFile(join(tmp, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('queues work beyond its workers and answers every job', async () => {
    pool = new HashPool({
      workers: 2,
      inlineBelow: 0,
      workerUrl: pathToFileURL(join(tmp, 'fake-worker.mjs')),
    });
    expect(pool.usesWorkers).toBe(true);
    const paths = Array.from({ length: 7 }, (_, i) => file(`q${i}`, new Uint8Array(i * 10)));
    const results = await Promise.all(paths.map((p) => pool!.hashFile(p)));
    expect(results.map((r) => r.size)).toEqual([0, 10, 20, 30, 40, 50, 60]);
    expect(new Set(results.map((r) => r.chunks[0]!.offset)).size).toBe(2); // two threads shared the work
  });

  it('hashes small files inline, without a worker', async () => {
    pool = new HashPool({
      workers: 1,
      inlineBelow: 1000,
      workerUrl: pathToFileURL(join(tmp, 'fake-worker.mjs')),
    });
    const small = file('small', seededBytes(999, 3));
    expect(await pool.hashFile(small)).toEqual(await chunkFile(small));
    const big = await pool.hashFile(file('big', seededBytes(1000, 3)));
    expect(big.chunks[0]!.hash).toBe(''); // the fake worker's answer
  });

  it('with a size hint: inline below the limit, a worker above it; results as chunkFile', async () => {
    pool = new HashPool({
      workers: 1,
      inlineBelow: 1000,
      workerUrl: pathToFileURL(join(tmp, 'fake-worker.mjs')),
    });
    const small = file('hinted', seededBytes(999, 4));
    const want = await chunkFile(small);
    expect(await pool.hashFile(small, 999)).toEqual(want);
    expect(await pool.hashFile(small, 10)).toEqual(want); // grew since it was seen
    expect(await pool.hashFile(small, 998)).toEqual(want);
    expect((await pool.hashFile(small, 1000)).chunks[0]!.hash).toBe(''); // the fake worker
    // Grown past the limit since it was seen: a worker hashes it.
    const grown = await pool.hashFile(file('grown', seededBytes(5000, 5)), 10);
    expect(grown).toMatchObject({ size: 5000, chunks: [{ hash: '' }] });
    await expect(pool.hashFile(join(tmp, 'missing'), 10)).rejects.toMatchObject({
      code: 'ENOENT',
    });
    await pool.close();
    await expect(pool.hashFile(small, 999)).rejects.toMatchObject({
      code: 'ERR_HASH_POOL_CLOSED',
    });
  });

  it("passes on a worker's error with its code, and a missing file's ENOENT", async () => {
    pool = new HashPool({
      workers: 1,
      inlineBelow: 0,
      workerUrl: pathToFileURL(join(tmp, 'fake-worker.mjs')),
    });
    const err: unknown = await pool
      .hashFile(file('denied', new Uint8Array(1)))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err).toMatchObject({
      code: 'EACCES',
      errno: -13,
      syscall: 'open',
      message: 'EACCES: permission denied',
    });
    await expect(pool.hashFile(join(tmp, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('survives a worker that dies: that job fails, the others go on', async () => {
    pool = new HashPool({
      workers: 1,
      inlineBelow: 0,
      workerUrl: pathToFileURL(join(tmp, 'fake-worker.mjs')),
    });
    const ok = file('ok', new Uint8Array(5));
    const jobs = [
      pool.hashFile(file('crash', new Uint8Array(1))),
      pool.hashFile(ok),
      pool.hashFile(ok),
    ];
    await expect(jobs[0]).rejects.toMatchObject({ code: 'ERR_HASH_WORKER_EXIT' });
    expect((await jobs[1])!.size).toBe(5);
    expect((await jobs[2])!.size).toBe(5);
  });

  it('rejects queued and later jobs once closed', async () => {
    pool = new HashPool({
      workers: 1,
      inlineBelow: 0,
      workerUrl: pathToFileURL(join(tmp, 'fake-worker.mjs')),
    });
    const p = file('c', new Uint8Array(5));
    const jobs = [pool.hashFile(p), pool.hashFile(p), pool.hashFile(p)].map((j) =>
      j.catch((e: unknown) => e),
    );
    await new Promise((r) => setTimeout(r, 10)); // let them reach the queue
    await pool.close();
    for (const e of await Promise.all(jobs))
      expect(e).toMatchObject({ code: 'ERR_HASH_POOL_CLOSED' });
    await expect(pool.hashFile(p)).rejects.toMatchObject({ code: 'ERR_HASH_POOL_CLOSED' });
  });

  it('ends a worker left idle, and starts one again for the next file', async () => {
    pool = new HashPool({
      workers: 2,
      inlineBelow: 0,
      idleMs: 200,
      workerUrl: pathToFileURL(join(tmp, 'fake-worker.mjs')),
    });
    const p = file('idle', new Uint8Array(3));
    expect(pool.workers).toBe(0); // none until a file needs one
    await Promise.all([pool.hashFile(p), pool.hashFile(p)]);
    expect(pool.workers).toBe(2);
    for (const until = Date.now() + 5000; pool.workers > 0 && Date.now() < until;)
      await new Promise((r) => setTimeout(r, 10));
    expect(pool.workers).toBe(0);
    expect((await pool.hashFile(p)).size).toBe(3);
    expect(pool.workers).toBe(1);
  });

  it('release ends idle workers at once and lets a busy one finish its job', async () => {
    pool = new HashPool({
      workers: 2,
      inlineBelow: 0,
      idleMs: 60_000,
      workerUrl: pathToFileURL(join(tmp, 'fake-worker.mjs')),
    });
    const p = file('release', new Uint8Array(5));
    await Promise.all([pool.hashFile(p), pool.hashFile(p)]);
    expect(pool.workers).toBe(2);
    const busy = pool.hashFile(p, 5); // with a size: handed to a worker at once
    pool.release();
    expect(pool.workers).toBe(1); // the idle one is out; the busy one answers
    expect((await busy).size).toBe(5);
    pool.release();
    expect(pool.workers).toBe(0);
    expect((await pool.hashFile(p)).size).toBe(5);
    expect(pool.workers).toBe(1);
  });

  it('rejects bad options', () => {
    expect(() => new HashPool({ idleMs: -1 })).toThrow(/idleMs/);
    expect(() => new HashPool({ workers: -1 })).toThrow(/workers.*-1/);
    expect(() => new HashPool({ inlineBelow: Number.NaN })).toThrow(/inlineBelow/);
    expect(() => new HashPool({ splitAbove: -1 })).toThrow(/splitAbove/);
    expect(() => new HashPool({ params: { min: 1, avg: 3, max: 2 } })).toThrow(RangeError);
  });

  // The real worker exists only compiled (npm test builds dist/ first).
  const built = new URL('../../dist/scan/hash-worker.js', import.meta.url);
  it.skipIf(!existsSync(built))(
    'hashes in the compiled worker exactly like chunkFile (dist/)',
    async () => {
      pool = new HashPool({ workers: 2, inlineBelow: 0, workerUrl: built });
      expect(pool.usesWorkers).toBe(true);
      const sizes = [0, 1, 70_000, 5 * 2 ** 20 + 3];
      const paths = sizes.map((n) => file(`real${n}`, seededBytes(n, n + 9)));
      const got = await Promise.all(paths.map((p) => pool!.hashFile(p)));
      for (const [i, p] of paths.entries()) expect(got[i]).toEqual(await chunkFile(p));
      const hinted = await Promise.all(paths.map((p, i) => pool!.hashFile(p, sizes[i])));
      expect(hinted).toEqual(got);
      await expect(pool.hashFile(join(tmp, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' });
    },
  );

  it.skipIf(!existsSync(built))(
    'cuts a big file with two workers at once, exactly like chunkFile, also where the halves never meet',
    async () => {
      pool = new HashPool({ workers: 2, workerUrl: built, splitAbove: 8 * 2 ** 20 });
      const random = file('split-random', seededBytes(21 * 2 ** 20 + 12_345, 77));
      // Zeros after random bytes: cut every `max` bytes from the last cut in
      // the random part, a phase the half starting in the zeros never meets.
      const zeros = new Uint8Array(18 * 2 ** 20);
      zeros.set(seededBytes(2 ** 20 + 3, 5));
      const same = file('split-same', zeros);
      for (const [p, runOn] of [
        [random, 0],
        [same, 1],
      ] as const) {
        const before = { splits: pool.splits, runOn: pool.splitsRunOn };
        expect(await pool.hashFile(p, statSync(p).size)).toEqual(await chunkFile(p));
        expect(pool.splits).toBe(before.splits + 1);
        expect(pool.splitsRunOn).toBe(before.runOn + runOn);
        expect(await pool.hashFile(p)).toEqual(await chunkFile(p)); // size from its own stat
      }
      // Two at once: the first is split; the second finds both workers busy
      // and waits whole for the next free one.
      const before = pool.splits;
      const both = await Promise.all([
        pool.hashFile(random, statSync(random).size),
        pool.hashFile(same, statSync(same).size),
      ]);
      expect(both).toEqual([await chunkFile(random), await chunkFile(same)]);
      expect(pool.splits).toBe(before + 1);
    },
  );
});

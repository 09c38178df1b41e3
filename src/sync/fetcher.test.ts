// The chunk fetcher's logic, with in-memory sources: batching, spreading,
// verification and falling back to another peer. (The real transport is
// covered end to end in test/sync.test.ts.)
import { describe, expect, it } from 'vitest';
import { hashHex } from '../scan/chunker.js';
import { ChunkFetcher, type ChunkSource } from './fetcher.js';

function source(
  short: string,
  chunks: Map<string, Buffer>,
  opts: { corrupt?: boolean; connected?: boolean; fail?: boolean } = {},
) {
  const requests: string[][] = [];
  const s: ChunkSource & { requests: string[][] } = {
    short,
    name: short,
    connected: opts.connected ?? true,
    requests,
    fetchChunks(hashes, _at, onChunk) {
      requests.push([...hashes]);
      if (opts.fail) return Promise.reject(new Error('connection reset'));
      for (const h of hashes) {
        const data = chunks.get(h);
        onChunk(h, data ? (opts.corrupt ? Buffer.from(data).fill(0) : data) : null);
      }
      return Promise.resolve();
    },
  };
  return s;
}

const data = Array.from({ length: 10 }, (_, i) => Buffer.alloc(1000, i + 1));
const all = new Map(data.map((d) => [hashHex(d), d]));
const hashes = [...all.keys()];

describe('ChunkFetcher', () => {
  it('batches requests made in the same tick and verifies each chunk', async () => {
    const b = source('BBBBBBB', all);
    const f = new ChunkFetcher((s) => (s === 'BBBBBBB' ? b : undefined));
    const got = await Promise.all(hashes.map((h) => f.get(h, 1000, ['BBBBBBB'])));
    expect(got).toEqual(data);
    expect(b.requests).toHaveLength(1);
    expect(f.bytesReceived).toBe(10_000);
  });

  it('splits batches by size and spreads them over peers that have the content', async () => {
    const b = source('BBBBBBB', all);
    const c = source('CCCCCCC', all);
    const f = new ChunkFetcher((s) => ({ BBBBBBB: b, CCCCCCC: c })[s], { batchBytes: 2000 });
    await Promise.all(hashes.map((h) => f.get(h, 1000, ['BBBBBBB', 'CCCCCCC'])));
    expect(b.requests.length).toBeGreaterThan(0);
    expect(c.requests.length).toBeGreaterThan(0);
    for (const r of [...b.requests, ...c.requests]) expect(r.length).toBeLessThanOrEqual(2);
  });

  it('asks another peer when one sends data that does not match the hash', async () => {
    const bad = source('BBBBBBB', all, { corrupt: true });
    const good = source('CCCCCCC', all);
    const rejected: string[] = [];
    const f = new ChunkFetcher((s) => ({ BBBBBBB: bad, CCCCCCC: good })[s], {
      onRejected: (peer, _hash, reason) => rejected.push(`${peer}: ${reason}`),
    });
    const h = hashes[0] as string;
    // With nothing queued anywhere, the first source listed is asked first.
    await expect(f.get(h, 1000, ['BBBBBBB', 'CCCCCCC'])).resolves.toEqual(data[0]);
    expect(bad.requests).toEqual([[h]]);
    expect(good.requests).toEqual([[h]]);
    expect(rejected).toEqual(['BBBBBBB: sent data that does not match its hash']);
  });

  it('rejects when no peer has a valid copy, naming why', async () => {
    const bad = source('BBBBBBB', all, { corrupt: true });
    const f = new ChunkFetcher((s) => (s === 'BBBBBBB' ? bad : undefined));
    await expect(f.get(hashes[0] as string, 1000, ['BBBBBBB'])).rejects.toThrow(
      /does not match its hash/,
    );
    const none = source('BBBBBBB', new Map());
    const f2 = new ChunkFetcher(() => none);
    await expect(f2.get(hashes[0] as string, 1000, ['BBBBBBB'])).rejects.toThrow(
      /does not have it/,
    );
  });

  it('falls back when a peer fails or is not connected', async () => {
    const down = source('BBBBBBB', all, { fail: true });
    const off = source('DDDDDDD', all, { connected: false });
    const up = source('CCCCCCC', all);
    const f = new ChunkFetcher((s) => ({ BBBBBBB: down, CCCCCCC: up, DDDDDDD: off })[s]);
    const got = await Promise.all(
      hashes.map((h) => f.get(h, 1000, ['BBBBBBB', 'DDDDDDD', 'CCCCCCC'])),
    );
    expect(got).toEqual(data);
    expect(off.requests).toHaveLength(0);
    const f2 = new ChunkFetcher(() => off);
    await expect(f2.get(hashes[0] as string, 1000, ['DDDDDDD'])).rejects.toThrow(
      /No connected peer/,
    );
  });

  it('fetches a chunk wanted twice only once', async () => {
    const b = source('BBBBBBB', all);
    const f = new ChunkFetcher(() => b);
    const h = hashes[3] as string;
    const [x, y] = await Promise.all([f.get(h, 1000, ['BBBBBBB']), f.get(h, 1000, ['BBBBBBB'])]);
    expect(x).toEqual(data[3]);
    expect(y).toEqual(data[3]);
    expect(b.requests.flat()).toEqual([h]);
  });
});

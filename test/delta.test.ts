// End to end: a small edit of a big file sends a chunk-list delta, not the
// whole list, in both directions (the record to the receiver, and the
// receiver's record of the new version back).
import { randomBytes } from 'node:crypto';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TestCluster, converged, sha256File, tempFiles, writeRandomFile } from './cluster.js';
import { FaultProxy } from './faults.js';

const MiB = 1024 * 1024;
const KiB = 1024;

describe('chunk-list deltas between real devices', () => {
  let cluster: TestCluster | undefined;
  const proxies: FaultProxy[] = [];

  afterEach(async () => {
    await cluster?.close();
    cluster = undefined;
    await Promise.all(proxies.splice(0).map((p) => p.close()));
  });

  it('an edit in the middle of a 128 MiB file moves its chunks and a short record, both ways', async () => {
    cluster = await TestCluster.create(['A', 'B'], { mesh: false });
    const a = cluster.get('A');
    const b = cluster.get('B');
    // Each device dials the other through its own counting proxy: `toA.down`
    // is what B fetches from A (A's index and chunks), `toB.down` what A
    // fetches from B (B's index: the record of the new version, echoed).
    const toA = new FaultProxy(a.peerPort);
    const toB = new FaultProxy(b.peerPort);
    proxies.push(toA, toB);
    await Promise.all([toA.listen(), toB.listen()]);
    await a.addPeer(b, `127.0.0.1:${toB.port}`);
    await b.addPeer(a, `127.0.0.1:${toA.port}`);
    const path = join(a.folder, 'big.bin');
    const first = await writeRandomFile(path, 128 * MiB);
    await cluster.startAll();
    const has = (hash: string) => (t: Record<string, { type: string; sha256?: string }>) =>
      t['big.bin']?.sha256 === hash;
    await converged([a, b], 'big.bin on B', has(first), 60_000);
    await new Promise((r) => setTimeout(r, 500));
    toA.reset();
    toB.reset();

    // 64 KiB overwritten in place, in the middle.
    const fh = await open(path, 'r+');
    await fh.write(Buffer.alloc(64 * KiB, 0x5a), 0, 64 * KiB, 64 * MiB);
    await fh.close();
    const second = await sha256File(path);
    await converged([a, b], 'the edit on B', has(second), 60_000);
    await new Promise((r) => setTimeout(r, 500));

    // The full chunk list of 128 MiB is about 150 KB of JSON each way.
    expect(toB.down, 'A fetched from B (the echoed record)').toBeLessThan(32 * KiB);
    // B fetched the changed chunks (at most a few of 256 KiB) and the delta.
    expect(toA.down, 'B fetched from A').toBeLessThan(MiB);
    expect(await tempFiles(b.folder)).toEqual([]);
  }, 120_000);

  it('a file that grows for seconds (an export being written) reaches the peer without full-record retries', async () => {
    cluster = await TestCluster.create(['A', 'B']);
    const a = cluster.get('A');
    const b = cluster.get('B');
    await cluster.startAll();
    const path = join(b.folder, 'export.mov');
    const fh = await open(path, 'w');
    // 200 MiB in 5 MiB writes, 150 ms apart: A pulls versions while B
    // indexes newer ones, and each record is a delta of the one before.
    for (let i = 0; i < 40; i++) {
      await fh.write(randomBytes(5 * MiB));
      await new Promise((r) => setTimeout(r, 150));
    }
    await fh.close();
    const want = await sha256File(path);
    await converged([a, b], 'export.mov on A', (t) => t['export.mov']?.sha256 === want, 90_000);
    expect(a.allMessages().filter((m) => /asking again for full records/.test(m))).toEqual([]);
    expect(await tempFiles(a.folder)).toEqual([]);
  }, 180_000);
});

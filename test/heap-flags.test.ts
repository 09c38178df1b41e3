// The daemon's V8 heap flags survive the hash pool's worker threads. V8 raises
// the young generation's growth factor to at least 2 whenever it sets up a
// heap, a worker's too; without the pool setting it again, the young
// generation of a device that has hashed one big file grows to 16–32 MiB.
// Runs in a child process of the built code, so the flags do not touch the
// test runner.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { distUrl, runModule } from './helpers.js';

/** The young generation's size (MiB) after churning objects, with or without the flags. */
function youngGenerationAfterHashing(file: string, applyFlags: boolean): number {
  const out = runModule(`
    import { getHeapSpaceStatistics } from 'node:v8';
    const { applyHeapFlags } = await import(${JSON.stringify(distUrl('scan/heap-flags.js'))});
    const { HashPool } = await import(${JSON.stringify(distUrl('scan/hash-pool.js'))});
    if (${applyFlags}) applyHeapFlags();
    const pool = new HashPool({ workers: 1, inlineBelow: 0, splitAbove: Infinity });
    if (!pool.usesWorkers) throw new Error('the hash worker is not built');
    await pool.hashFile(${JSON.stringify(file)});
    await pool.close();
    // Objects that survive a scavenge or two, the pattern that grows the young generation.
    let keep = [];
    for (let r = 0; r < 20; r++) {
      for (let i = 0; i < 300000; i++) keep.push({ a: i, b: 'x' + i });
      keep = [];
    }
    const s = getHeapSpaceStatistics().find((x) => x.space_name === 'new_space');
    console.log(s.space_size / 1048576);
  `);
  return Number(out.trim());
}

describe('heap flags', () => {
  let tmp: string;
  beforeEach(() => {
    tmp = mkdtempSync(join(tmpdir(), 'lockstep-heap-'));
  });
  afterEach(() => rmSync(tmp, { recursive: true, force: true }));

  it('keeps the young generation at its first size after a hash worker has run', () => {
    const file = join(tmp, 'big');
    writeFileSync(file, Buffer.alloc(2 * 1024 * 1024, 7));
    // Without the flags V8 grows it, which is what makes the check below mean something.
    expect(youngGenerationAfterHashing(file, false)).toBeGreaterThan(8);
    expect(youngGenerationAfterHashing(file, true)).toBeLessThanOrEqual(4);
  });
});

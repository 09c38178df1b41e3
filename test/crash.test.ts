// Crash: kill -9 at random moments while both devices write a mix of large
// and small files that sync both ways. After each kill no final path on the
// killed device holds a torn file (every file's hash is one of the versions
// written); after each restart the devices converge, no temp file is left,
// and each index equals its disk.
//
// CRASH_CYCLES cycles (default 3; the soak runs 50 or more); SEED=n
// reproduces the random choices (the seed is printed).
import { randomBytes } from 'node:crypto';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  TEMP_PREFIX,
  TestCluster,
  sha256,
  treeOf,
  writeRandomFile,
  type TestDevice,
} from './cluster.js';
import { quiescent } from './model.js';

const CYCLES = Number(process.env.CRASH_CYCLES ?? 3);
const SEED = process.env.SEED === undefined ? Date.now() % 2 ** 31 : Number(process.env.SEED);
const MiB = 1024 * 1024;

/** A small seeded PRNG (xorshift32): the choices of a run follow from the seed. */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
}

describe('kill -9 during a mixed workload', () => {
  let cluster: TestCluster | undefined;
  afterAll(async () => {
    await cluster?.close();
  });

  it(
    `never shows a torn file and converges after each of ${CYCLES} kills (seed ${SEED})`,
    async () => {
      console.log(
        `crash: seed ${SEED}, ${CYCLES} cycles (reproduce: SEED=${SEED} CRASH_CYCLES=${CYCLES})`,
      );
      const rand = prng(SEED);
      const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
      cluster = await TestCluster.create(['A', 'B']);
      const devices = cluster.devices as [TestDevice, TestDevice];
      const staging = join(cluster.tmp, 'staging');
      mkdirSync(staging);
      /** Every content written, by hash. */
      const written = new Set<string>();
      let n = 0;

      /** Writes one file atomically (staged beside the folder, renamed in). */
      const writeOne = async (d: TestDevice) => {
        const big = rand() < 0.15;
        const name = big ? `big-${Math.floor(rand() * 4)}.bin` : `s/${Math.floor(rand() * 40)}.txt`;
        const stage = join(staging, `${d.name}-${++n}`);
        if (big) {
          written.add(await writeRandomFile(stage, (4 + Math.floor(rand() * 28)) * MiB));
        } else {
          const text = `${d.name} ${n} ${randomBytes(8).toString('hex')}\n`.repeat(
            1 + Math.floor(rand() * 2000),
          );
          writeFileSync(stage, text);
          written.add(sha256(text));
        }
        mkdirSync(join(d.folder, 's'), { recursive: true });
        renameSync(stage, join(d.folder, name));
      };

      /** Every file on `d`'s disk at a final path holds a version that was written. */
      const noTornFiles = async (d: TestDevice, when: string) => {
        const t = await treeOf(d.folder);
        const torn = Object.entries(t)
          .filter(
            ([p, e]) => e.type === 'file' && !p.split('/').some((s) => s.startsWith(TEMP_PREFIX)),
          )
          .filter(([, e]) => !written.has((e as { sha256: string }).sha256))
          .map(([p]) => p);
        expect(torn, `torn files on ${d.name} ${when}`).toEqual([]);
      };

      await cluster.startAll();
      let kills = 0;
      let writes = 0;
      const started = Date.now();
      for (let cycle = 1; cycle <= CYCLES; cycle++) {
        const victims = rand() < 0.2 ? devices : [pick(devices)];
        const killAfter = 100 + Math.floor(rand() * 2500);
        // Both sides write while the clock runs down to the kill.
        const until = Date.now() + killAfter;
        const writers = devices.map(async (d) => {
          while (Date.now() < until) {
            await writeOne(d);
            writes++;
            await new Promise((r) => setTimeout(r, Math.floor(rand() * 60)));
          }
        });
        await Promise.all(writers);
        for (const v of victims) await v.stop('SIGKILL');
        kills += victims.length;
        for (const v of victims) await noTornFiles(v, `right after kill ${cycle}`);
        for (const v of victims) await v.start();
        await cluster.connected(devices);
        await quiescent(devices, `cycle ${cycle} of ${CYCLES}`, 180_000);
        for (const d of devices) await noTornFiles(d, `after cycle ${cycle}`);
      }
      rmSync(staging, { recursive: true, force: true });
      console.log(
        `crash: ${CYCLES} cycles, ${kills} kill -9s, ${writes} files written (${written.size} versions), ${Math.round((Date.now() - started) / 1000)} s`,
      );
    },
    120_000 + CYCLES * 200_000,
  );
});

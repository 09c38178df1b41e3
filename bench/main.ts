/**
 * `npm run bench`: the foundation benchmarks. Sizes can be scaled down with
 * environment variables for a quick run (BENCH_FILES, BENCH_CHUNK_MIB).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir, cpus, totalmem } from 'node:os';
import { benchChunk } from './chunk.js';
import { benchHome, benchWriteToIndexed, makeTree, serveOnce } from './index-tree.js';
import { median, quantile } from './stats.js';
import { parseBenchArgs } from './args.js';
import { benchMain } from './sync.js';
import { profileMain } from './profile-main.js';
import { vsMain } from './vs-main.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const FILES = Number(process.env.BENCH_FILES ?? 100_000);
const CHUNK_MIB = Number(process.env.BENCH_CHUNK_MIB ?? 1024);
const fmt = (n: number, d = 1) => n.toFixed(d);

async function main(): Promise<void> {
  const dir = mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), 'lockstep-bench-'));
  console.log(
    `Lockstep foundation benchmarks on ${cpus().length} cores, ${fmt(totalmem() / 2 ** 30, 0)} GiB, Node ${process.version}; ${RUNS} runs each, medians`,
  );
  try {
    const c = await benchChunk({ bytes: CHUNK_MIB * 2 ** 20, runs: RUNS, dir });
    console.log(
      `chunk + hash (FastCDC + BLAKE3), ${CHUNK_MIB} MiB file: median ${fmt(c.median, 0)} MB/s (runs: ${c.mbPerSec.map((x) => fmt(x, 0)).join(', ')})  goal >= 800`,
    );

    const first: number[] = [];
    const rescan: number[] = [];
    const rss: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      const { home, folder } = await benchHome(dir, `tree${r}`);
      makeTree(folder, FILES, FILES / 100, 4096);
      const a = await serveOnce(home);
      const b = await serveOnce(home);
      first.push(a.scanMs / 1000);
      rescan.push(b.scanMs / 1000);
      rss.push(Math.max(a.peakRssMb, b.peakRssMb));
      rmSync(join(dir, `tree${r}-folder`), { recursive: true, force: true });
    }
    console.log(
      `first index, ${FILES} files of 4 KiB in ${FILES / 100} dirs: median ${fmt(median(first), 2)} s (${first.map((x) => fmt(x, 2)).join(', ')})  goal <= 10 s`,
    );
    console.log(
      `rescan of the unchanged tree: median ${fmt(median(rescan), 2)} s (${rescan.map((x) => fmt(x, 2)).join(', ')})  goal <= 1.5 s`,
    );
    console.log(
      `peak RSS of serve: median ${fmt(median(rss), 0)} MB (${rss.map((x) => fmt(x, 0)).join(', ')})  goal <= 150 MB`,
    );

    const lat = await benchWriteToIndexed(dir, Number(process.env.BENCH_SAMPLES ?? 100));
    console.log(
      `write noticed and indexed, ${lat.length} samples: p50 ${fmt(quantile(lat, 0.5), 2)} ms, p99 ${fmt(quantile(lat, 0.99), 2)} ms, max ${fmt(Math.max(...lat), 2)} ms  goal p50 <= 5, p99 <= 30`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// `--vs`: the peer-sync scenarios side by side with rsync, lsyncd, Unison and
// Syncthing (bench/vs.ts), nothing else. Otherwise the foundation
// benchmarks, then the peer-sync scenarios (bench/sync.ts) and the lock
// scenarios (bench/locks.ts); BENCH_ONLY=S1,S4 or BENCH_ONLY=L1,L2 runs
// only those; BENCH_ONLY=scale the scale scenario (bench/scale.ts).
// `--profile`: Lockstep's S1 and S2 under the CPU profiler (bench/profile-main.ts).
const args = parseBenchArgs(process.argv.slice(2));
if (args.profile) await profileMain();
else if (args.vs !== undefined || args.docsFrom !== undefined) await vsMain(args);
else await benchMain(main);

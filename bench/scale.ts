/**
 * The scale scenario (`BENCH_ONLY=scale`, Lockstep alone; opt-in, it takes
 * minutes): 100,000 files of mixed sizes, 2 GiB in all, in 1,000 directories
 * on A; A started and indexed, then B started empty and timed until it
 * matches A; then both stopped and A started again, timed until it has
 * rescanned the unchanged folder; then B started again, and 1,000 files
 * rewritten on A at once, timed until B matches. Per phase: time, peak RSS
 * per device, and the size of each device's index database (with its WAL).
 *
 * BENCH_SCALE_FACTOR (default 1) scales the file counts and sizes for a
 * quick run.
 */
import { randomFillSync } from 'node:crypto';
import * as fs from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { LockstepRunner } from './lockstep-runner.js';
import { ProcWatch, type Side } from './runner.js';
import { digestTree, listTree } from './tree.js';
import { untilMatched, verifyContents, withPair, type Pair } from './sync-harness.js';
import { fmt, sizeText } from './sync-report.js';
import { columns, type ScalePhase, type ScaleResult } from './vs-report.js';

const KiB = 1024;
const MiB = 2 ** 20;

/** Whether BENCH_ONLY names `scale`. */
export function scaleSelected(only: string | undefined): boolean {
  return (only ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .includes('scale');
}

/** A group of files of one size. */
export interface SizeClass {
  readonly count: number;
  readonly size: number;
}

/**
 * The mix of sizes: `files` files, `total` bytes in all: 70% of 2 KiB, 25% of
 * 16 KiB, 4.9% of 256 KiB, and the rest (0.1%) sharing what is left, so
 * most files are small and most bytes are in larger files.
 */
export function scaleMix(files: number, total: number): SizeClass[] {
  const small = Math.round(files * 0.7);
  const mid = Math.round(files * 0.25);
  const large = Math.round(files * 0.049);
  const rest = Math.max(1, files - small - mid - large);
  const fixed = small * 2 * KiB + mid * 16 * KiB + large * 256 * KiB;
  const left = Math.max(rest, total - fixed);
  return [
    { count: small, size: 2 * KiB },
    { count: mid, size: 16 * KiB },
    { count: large, size: 256 * KiB },
    { count: rest, size: Math.floor(left / rest) },
  ].filter((c) => c.count > 0);
}

/** Writes the mix into `root`, 100 files per directory; returns the relative paths. */
function writeMix(root: string, mix: readonly SizeClass[]): string[] {
  const paths: string[] = [];
  const buf = Buffer.allocUnsafe(4 * MiB);
  let n = 0;
  for (const c of mix) {
    for (let i = 0; i < c.count; i++, n++) {
      const dir = `d${String(Math.floor(n / 100)).padStart(4, '0')}`;
      if (n % 100 === 0) fs.mkdirSync(join(root, dir), { recursive: true });
      const rel = `${dir}/f${n}.bin`;
      const fd = fs.openSync(join(root, rel), 'w');
      try {
        for (let done = 0; done < c.size;) {
          const k = Math.min(buf.length, c.size - done);
          randomFillSync(buf, 0, k);
          done += fs.writeSync(fd, buf, 0, k, done);
        }
      } finally {
        fs.closeSync(fd);
      }
      paths.push(rel);
    }
  }
  return paths;
}

function dbBytes(home: string): number {
  let n = 0;
  for (const f of ['index.db', 'index.db-wal', 'index.db-shm']) {
    try {
      n += fs.statSync(join(home, f)).size;
    } catch {
      // not there
    }
  }
  return n;
}

/** What the device's last "full scan done" log line says, in words. */
export function scanLogged(output: string): string | undefined {
  const lines = output.split('\n').filter((l) => l.includes('"msg":"full scan done"'));
  const last = lines.at(-1);
  if (last === undefined) return undefined;
  try {
    const o = JSON.parse(last) as { ms?: number; scanned?: number };
    if (o.ms === undefined) return undefined;
    return `the scan itself ${(o.ms / 1000).toFixed(2)} s${o.scanned !== undefined ? ` for ${o.scanned} entries` : ''}, as logged`;
  } catch {
    return undefined;
  }
}

/** Runs the scale scenario; progress lines to `progress`. */
export async function benchScale(
  dir: string,
  progress: (line: string) => void,
  timeoutMs = Number(process.env.BENCH_SYNC_TIMEOUT_S ?? 1800) * 1000,
): Promise<ScaleResult> {
  const startedAt = new Date().toISOString();
  const loadStart = loadavg()[0] ?? 0;
  const factor = Number(process.env.BENCH_SCALE_FACTOR ?? 1) || 1;
  const files = Math.max(1000, Math.round(100_000 * factor));
  const total = Math.round(2 * 2 ** 30 * factor);
  const mix = scaleMix(files, total);
  const bytes = mix.reduce((s, c) => s + c.count * c.size, 0);
  const burst = Math.min(1000, Math.floor(files / 10));
  const description = `${files} files (${mix.map((c) => `${c.count} x ${sizeText(c.size)}`).join(', ')}; ${sizeText(bytes)}) in ${Math.ceil(files / 100)} dirs; then a rescan, then ${burst} files rewritten at once`;
  progress(`scale: ${description}`);
  const phases: ScalePhase[] = [];
  const runner = new LockstepRunner();
  await withPair({ dir, runner: () => runner }, 'scale', async (p) => {
    // A failed phase ends the scenario; what ran is reported.
    fs.mkdirSync(p.dirA, { recursive: true });
    const paths = writeMix(p.dirA, mix);
    const homes = { A: runner.home('A'), B: runner.home('B') };
    // Peak RSS: VmHWM, reset at the phase's start (a process started within it: its whole life).
    const phase = async (
      name: string,
      body: (w: ProcWatch) => Promise<void>,
      detail?: () => string | undefined,
    ) => {
      const watch = new ProcWatch(runner);
      watch.begin();
      const t0 = performance.now();
      let error: string | undefined;
      try {
        await body(watch);
      } catch (err) {
        error = err instanceof Error ? err.message : String(err);
      }
      const seconds = (performance.now() - t0) / 1000;
      const usage = watch.end();
      const rssMb: Partial<Record<Side, number>> = {};
      for (const s of ['A', 'B'] as const) if (usage[s]) rssMb[s] = usage[s].peakRssMb;
      const out: ScalePhase = {
        name,
        seconds,
        rssMb,
        dbBytes: { A: dbBytes(homes.A), B: dbBytes(homes.B) },
        ...(error !== undefined ? { error } : {}),
      };
      const more = error === undefined ? detail?.() : undefined;
      if (more !== undefined) Object.assign(out, { detail: more });
      phases.push(out);
      progress(`  ${name}: ${error ?? `${seconds.toFixed(2)} s`}${more ? ` (${more})` : ''}`);
      if (error !== undefined) throw new Error(`${name}: ${error}`);
    };
    // The watch polls the processes while the harness waits.
    const matched = async (w: ProcWatch | undefined) => {
      const expected = listTree(p.dirA, runner);
      await untilMatched(p as Pair, expected, Promise.resolve(), w, timeoutMs, performance.now());
    };
    const scanned = () => scanLogged(runner.output('A'));
    await phase('A indexes the folder (first start)', () => runner.start('A'), scanned);
    await phase('into an empty B, until B matches', async (w) => {
      await runner.start('B');
      await matched(w);
    });
    const err = verifyContents(p, digestTree(p.dirA, listTree(p.dirA, runner)));
    if (err !== undefined) throw new Error(err);
    await runner.stop();
    await phase('rescan: A restarted on the unchanged folder', () => runner.start('A'), scanned);
    await runner.start('B');
    await matched(undefined);
    await phase(`${burst} files rewritten on A, until B matches`, async (w) => {
      const buf = Buffer.allocUnsafe(16 * KiB);
      const step = Math.max(1, Math.floor(paths.length / burst));
      for (let i = 0; i < burst; i++) {
        const rel = paths[(i * step) % paths.length] as string;
        const size = fs.statSync(join(p.dirA, rel)).size;
        const data = randomFillSync(buf.subarray(0, Math.min(size, buf.length)));
        fs.writeFileSync(join(p.dirA, rel), data);
      }
      await matched(w);
    });
  }).catch((err: unknown) => {
    if (phases.every((ph) => ph.error === undefined)) {
      phases.push({ name: 'set-up', seconds: NaN, rssMb: {}, dbBytes: {}, error: String(err) });
    }
  });
  const load = { start: loadStart, end: loadavg()[0] ?? 0 };
  return { startedAt, load, description, files, bytes, phases };
}

/** The human table of a scale run. */
export function scaleTable(x: ScaleResult): string[] {
  return [
    `Scale, Lockstep: ${x.description}`,
    ...columns([
      ['phase', 'time', 'A: peak RSS', 'B: peak RSS', 'A: db', 'B: db'],
      ...x.phases.map((p) => [
        p.name,
        p.error !== undefined
          ? `FAILED: ${p.error}`
          : `${fmt(p.seconds, 2)} s${p.detail ? ` (${p.detail})` : ''}`,
        mbOr(p.rssMb.A),
        mbOr(p.rssMb.B),
        p.dbBytes.A !== undefined ? sizeText(p.dbBytes.A) : '-',
        p.dbBytes.B !== undefined ? sizeText(p.dbBytes.B) : '-',
      ]),
    ]).map((l) => `  ${l}`),
  ];
}

/** `N MB`, or '-' when not measured. */
export function mbOr(n: number | undefined): string {
  return n === undefined ? '-' : `${fmt(n, 0)} MB`;
}

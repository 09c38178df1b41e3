/**
 * Peer-sync benchmarks: two devices on this machine, each reaching the other
 * through a counting TCP proxy, and four scenarios, each "prepare A's data →
 * start the clock → until B's folder matches A's":
 *
 * - S1 bulk: 8 random files of 128 MiB (1 GiB) into an empty B, timed from
 *   starting B (A already running and indexed, the two already peered).
 * - S2 small files: 20,000 random files of 4 KiB in 200 directories into an
 *   empty B, timed the same way.
 * - S3 delta: a 512 MiB file synced on both; on A a new version (1 MiB in the
 *   middle overwritten, 4 KiB inserted near the start) is written to a temp
 *   file outside the folder and renamed over the original; timed from the
 *   rename.
 * - S4 latency: both running and synced; a new 1 KiB file is written to a temp
 *   file outside the folder and renamed in; timed until B has the file with
 *   identical content; ≥ 30 samples ~100 ms apart.
 *
 * The clock stops (S1–S3) when B has every path with A's size and mtime and no
 * temp file of the tool remains; the contents are then compared by SHA-256
 * (untimed) and a difference fails the run. Per device: peak RSS and CPU
 * seconds of its process over the timed phase; bytes through the proxy.
 *
 * The tool is a {@link SyncRunner}; Lockstep is the only one today.
 *
 * Environment: BENCH_RUNS (runs per scenario, default 3), BENCH_ONLY (e.g.
 * `S1,S4`; only peer-sync and lock names, bench/locks.ts, skip the
 * foundation benchmarks),
 * BENCH_SYNC_SCALE (size factor, e.g. 0.05 for a quick run), BENCH_SYNC_SAMPLES
 * (S4 samples per run, default 30), BENCH_SYNC_TIMEOUT_S (per timed phase,
 * default 900), BENCH_DIR (scratch space, default the OS temp directory).
 * `--json` prints one JSON document (use `npm run -s bench -- --json`).
 */
import { createHash, randomFillSync } from 'node:crypto';
import * as fs from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  isLockScenario,
  lockOptionsFromEnv,
  benchLocks,
  locksFailed,
  locksTable,
} from './locks.js';
import { LockstepRunner } from './lockstep-runner.js';
import { benchScale, scaleSelected, scaleTable } from './scale.js';
import { ProcWatch, type SyncRunner } from './runner.js';
import { median, quantile } from './stats.js';
import {
  freeSpaceProblem,
  settledWire,
  sleep,
  startSynced,
  untilMatched,
  verifyContents,
  whenContent,
  withPair,
  type Pair,
} from './sync-harness.js';
import {
  fmt,
  mb,
  sizeText,
  SYNC_SCENARIOS,
  syncFailed,
  syncTable,
  type ScenarioId,
  type SyncReport,
  type SyncRun,
  type SyncScenarioResult,
} from './sync-report.js';
import { digestTree, listTree, writeRandomFile, writeSmallFiles } from './tree.js';

export { SYNC_SCENARIOS, syncTable, type ScenarioId, type SyncReport };

const MiB = 2 ** 20;
const GiB = 2 ** 30;

/** Options of {@link benchSync}. */
export interface SyncBenchOptions {
  /** Scratch directory; each run's data is made under it and removed afterwards. */
  readonly dir: string;
  /** Runs per scenario. */
  readonly runs: number;
  /** Scenarios to run, in order. */
  readonly scenarios: readonly ScenarioId[];
  /** Size factor: 1 is the full size, 0.05 a quick run. */
  readonly scale: number;
  /** Latency samples per S4 run. */
  readonly samples: number;
  /** Longest a timed phase may take before the run fails, in ms. */
  readonly timeoutMs: number;
  /** A fresh runner for each run. */
  readonly runner: () => SyncRunner;
  /** Progress lines (to stderr, say). */
  readonly progress?: (line: string) => void;
}

/** Reads the options from the environment (BENCH_RUNS, BENCH_ONLY, BENCH_SYNC_*). */
export function syncOptionsFromEnv(
  dir: string,
  runner: () => SyncRunner,
  progress?: (line: string) => void,
): SyncBenchOptions {
  const env = process.env;
  return {
    dir,
    runs: Math.max(1, Number(env.BENCH_RUNS ?? 3)),
    scenarios: selectedScenarios(env.BENCH_ONLY),
    scale: Number(env.BENCH_SYNC_SCALE ?? 1),
    samples: Math.max(1, Number(env.BENCH_SYNC_SAMPLES ?? 30)),
    timeoutMs: Number(env.BENCH_SYNC_TIMEOUT_S ?? 900) * 1000,
    runner,
    ...(progress ? { progress } : {}),
  };
}

/**
 * The scenarios named in `only` (comma-separated, e.g. `S1,S4`; case does not
 * matter; other names are left to the other benchmarks), or all when unset.
 * Also `sync` alone selects them all.
 */
export function selectedScenarios(only: string | undefined): ScenarioId[] {
  if (only === undefined || only.trim() === '') return [...SYNC_SCENARIOS];
  const names = only.split(',').map((s) => s.trim().toUpperCase());
  if (names.includes('SYNC')) return [...SYNC_SCENARIOS];
  return SYNC_SCENARIOS.filter((s) => names.includes(s));
}

/** S1 and S2: A's data made, A started and indexed; the clock runs from starting B. */
async function timedFromStartingB(
  opts: SyncBenchOptions,
  name: string,
  prepare: (dirA: string) => void,
): Promise<SyncRun> {
  return withPair(opts, name, async (p) => {
    prepare(p.dirA);
    const expected = listTree(p.dirA, p.runner);
    const digestsA = digestTree(p.dirA, expected);
    await p.runner.start('A');
    const watch = new ProcWatch(p.runner);
    p.proxy.reset();
    watch.begin();
    const t0 = performance.now();
    const synced = p.runner.start('B').then(() => p.runner.waitSynced());
    const t1 = await untilMatched(p, expected, synced, watch, opts.timeoutMs, t0);
    return finishRun(p, watch, t1 - t0, digestsA);
  });
}

/**
 * The run's result once B matched, `ms` after the clock started: stops the
 * process watch, waits for the traffic to settle, checks B's contents
 * against `digests` (path → SHA-256).
 */
async function finishRun(
  p: Pair,
  watch: ProcWatch,
  ms: number,
  digests: ReadonlyMap<string, string>,
): Promise<SyncRun> {
  const usage = watch.end();
  const harnessCpuS = watch.ownCpuS;
  const wire = await settledWire(p.proxy);
  const error = verifyContents(p, digests);
  const note = p.runner.note?.();
  return {
    seconds: ms / 1000,
    wire,
    usage,
    harnessCpuS,
    ...(error ? { error } : {}),
    ...(note ? { note } : {}),
  };
}

/**
 * Writes to `out` the new version of `src`: `insert` random bytes inserted at
 * `insertAt`, and `overwrite` random bytes at `overwriteAt` (an offset in the
 * original) overwritten. Returns the SHA-256 of the new content.
 */
function writeDeltaVersion(
  src: string,
  out: string,
  edit: { insertAt: number; insert: number; overwriteAt: number; overwrite: number },
): string {
  const size = fs.statSync(src).size;
  const h = createHash('sha256');
  const buf = Buffer.allocUnsafe(16 * MiB);
  const fin = fs.openSync(src, 'r');
  const fout = fs.openSync(out, 'w');
  let outPos = 0;
  const put = (b: Buffer) => {
    h.update(b);
    for (let done = 0; done < b.length;)
      done += fs.writeSync(fout, b, done, b.length - done, outPos + done);
    outPos += b.length;
  };
  const copy = (from: number, to: number) => {
    for (let pos = from; pos < to;) {
      const n = fs.readSync(fin, buf, 0, Math.min(buf.length, to - pos), pos);
      if (n === 0) throw new Error(`${src} ended early`);
      put(buf.subarray(0, n));
      pos += n;
    }
  };
  const random = (n: number) => put(randomFillSync(Buffer.allocUnsafe(n)));
  try {
    copy(0, edit.insertAt);
    random(edit.insert);
    copy(edit.insertAt, edit.overwriteAt);
    random(edit.overwrite);
    copy(edit.overwriteAt + edit.overwrite, size);
  } finally {
    fs.closeSync(fin);
    fs.closeSync(fout);
  }
  return h.digest('hex');
}

/** S3: the delta of a 512 MiB file. */
async function runDelta(opts: SyncBenchOptions, size: number): Promise<SyncRun> {
  return withPair(opts, 's3', async (p) => {
    const file = join(p.dirA, 'big.bin');
    fs.mkdirSync(p.dirA, { recursive: true });
    writeRandomFile(file, size);
    await startSynced(p, opts.timeoutMs);
    const edit = deltaEdit(size);
    const next = join(p.work, 'big.bin.new');
    const digest = writeDeltaVersion(file, next, edit);
    const watch = new ProcWatch(p.runner);
    p.proxy.reset();
    watch.begin();
    const t0 = performance.now();
    fs.renameSync(next, file);
    p.runner.changed?.();
    const expected = listTree(p.dirA, p.runner);
    const t1 = await untilMatched(p, expected, p.runner.waitSynced(), watch, opts.timeoutMs, t0);
    return finishRun(p, watch, t1 - t0, new Map([['big.bin', digest]]));
  });
}

/** Where S3 edits a file of `size` bytes. */
function deltaEdit(size: number) {
  const overwrite = Math.min(MiB, Math.floor(size / 8));
  return {
    insertAt: Math.min(100_000, Math.floor(size / 16)),
    insert: 4096,
    overwriteAt: Math.floor(size / 2),
    overwrite,
  };
}

/** S4: `samples` new 1 KiB files, each timed from its rename into A until B has it. */
async function runLatency(opts: SyncBenchOptions, seedFiles: number): Promise<SyncRun> {
  return withPair(opts, 's4', async (p) => {
    fs.mkdirSync(p.dirA, { recursive: true });
    writeSmallFiles(p.dirA, seedFiles, Math.max(1, Math.round(seedFiles / 100)), 1024);
    await startSynced(p, opts.timeoutMs);
    const watch = new ProcWatch(p.runner);
    p.proxy.reset();
    watch.begin();
    const samples: number[] = [];
    for (let i = 0; i < opts.samples; i++) {
      const name = `latency-${i}.bin`;
      const data = randomFillSync(Buffer.allocUnsafe(1024));
      const tmp = join(p.work, name);
      fs.writeFileSync(tmp, data);
      const arrived = whenContent(join(p.dirB, name), data, 10_000);
      const t0 = performance.now();
      fs.renameSync(tmp, join(p.dirA, name));
      const t1 = await arrived;
      samples.push(t1 - t0);
      watch.sample();
      await sleep(100);
    }
    const usage = watch.end();
    const harnessCpuS = watch.ownCpuS;
    const wire = await settledWire(p.proxy);
    // Everything (seed files, samples) matches, contents too.
    const expected = listTree(p.dirA, p.runner);
    await untilMatched(p, expected, Promise.resolve(), undefined, 10_000, performance.now());
    const error = verifyContents(p, digestTree(p.dirA, expected));
    return {
      seconds: median(samples) / 1000,
      samplesMs: samples,
      wire,
      usage,
      harnessCpuS,
      ...(error ? { error } : {}),
    };
  });
}

/** Runs `once`, recording a failure as a failed run instead of throwing. */
export async function attempt(once: () => Promise<SyncRun>): Promise<SyncRun> {
  try {
    return await once();
  } catch (err) {
    const error = err instanceof Error ? err.message : String(err);
    return { seconds: Number.NaN, wire: { aToB: 0, bToA: 0, total: 0 }, usage: {}, error };
  }
}

/** One scenario, ready to run: what it is, and how to run it once with a given tool. */
export interface ScenarioPlan {
  readonly id: ScenarioId;
  /** The scenario without its runs. */
  readonly base: Omit<SyncScenarioResult, 'runs' | 'skipped'>;
  /** Why it cannot run here (disk space), if it cannot. */
  readonly skipped?: string;
  /** One run with the runner of `opts`. */
  readonly once: (opts: SyncBenchOptions) => Promise<SyncRun>;
  /** A run in one line, for progress. */
  readonly show: (r: SyncRun) => string;
}

const showRun = (r: SyncRun) =>
  `${fmt(r.seconds, 2)} s, wire ${mb(r.wire.total)}, benchmark process CPU ${fmt(r.harnessCpuS ?? Number.NaN, 2)} s`;

/** The plan of scenario `id` at the sizes of `opts`. */
export function planScenario(opts: SyncBenchOptions, id: ScenarioId): ScenarioPlan {
  const scale = opts.scale > 0 ? opts.scale : 1;
  switch (id) {
    case 'S1': {
      const size = Math.max(64 * 1024, Math.round((128 * MiB * scale) / 4096) * 4096);
      const data = {
        files: 8,
        bytes: 8 * size,
        description: `8 x ${sizeText(size)} = ${sizeText(8 * size)}`,
      };
      const short = freeSpaceProblem(opts.dir, 2 * data.bytes + 256 * MiB);
      return {
        id,
        base: { id, title: 'bulk into an empty B', data, payloadBytes: data.bytes },
        ...(short !== undefined ? { skipped: short } : {}),
        once: (o) =>
          timedFromStartingB(o, 's1', (dirA) => {
            fs.mkdirSync(dirA, { recursive: true });
            for (let i = 0; i < 8; i++) writeRandomFile(join(dirA, `bulk-${i}.bin`), size);
          }),
        show: showRun,
      };
    }
    case 'S2': {
      const files = Math.max(100, Math.round(20_000 * scale));
      const dirs = Math.max(1, Math.round(files / 100));
      const data = {
        files,
        bytes: files * 4096,
        description: `${files} x 4 KiB in ${dirs} dirs`,
      };
      return {
        id,
        base: { id, title: 'small files into an empty B', data, payloadBytes: data.bytes },
        once: (o) =>
          timedFromStartingB(o, 's2', (dirA) => {
            fs.mkdirSync(dirA, { recursive: true });
            writeSmallFiles(dirA, files, dirs, 4096);
          }),
        show: showRun,
      };
    }
    case 'S3': {
      const size = Math.max(8 * MiB, Math.round((512 * MiB * scale) / 4096) * 4096);
      const edit = deltaEdit(size);
      const data = {
        files: 1,
        bytes: size,
        description: `${sizeText(size)}; ${sizeText(edit.overwrite)} overwritten, ${sizeText(edit.insert)} inserted`,
      };
      const short = freeSpaceProblem(opts.dir, 4 * size + 256 * MiB);
      return {
        id,
        base: {
          id,
          title: 'delta of a large file',
          data,
          payloadBytes: edit.insert + edit.overwrite,
        },
        ...(short !== undefined ? { skipped: short } : {}),
        once: (o) => runDelta(o, size),
        show: showRun,
      };
    }
    case 'S4': {
      const seed = 1000;
      return {
        id,
        base: {
          id,
          title: 'latency of a new small file',
          data: {
            files: opts.samples,
            bytes: opts.samples * 1024,
            description: `${opts.samples} x 1 KiB new; ${seed} x 1 KiB synced`,
          },
          payloadBytes: 1024,
        },
        once: (o) => runLatency(o, seed),
        show: (r) => {
          const s = r.samplesMs ?? [];
          return `p50 ${fmt(quantile(s, 0.5), 1)} ms, p90 ${fmt(quantile(s, 0.9), 1)} ms, max ${fmt(Math.max(...s), 1)} ms, wire ${mb(r.wire.total)}, benchmark process CPU ${fmt(r.harnessCpuS ?? Number.NaN, 2)} s`;
        },
      };
    }
  }
}

/** What the peer-sync benchmarks did, in words (for the report of `tool`). */
export function syncMethod(tool: string): string[] {
  return [
    `Two ${tool} devices on 127.0.0.1, each reaching the other through a counting TCP proxy (in a worker thread of the benchmark); wire = TCP payload both ways (TLS included) from the clock start until traffic settles after the match.`,
    'S1, S2: A running and fully indexed, peered with B; the clock runs from starting B until B has every path with A’s size and mtime and no temp files; contents are then compared by SHA-256 (untimed).',
    'All data is random: incompressible, no chunk repeats.',
    'S3: on A the new version (1 MiB overwritten at the middle, 4 KiB inserted at offset 100,000) is written to a temp file outside the folder and renamed over the original; the clock runs from the rename. MB/s for S3 is the changed bytes over the time.',
    'S4: each file is written to a temp file outside the folder and renamed in, ~100 ms apart; the clock stops when B’s copy has identical content (fs.watch + 1 ms poll); wire is per file.',
    'RSS: peak of each device’s process tree over the timed phase (VmHWM reset at the clock start; for a tree of several processes the largest sum of their RSS if that is more); CPU: utime + stime of the tree over the timed phase, children that exited counted through cutime + cstime.',
    'The page cache is not dropped: A’s data was just written, so reads on A mostly come from memory.',
  ];
}

/** The machine, as reports name it. */
export function machineBrief(): SyncReport['machine'] {
  return { cores: cpus().length, memoryGiB: Math.round(totalmem() / GiB), node: process.version };
}

/** Runs the selected scenarios. */
export async function benchSync(opts: SyncBenchOptions): Promise<SyncReport> {
  const scale = opts.scale > 0 ? opts.scale : 1;
  const scenarios: SyncScenarioResult[] = [];
  for (const id of opts.scenarios) {
    const plan = planScenario(opts, id);
    if (plan.skipped !== undefined) {
      scenarios.push({ ...plan.base, runs: [], skipped: plan.skipped });
      opts.progress?.(`  ${id} skipped: ${plan.skipped}`);
      continue;
    }
    opts.progress?.(`${id}: running ${opts.runs} time(s)`);
    const runs: SyncRun[] = [];
    for (let r = 0; r < opts.runs; r++) {
      const run = await attempt(() => plan.once(opts));
      runs.push(run);
      opts.progress?.(
        `  ${id} run ${r + 1}/${opts.runs}: ${run.error ? `FAILED: ${run.error}` : plan.show(run)}`,
      );
    }
    scenarios.push({ ...plan.base, runs });
  }
  const tool = opts.runner().name;
  return {
    tool,
    machine: machineBrief(),
    runs: opts.runs,
    scale,
    scenarios,
    method: syncMethod(tool),
  };
}

/** Whether `only` (BENCH_ONLY) names nothing but peer-sync and lock scenarios. */
export function onlySync(only: string | undefined): boolean {
  if (only === undefined || only.trim() === '') return false;
  return only
    .split(',')
    .map((s) => s.trim().toUpperCase())
    .every(
      (s) =>
        s === 'SYNC' ||
        s === 'SCALE' ||
        (SYNC_SCENARIOS as readonly string[]).includes(s) ||
        isLockScenario(s),
    );
}

/**
 * The benchmark entry point around the foundation benchmarks `foundation`:
 * runs them unless BENCH_ONLY names only peer-sync or lock scenarios, then the
 * selected peer-sync and lock scenarios with Lockstep. Prints the tables, or with
 * `--json` one JSON document on stdout (the foundation benchmarks' lines and
 * all progress then go to stderr). A failed run sets the exit code to 1.
 */
export async function benchMain(foundation: () => Promise<void>): Promise<void> {
  const json = process.argv.includes('--json');
  if (!onlySync(process.env.BENCH_ONLY)) {
    const log = console.log;
    if (json) console.log = console.error;
    try {
      await foundation();
    } finally {
      console.log = log;
    }
  }
  const dir = fs.mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), 'lockstep-sync-'));
  try {
    const opts = syncOptionsFromEnv(
      dir,
      () => new LockstepRunner(),
      (line) => console.error(line),
    );
    // Then the lock and listing scenarios (bench/locks.ts); BENCH_ONLY=L1,L2 runs only those.
    const lockOpts = lockOptionsFromEnv(dir, (line) => console.error(line));
    const report = opts.scenarios.length > 0 ? await benchSync(opts) : undefined;
    const locks = lockOpts.scenarios.length > 0 ? await benchLocks(lockOpts) : undefined;
    // The scale scenario only when named (it takes minutes): BENCH_ONLY=scale.
    const scale = scaleSelected(process.env.BENCH_ONLY)
      ? await benchScale(dir, (line) => console.error(line))
      : undefined;
    if (report === undefined && locks === undefined && scale === undefined) return;
    if (json) {
      process.stdout.write(`${JSON.stringify({ sync: report, locks, scale }, null, 2)}\n`);
    } else {
      if (report) console.log(syncTable(report).join('\n'));
      if (locks) console.log(locksTable(locks).join('\n'));
      if (scale) console.log(scaleTable(scale).join('\n'));
    }
    const scaleFailed = scale?.phases.some((p) => p.error !== undefined) ?? false;
    if ((report && syncFailed(report)) || (locks && locksFailed(locks)) || scaleFailed) {
      process.exitCode = 1;
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

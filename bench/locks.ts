/**
 * Lock and listing benchmarks: two real `lockstep serve` processes of the
 * built binary, set up with `lockstep init` / `lockstep peer add` and peered
 * directly on 127.0.0.1 (no proxy), measured through the client API with
 * Node's fetch (one keep-alive connection, requests one after another) and
 * through the CLI:
 *
 * - L1 lock round trip: lock + unlock of one file, ≥ 200 times in a row,
 *   through the device that is NOT the lock authority (it forwards both over
 *   the peer link); p50, p90, max. For reference the same through the
 *   authority itself. Goal: p50 ≤ 5 ms. Side by side, the same on etcd: a
 *   fresh three-member etcd on 127.0.0.1 and two devices keeping their locks
 *   there, round trips through B; p50, p95. Goal: p50 ≤ 10 ms. And for both,
 *   from a lock granted to the file read-only on the other device; goal
 *   p50 ≤ 50 ms.
 * - L2 global view of 100,000 files: 100,000 files of 1 KiB in 1,000
 *   directories made on A; A started and indexed, then B, until B holds them
 *   all and both are idle (untimed set-up, once). Then per run, on B and on A:
 *   the first page (100 entries) of the root and of one directory of 100
 *   files; everything (the root and every directory, one API call each with
 *   limit 10,000: the CLI lists one directory per process and has no
 *   recursive listing); and `lockstep ls --json` of the root and of one
 *   directory, each as its own process. Goals: first page ≤ 100 ms,
 *   everything ≤ 2 s.
 *
 * Environment: BENCH_RUNS (default 3), BENCH_ONLY (`L1,L2`, or `locks` for
 * both), BENCH_LOCKS_SAMPLES (L1 round trips per run, default 200),
 * BENCH_LOCKS_FILES (L2 files, default 100000, 100 per directory),
 * BENCH_LOCKS_SYNC=0 (L2 on A alone, without B), BENCH_SYNC_TIMEOUT_S (L2
 * sync wait, default 900), BENCH_DIR (scratch space).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { ListEntry, ListPage, Status } from '../dist/api/backend.js';
import { homeApiUrl } from '../dist/cli/connect.js';
import { homePaths } from '../dist/config/home.js';
import { loadConfig, saveConfig } from '../dist/config/config.js';
import { LocalEtcd } from '../dist/cli/local-etcd.js';
import { makeTree } from './index-tree.js';
import { LockstepRunner } from './lockstep-runner.js';
import { freePort, readProc, SIDES, type Side } from './runner.js';
import { median, quantile } from './stats.js';
import { sleep } from './sync-harness.js';
import { fmt } from './sync-report.js';

const BIN = fileURLToPath(new URL('../bin/lockstep.js', import.meta.url));
const GiB = 2 ** 30;

/** The scenarios, by ID. */
export const LOCK_SCENARIOS = ['L1', 'L2'] as const;
export type LockScenarioId = (typeof LOCK_SCENARIOS)[number];

/** L1 round trips not counted at the start of each run (connection set-up, JIT). */
const WARMUP = 10;
/** Entries per page of the L2 first-page requests. */
const FIRST_PAGE = 100;
/** Entries per request of the L2 "everything" listing (the API's maximum, as the CLI asks). */
const ALL_PAGE = 10_000;
/** Goals. */
const GOAL = {
  lockP50Ms: 5,
  etcdLockP50Ms: 10,
  readOnlyP50Ms: 50,
  firstPageMs: 100,
  everythingMs: 2000,
} as const;
/** Locks per run whose "granted to read-only elsewhere" time is measured. */
const READ_ONLY_SAMPLES = 30;

/** Options of {@link benchLocks}. */
export interface LockBenchOptions {
  /** Scratch directory; each run's data is made under it and removed afterwards. */
  readonly dir: string;
  /** Runs per scenario (L2: measurements on the one set-up). */
  readonly runs: number;
  readonly scenarios: readonly LockScenarioId[];
  /** L1 round trips per run (after {@link WARMUP}). */
  readonly samples: number;
  /** L2 files (100 per directory). */
  readonly files: number;
  /** L2: sync to B and measure there too (else A alone). */
  readonly sync: boolean;
  /** Longest the L2 sync may take, in ms. */
  readonly timeoutMs: number;
  /** Progress lines (to stderr, say). */
  readonly progress?: (line: string) => void;
}

/**
 * The lock scenarios named in `only` (comma-separated, e.g. `L1,L2`; `locks`
 * for both; other names are left to the other benchmarks), or all when unset.
 */
export function selectedLockScenarios(only: string | undefined): LockScenarioId[] {
  if (only === undefined || only.trim() === '') return [...LOCK_SCENARIOS];
  const names = only.split(',').map((s) => s.trim().toUpperCase());
  if (names.includes('LOCKS')) return [...LOCK_SCENARIOS];
  return LOCK_SCENARIOS.filter((s) => names.includes(s));
}

/** Whether `name` (one BENCH_ONLY entry, upper case) is one of these benchmarks. */
export function isLockScenario(name: string): boolean {
  return name === 'LOCKS' || (LOCK_SCENARIOS as readonly string[]).includes(name);
}

/** Reads the options from the environment (BENCH_RUNS, BENCH_ONLY, BENCH_LOCKS_*). */
export function lockOptionsFromEnv(
  dir: string,
  progress?: (line: string) => void,
): LockBenchOptions {
  const env = process.env;
  return {
    dir,
    runs: Math.max(1, Number(env.BENCH_RUNS ?? 3)),
    scenarios: selectedLockScenarios(env.BENCH_ONLY),
    samples: Math.max(1, Number(env.BENCH_LOCKS_SAMPLES ?? 200)),
    files: Math.max(100, Number(env.BENCH_LOCKS_FILES ?? 100_000)),
    sync: env.BENCH_LOCKS_SYNC !== '0',
    timeoutMs: Number(env.BENCH_SYNC_TIMEOUT_S ?? 900) * 1000,
    ...(progress ? { progress } : {}),
  };
}

/** A device, as a run names it. */
interface DeviceName {
  readonly side: Side;
  readonly short: string;
}

/** One L1 run: a fresh pair of devices. */
export interface L1Run {
  /** The device the client talked to (not the authority). */
  readonly via?: DeviceName;
  readonly authority?: DeviceName;
  /** Lock + unlock, ms, one per round trip. */
  readonly roundTripMs: readonly number[];
  /** The lock request alone, ms. */
  readonly lockMs: readonly number[];
  /** The unlock request alone, ms. */
  readonly unlockMs: readonly number[];
  /** Lock + unlock through the authority itself (reference), ms. */
  readonly viaAuthorityMs: readonly number[];
  /** From the lock request to the file read-only on the other device, ms. */
  readonly readOnlyMs?: readonly number[];
  readonly error?: string;
}

/** One L1 run on etcd: a fresh three-member etcd and a fresh pair of devices using it. */
export interface L1EtcdRun {
  /** Lock + unlock through device B (with etcd no device is the authority), ms. */
  readonly roundTripMs: readonly number[];
  readonly lockMs: readonly number[];
  readonly unlockMs: readonly number[];
  /** From the lock request (through B) to the file read-only on A, ms. */
  readonly readOnlyMs: readonly number[];
  readonly error?: string;
}

/** One L2 measurement on one device. */
export interface L2Run {
  readonly side: Side;
  /** First page of the root listing (GET /files?dir=&limit=100), ms. */
  readonly rootPageMs: number;
  /** The directory whose first page was timed. */
  readonly dir: string;
  /** First page of that directory, ms. */
  readonly dirPageMs: number;
  /** The root and every directory, one call each (limit 10,000), ms. */
  readonly everythingMs: number;
  /** API calls of the "everything" listing. */
  readonly calls: number;
  /** Entries the "everything" listing returned (files and directories). */
  readonly entries: number;
  /** Of those, the ones every running device holds (a remote record merged with the local one). */
  readonly heldByAll: number;
  /** `lockstep ls --json --home H` of the root, one process, ms. */
  readonly cliRootMs: number;
  /** `lockstep ls DIR --json --home H`, one process, ms. */
  readonly cliDirMs: number;
  /** `lockstep --version`, one process: the start-up floor of any CLI call, ms. */
  readonly cliStartMs: number;
  /** `lockstep ls -R --json --home H`: the whole view through the CLI, one process, ms. */
  readonly cliAllMs: number;
  readonly error?: string;
}

/** The L2 scenario: its set-up and its measurements. */
export interface L2Result {
  readonly files: number;
  readonly dirs: number;
  readonly fileBytes: number;
  /** Whether B was synced and measured (else A alone). */
  readonly synced: boolean;
  /** Untimed set-up, seconds: making the tree, A's start with its first index, B's sync. */
  readonly setupS: { readonly make: number; readonly indexA: number; readonly syncB?: number };
  readonly runs: readonly L2Run[];
  readonly error?: string;
}

/** Everything the lock benchmarks measured. */
export interface LocksReport {
  readonly tool: string;
  readonly machine: { readonly cores: number; readonly memoryGiB: number; readonly node: string };
  readonly runs: number;
  readonly goals: typeof GOAL;
  readonly L1?: {
    readonly samples: number;
    readonly runs: readonly L1Run[];
    readonly etcd: readonly L1EtcdRun[];
  };
  readonly L2?: L2Result;
  readonly method: readonly string[];
}

// --- the client side

interface Api {
  /** `http://HOST:PORT/api/v1` */
  readonly url: string;
  readonly auth: string;
}

function apiOf(home: string): Api {
  const token = readFileSync(homePaths(home).token, 'utf8').trim();
  return { url: `${homeApiUrl(home)}/api/v1`, auth: `Bearer ${token}` };
}

async function call<T>(
  api: Api,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: T }> {
  const res = await fetch(`${api.url}${path}`, {
    method,
    headers: {
      authorization: api.auth,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as T };
}

async function get<T>(api: Api, path: string): Promise<T> {
  const r = await call<T>(api, 'GET', path);
  if (r.status !== 200) throw new Error(`GET ${path}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

/** Every entry of `dir`, page by page as the CLI asks (limit 10,000). */
async function listAll(api: Api, dir: string): Promise<{ entries: ListEntry[]; calls: number }> {
  const entries: ListEntry[] = [];
  let calls = 0;
  for (;;) {
    const q = new URLSearchParams({ dir, offset: String(entries.length), limit: String(ALL_PAGE) });
    const p = await get<ListPage>(api, `/files?${q.toString()}`);
    calls++;
    entries.push(...p.entries);
    if (p.entries.length === 0 || entries.length >= p.total) return { entries, calls };
  }
}

/** Runs `lockstep ARGS` to completion; returns its wall time in ms and stdout. */
function timeCli(args: string[]): { ms: number; stdout: string } {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    maxBuffer: 512 * 2 ** 20,
    timeout: 60_000,
  });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`lockstep ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return { ms, stdout: r.stdout };
}

/** Polls `check` every `everyMs` until it holds; throws after `timeoutMs` saying `what`. */
async function until(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
  everyMs = 100,
): Promise<void> {
  const end = performance.now() + timeoutMs;
  for (;;) {
    let problem = '';
    try {
      if (await check()) return;
    } catch (err) {
      problem = ` (last: ${err instanceof Error ? err.message : String(err)})`;
    }
    if (performance.now() > end) {
      throw new Error(`not within ${(timeoutMs / 1000).toFixed(0)} s: ${what}${problem}`);
    }
    await sleep(everyMs);
  }
}

/** Waits (at most `maxMs`) until each process used under 3% of a core over a second. */
async function untilQuiet(pids: readonly number[], maxMs: number): Promise<void> {
  const cpu = () => pids.map((p) => readProc(p)?.cpuS ?? 0);
  const end = performance.now() + maxMs;
  let before = cpu();
  while (performance.now() < end) {
    await sleep(1000);
    const now = cpu();
    const busiest = Math.max(...now.map((c, i) => c - (before[i] ?? 0)));
    before = now;
    if (busiest < 0.03) return;
  }
}

const otherSide = (s: Side): Side => (s === 'A' ? 'B' : 'A');

/** Two devices set up under `dir` (not started), peered directly; stopped and removed after `fn`. */
async function withDevices<T>(
  dir: string,
  name: string,
  fn: (d: {
    runner: LockstepRunner;
    folders: Record<Side, string>;
    homes: Record<Side, string>;
    api: Record<Side, Api>;
  }) => Promise<T>,
): Promise<T> {
  const root = mkdtempSync(join(dir, `${name}-`));
  const folders = { A: join(root, 'A'), B: join(root, 'B') };
  const work = join(root, 'work');
  mkdirSync(work);
  const runner = new LockstepRunner();
  const listen = { A: await freePort(), B: await freePort() };
  try {
    await runner.setup(folders.A, folders.B, { work, net: { listen, reach: listen } });
    const homes = { A: runner.home('A'), B: runner.home('B') };
    return await fn({ runner, folders, homes, api: { A: apiOf(homes.A), B: apiOf(homes.B) } });
  } finally {
    await runner.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

// --- L1

/** `n` lock + unlock round trips of `path` through `api`, after {@link WARMUP} uncounted ones. */
async function roundTrips(api: Api, path: string, n: number) {
  const roundTripMs: number[] = [];
  const lockMs: number[] = [];
  const unlockMs: number[] = [];
  const body = JSON.stringify({ path });
  const lockHeaders = { authorization: api.auth, 'content-type': 'application/json' };
  const unlockUrl = `${api.url}/locks/${encodeURIComponent(path)}`;
  for (let i = 0; i < WARMUP + n; i++) {
    const t0 = performance.now();
    const l = await fetch(`${api.url}/locks`, { method: 'POST', headers: lockHeaders, body });
    const lockReply = await l.text();
    const t1 = performance.now();
    const u = await fetch(unlockUrl, { method: 'DELETE', headers: { authorization: api.auth } });
    const unlockReply = await u.text();
    const t2 = performance.now();
    if (l.status !== 201) throw new Error(`lock ${path}: ${l.status} ${lockReply}`);
    if (u.status !== 200) throw new Error(`unlock ${path}: ${u.status} ${unlockReply}`);
    if (i < WARMUP) continue;
    roundTripMs.push(t2 - t0);
    lockMs.push(t1 - t0);
    unlockMs.push(t2 - t1);
  }
  return { roundTripMs, lockMs, unlockMs };
}

async function runL1(opts: LockBenchOptions): Promise<L1Run> {
  return withDevices(opts.dir, 'l1', async (d) => {
    const path = 'f.txt';
    writeFileSync(join(d.folders.A, path), 'a file to lock\n');
    await d.runner.start();
    let status: Record<Side, Status> | undefined;
    await until(
      'both devices connected, agreeing on the lock authority, and f.txt on both',
      async () => {
        const s = {
          A: await get<Status>(d.api.A, '/status'),
          B: await get<Status>(d.api.B, '/status'),
        };
        for (const side of SIDES) {
          const st = s[side];
          if (st.lockAuthority === null || !st.peers.every((p) => p.connected)) return false;
          const f = await call<ListEntry>(d.api[side], 'GET', `/files/${path}`);
          if (f.status !== 200 || f.body.devices.length < 2) return false;
        }
        if (s.A.lockAuthority?.id !== s.B.lockAuthority?.id) return false;
        status = s;
        return true;
      },
      60_000,
    );
    if (status === undefined) throw new Error('no status');
    const authorityId = status.A.lockAuthority?.id;
    const authSide: Side = status.A.device.id === authorityId ? 'A' : 'B';
    const viaSide = otherSide(authSide);
    const expected = [status.A.device.id, status.B.device.id].sort()[0];
    if (authorityId !== expected) {
      throw new Error(
        `the lock authority is ${authorityId}, not the smaller device ID ${expected}`,
      );
    }
    const via = await roundTrips(d.api[viaSide], path, opts.samples);
    const ref = await roundTrips(d.api[authSide], path, opts.samples);
    const readOnlyMs = await readOnlyLatency(
      d.api[viaSide],
      path,
      join(d.folders[authSide], path),
      READ_ONLY_SAMPLES,
    );
    // Nothing left locked anywhere once the replica has caught up.
    await until(
      'no lock left on either device',
      async () => {
        for (const side of SIDES) {
          const { locks } = await get<{ locks: unknown[] }>(d.api[side], '/locks');
          if (locks.length > 0) return false;
        }
        return true;
      },
      5000,
    );
    return {
      via: { side: viaSide, short: status[viaSide].device.short },
      authority: { side: authSide, short: status[authSide].device.short },
      ...via,
      viaAuthorityMs: ref.roundTripMs,
      readOnlyMs,
    };
  });
}

/**
 * `n` times: locks `path` through `api`, times from the request until `file` (the
 * same file on another device) is read-only, then unlocks and waits until it
 * is writable again (untimed).
 */
async function readOnlyLatency(api: Api, path: string, file: string, n: number) {
  const writable = () => (statSync(file).mode & 0o222) !== 0;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    // From the request: the grant is somewhere before its 201, and the other
    // device may hear of it before the client does (an upper bound, then).
    const t0 = performance.now();
    const l = await call<unknown>(api, 'POST', '/locks', { path });
    if (l.status !== 201) throw new Error(`lock ${path}: ${l.status}`);
    await until(`${file} read-only`, () => Promise.resolve(!writable()), 10_000, 1);
    out.push(performance.now() - t0);
    const u = await call<unknown>(api, 'DELETE', `/locks/${encodeURIComponent(path)}`);
    if (u.status !== 200) throw new Error(`unlock ${path}: ${u.status}`);
    await until(`${file} writable again`, () => Promise.resolve(writable()), 10_000, 1);
  }
  return out;
}

/** Waits until both devices are connected and hold `path`; returns their status. */
async function bothReady(api: Record<Side, Api>, path: string): Promise<Record<Side, Status>> {
  let status: Record<Side, Status> | undefined;
  await until(
    `both devices connected, agreeing on the lock authority, and ${path} on both`,
    async () => {
      const s = { A: await get<Status>(api.A, '/status'), B: await get<Status>(api.B, '/status') };
      for (const side of SIDES) {
        const st = s[side];
        if (st.lockAuthority === null || !st.peers.every((p) => p.connected)) return false;
        const f = await call<ListEntry>(api[side], 'GET', `/files/${path}`);
        if (f.status !== 200 || f.body.devices.length < 2) return false;
      }
      if (s.A.lockAuthority?.id !== s.B.lockAuthority?.id) return false;
      status = s;
      return true;
    },
    60_000,
  );
  if (status === undefined) throw new Error('no status');
  return status;
}

/** L1 on etcd: three members on 127.0.0.1, two devices configured to keep their locks there. */
async function runL1Etcd(opts: LockBenchOptions): Promise<L1EtcdRun> {
  const data = mkdtempSync(join(opts.dir, 'etcd-'));
  const etcd = await LocalEtcd.create(data, 3);
  try {
    await etcd.startAll();
    return await withDevices(opts.dir, 'l1e', async (d) => {
      const path = 'f.txt';
      writeFileSync(join(d.folders.A, path), 'a file to lock\n');
      const lockAuthority = { kind: 'etcd', endpoints: etcd.endpoints, prefix: '/bench/' } as const;
      for (const side of SIDES)
        saveConfig(d.homes[side], { ...loadConfig(d.homes[side]), lockAuthority });
      await d.runner.start();
      await bothReady(d.api, path);
      const trips = await roundTrips(d.api.B, path, opts.samples);
      const readOnlyMs = await readOnlyLatency(
        d.api.B,
        path,
        join(d.folders.A, path),
        READ_ONLY_SAMPLES,
      );
      return { ...trips, readOnlyMs };
    });
  } finally {
    await etcd.stopAll('SIGTERM');
    rmSync(data, { recursive: true, force: true });
  }
}

// --- L2

/** One L2 measurement through `api` / `home`, run `r` (which picks the directory). */
async function measureListing(
  side: Side,
  api: Api,
  home: string,
  dirs: number,
  devices: number,
  r: number,
): Promise<L2Run> {
  const dir = `d${String((r * 37 + 1) % dirs).padStart(4, '0')}`;
  // (a) first pages
  let t0 = performance.now();
  const root = await get<ListPage>(api, `/files?dir=&limit=${FIRST_PAGE}`);
  const rootPageMs = performance.now() - t0;
  t0 = performance.now();
  const page = await get<ListPage>(api, `/files?dir=${dir}&limit=${FIRST_PAGE}`);
  const dirPageMs = performance.now() - t0;
  if (root.entries.length !== Math.min(FIRST_PAGE, dirs) || page.entries.length === 0) {
    throw new Error(
      `first pages on ${side}: root ${root.entries.length} of ${root.total}, ${dir} ${page.entries.length} of ${page.total}`,
    );
  }
  // (b) everything: the root, then every directory (breadth first)
  t0 = performance.now();
  let calls = 0;
  let entries = 0;
  let heldByAll = 0;
  for (const queue = ['']; queue.length > 0;) {
    const got = await listAll(api, queue.shift() as string);
    calls += got.calls;
    entries += got.entries.length;
    for (const e of got.entries) {
      if (e.devices.length >= devices) heldByAll++;
      if (e.type === 'directory') queue.push(e.path);
    }
  }
  const everythingMs = performance.now() - t0;
  // (c) the CLI, one process each
  const cliStartMs = timeCli(['--version']).ms;
  const cliRoot = timeCli(['ls', '--json', '--home', home]);
  const cliDir = timeCli(['ls', dir, '--json', '--home', home]);
  const cliAll = timeCli(['ls', '-R', '--json', '--home', home]);
  const allCount = (JSON.parse(cliAll.stdout) as ListPage).entries.length;
  if (allCount !== entries) {
    throw new Error(
      `lockstep ls -R on ${side}: ${allCount} entries, the API walk found ${entries}`,
    );
  }
  const rootCount = (JSON.parse(cliRoot.stdout) as ListPage).entries.length;
  const dirCount = (JSON.parse(cliDir.stdout) as ListPage).entries.length;
  if (rootCount !== root.total || dirCount !== page.total) {
    throw new Error(`lockstep ls on ${side}: ${rootCount} root entries, ${dirCount} in ${dir}`);
  }
  return {
    side,
    rootPageMs,
    dir,
    dirPageMs,
    everythingMs,
    calls,
    entries,
    heldByAll,
    cliRootMs: cliRoot.ms,
    cliDirMs: cliDir.ms,
    cliStartMs,
    cliAllMs: cliAll.ms,
  };
}

async function runL2(opts: LockBenchOptions): Promise<L2Result> {
  const files = opts.files;
  const dirs = Math.max(1, Math.round(files / 100));
  const fileBytes = 1024;
  const say = (line: string) => opts.progress?.(`  L2 ${line}`);
  const secs = (from: number) => (performance.now() - from) / 1000;
  const setupS: { make: number; indexA: number; syncB?: number } = { make: 0, indexA: 0 };
  const runs: L2Run[] = [];
  try {
    await withDevices(opts.dir, 'l2', async (d) => {
      let t = performance.now();
      makeTree(d.folders.A, files, dirs, fileBytes);
      setupS.make = secs(t);
      say(`made ${files} files of ${fileBytes} B in ${dirs} dirs on A: ${fmt(setupS.make, 1)} s`);
      t = performance.now();
      await d.runner.start('A');
      setupS.indexA = secs(t);
      say(`A started and indexed: ${fmt(setupS.indexA, 1)} s`);
      const want = (await get<Status>(d.api.A, '/status')).local.files;
      if (opts.sync) {
        t = performance.now();
        await d.runner.start('B');
        let shown = performance.now();
        await until(
          `B holds A's ${want} entries`,
          async () => {
            const s = await get<Status>(d.api.B, '/status');
            if (performance.now() - shown > 10_000) {
              shown = performance.now();
              say(`  B holds ${s.local.files} of ${want}, ${s.toSync.files} to sync`);
            }
            return s.local.files >= want && s.toSync.files === 0;
          },
          opts.timeoutMs,
          500,
        );
        setupS.syncB = secs(t);
        say(`B started and holds all ${want} entries: ${fmt(setupS.syncB, 1)} s`);
      }
      t = performance.now();
      await untilQuiet(Object.values(d.runner.pids()), 60_000);
      say(`devices idle after ${fmt(secs(t), 1)} s more`);
      const sides: Side[] = opts.sync ? ['B', 'A'] : ['A'];
      for (let r = 0; r < opts.runs; r++) {
        for (const side of sides) {
          let run: L2Run;
          try {
            run = await measureListing(side, d.api[side], d.homes[side], dirs, sides.length, r);
            if (run.entries !== want) {
              run = { ...run, error: `listed ${run.entries} entries, A has ${want}` };
            }
          } catch (err) {
            const error = err instanceof Error ? err.message : String(err);
            run = { ...failedL2(side), error };
          }
          runs.push(run);
          say(
            `run ${r + 1}/${opts.runs} on ${side}: ${run.error ? `FAILED: ${run.error}` : `root page ${fmt(run.rootPageMs, 1)} ms, ${run.dir} page ${fmt(run.dirPageMs, 1)} ms, everything ${fmt(run.everythingMs, 0)} ms (${run.calls} calls, ${run.entries} entries, ${run.heldByAll} on all devices), CLI ls -R ${fmt(run.cliAllMs, 0)} ms, CLI ls root ${fmt(run.cliRootMs, 0)} ms, dir ${fmt(run.cliDirMs, 0)} ms, --version ${fmt(run.cliStartMs, 0)} ms`}`,
          );
        }
      }
    });
  } catch (err) {
    const error = err instanceof Error ? err.message : String(err);
    return { files, dirs, fileBytes, synced: opts.sync, setupS, runs, error };
  }
  return { files, dirs, fileBytes, synced: opts.sync, setupS, runs };
}

function failedL2(side: Side): L2Run {
  const nan = Number.NaN;
  return {
    side,
    rootPageMs: nan,
    dir: '',
    dirPageMs: nan,
    everythingMs: nan,
    calls: 0,
    entries: 0,
    heldByAll: 0,
    cliRootMs: nan,
    cliDirMs: nan,
    cliStartMs: nan,
    cliAllMs: nan,
  };
}

// --- the report

/** Runs the selected lock scenarios. */
export async function benchLocks(opts: LockBenchOptions): Promise<LocksReport> {
  let l1: LocksReport['L1'];
  let l2: LocksReport['L2'];
  for (const id of opts.scenarios) {
    opts.progress?.(`${id}: running ${opts.runs} time(s)`);
    if (id === 'L1') {
      const runs: L1Run[] = [];
      for (let r = 0; r < opts.runs; r++) {
        let run: L1Run;
        try {
          run = await runL1(opts);
        } catch (err) {
          const error = err instanceof Error ? err.message : String(err);
          run = { roundTripMs: [], lockMs: [], unlockMs: [], viaAuthorityMs: [], error };
        }
        runs.push(run);
        const s = run.roundTripMs;
        opts.progress?.(
          `  L1 run ${r + 1}/${opts.runs}: ${run.error ? `FAILED: ${run.error}` : `via ${run.via?.side} (authority ${run.authority?.side}): p50 ${fmt(quantile(s, 0.5), 2)} ms, p90 ${fmt(quantile(s, 0.9), 2)} ms, max ${fmt(Math.max(...s), 2)} ms; via the authority p50 ${fmt(quantile(run.viaAuthorityMs, 0.5), 2)} ms`}`,
        );
      }
      const etcd: L1EtcdRun[] = [];
      for (let r = 0; r < opts.runs; r++) {
        let run: L1EtcdRun;
        try {
          run = await runL1Etcd(opts);
        } catch (err) {
          const error = err instanceof Error ? err.message : String(err);
          run = { roundTripMs: [], lockMs: [], unlockMs: [], readOnlyMs: [], error };
        }
        etcd.push(run);
        const s = run.roundTripMs;
        opts.progress?.(
          `  L1 on etcd run ${r + 1}/${opts.runs}: ${run.error ? `FAILED: ${run.error}` : `p50 ${fmt(quantile(s, 0.5), 2)} ms, p95 ${fmt(quantile(s, 0.95), 2)} ms; read-only elsewhere p50 ${fmt(quantile(run.readOnlyMs, 0.5), 1)} ms`}`,
        );
      }
      l1 = { samples: opts.samples, runs, etcd };
    } else {
      l2 = await runL2(opts);
      if (l2.error !== undefined) opts.progress?.(`  L2 FAILED: ${l2.error}`);
    }
  }
  const method = [
    `Two Lockstep devices (real \`lockstep serve\` processes of bin/lockstep.js) on 127.0.0.1, peered directly (no proxy); the client is this process, Node fetch over HTTP keep-alive, one request at a time.`,
  ];
  if (l1) {
    method.push(
      `L1: f.txt made on A and synced; per run a fresh pair; ${WARMUP} uncounted round trips, then ${opts.samples} of POST /api/v1/locks {path} (201) + DELETE /api/v1/locks/f.txt (200) through the device that is not the lock authority (the smaller device ID); the same through the authority for reference. Percentiles over all runs' samples.`,
      `L1 on etcd: per run a fresh three-member etcd (/usr/bin/etcd, 127.0.0.1, data on this disk) and a fresh pair of devices with "lockAuthority": { "etcd": ... }; the same round trips through B (with etcd every device asks etcd itself).`,
      `L1 read-only: ${READ_ONLY_SAMPLES} times per run, a lock through the device that is not the authority (etcd: B), timed from the request (the grant is before its 201, and the other device may hear of it first: an upper bound) until the file on the other device has no write bit (stat polled every ms); unlocked and writable again between samples.`,
    );
  }
  if (l2) {
    method.push(
      `L2: ${l2.files} files of ${l2.fileBytes} B in ${l2.dirs} directories made on A; ${l2.synced ? 'A started and indexed, then B started and synced until its status holds all of A’s entries with nothing to sync, then both idle (set-up, untimed, once); measured on B (whose view merges A’s remote records with its own) and on A' : 'measured on A alone (BENCH_LOCKS_SYNC=0)'}, ${opts.runs} run(s) each.`,
      `L2 first page: GET /api/v1/files?dir=&limit=${FIRST_PAGE} (the root: ${l2.dirs} directories) and ?dir=dNNNN&limit=${FIRST_PAGE} (100 files; another directory each run).`,
      `L2 everything: \`lockstep ls -R --json --home H\` in one process; and, through the API, one call per directory (root + ${l2.dirs}) with limit ${ALL_PAGE}, paged as \`lockstep ls\` pages, one after another over one keep-alive connection. The CLI is timed separately: \`lockstep ls --json --home H\` (root) and \`lockstep ls dNNNN --json --home H\`, one process each, wall time from spawn to exit; \`lockstep --version\` is the start-up floor.`,
    );
  }
  return {
    tool: 'Lockstep',
    machine: {
      cores: cpus().length,
      memoryGiB: Math.round(totalmem() / GiB),
      node: process.version,
    },
    runs: opts.runs,
    goals: GOAL,
    ...(l1 ? { L1: l1 } : {}),
    ...(l2 ? { L2: l2 } : {}),
    method,
  };
}

/** Median (min–max) of `xs` in ms with `d` decimals. */
function spreadMs(xs: readonly number[], d: number): string {
  const ok = xs.filter(Number.isFinite);
  if (ok.length === 0) return '-';
  const m = `${fmt(median(ok), d)} ms`;
  if (ok.length === 1) return m;
  return `${m} (${fmt(Math.min(...ok), d)}–${fmt(Math.max(...ok), d)})`;
}

/** p50 / p90 / max of `xs` in ms. */
function percentiles(xs: readonly number[]): string {
  if (xs.length === 0) return '-';
  return `p50 ${fmt(quantile(xs, 0.5), 2)} / p90 ${fmt(quantile(xs, 0.9), 2)} / p95 ${fmt(quantile(xs, 0.95), 2)} / max ${fmt(Math.max(...xs), 2)} ms (n=${xs.length})`;
}

/** Whether `value` meets a goal of at most `goal`: a mark for the table. */
const meets = (value: number, goal: number) =>
  Number.isFinite(value) ? (value <= goal ? 'ok' : 'OVER') : '-';

/** The human table of a report: one line per measurement, then the failures and the method. */
export function locksTable(report: LocksReport): string[] {
  const head = ['scenario', 'measured', 'goal', ''];
  const rows: string[][] = [head];
  const notes: string[] = [];
  if (report.L1) {
    const ok = report.L1.runs.filter((r) => r.error === undefined);
    for (const r of report.L1.runs)
      if (r.error !== undefined) notes.push(`L1 run FAILED: ${r.error}`);
    const all = ok.flatMap((r) => r.roundTripMs);
    const first = ok[0];
    const names = first ? ` via ${first.via?.side} → authority ${first.authority?.side}` : '';
    rows.push([
      `L1 lock + unlock${names}`,
      percentiles(all),
      `p50 ≤ ${report.goals.lockP50Ms} ms`,
      meets(quantile(all, 0.5), report.goals.lockP50Ms),
    ]);
    rows.push(['   lock alone', percentiles(ok.flatMap((r) => r.lockMs)), '', '']);
    rows.push(['   unlock alone', percentiles(ok.flatMap((r) => r.unlockMs)), '', '']);
    rows.push([
      '   lock + unlock via the authority (reference)',
      percentiles(ok.flatMap((r) => r.viaAuthorityMs)),
      '',
      '',
    ]);
    const ro = ok.flatMap((r) => r.readOnlyMs ?? []);
    rows.push([
      '   lock asked → read-only on the other device',
      percentiles(ro),
      `p50 ≤ ${report.goals.readOnlyP50Ms} ms`,
      meets(quantile(ro, 0.5), report.goals.readOnlyP50Ms),
    ]);
    const eok = report.L1.etcd.filter((r) => r.error === undefined);
    for (const r of report.L1.etcd)
      if (r.error !== undefined) notes.push(`L1 on etcd run FAILED: ${r.error}`);
    const etcdAll = eok.flatMap((r) => r.roundTripMs);
    rows.push([
      'L1 on etcd: lock + unlock via B (3 members)',
      percentiles(etcdAll),
      `p50 ≤ ${report.goals.etcdLockP50Ms} ms`,
      meets(quantile(etcdAll, 0.5), report.goals.etcdLockP50Ms),
    ]);
    rows.push(['   lock alone', percentiles(eok.flatMap((r) => r.lockMs)), '', '']);
    rows.push(['   unlock alone', percentiles(eok.flatMap((r) => r.unlockMs)), '', '']);
    const ero = eok.flatMap((r) => r.readOnlyMs);
    rows.push([
      '   lock asked → read-only on the other device',
      percentiles(ero),
      `p50 ≤ ${report.goals.readOnlyP50Ms} ms`,
      meets(quantile(ero, 0.5), report.goals.readOnlyP50Ms),
    ]);
  }
  const l2 = report.L2;
  if (l2) {
    if (l2.error !== undefined) notes.push(`L2 FAILED: ${l2.error}`);
    for (const r of l2.runs)
      if (r.error !== undefined) notes.push(`L2 on ${r.side} FAILED: ${r.error}`);
    const setup = `set-up: make ${fmt(l2.setupS.make, 1)} s, A index ${fmt(l2.setupS.indexA, 1)} s${l2.setupS.syncB === undefined ? '' : `, B sync ${fmt(l2.setupS.syncB, 1)} s`}`;
    rows.push([`L2 ${l2.files} files in ${l2.dirs} dirs`, setup, '', '']);
    const sides = [...new Set(l2.runs.map((r) => r.side))];
    for (const side of sides) {
      const ok = l2.runs.filter((r) => r.side === side && r.error === undefined);
      const m = (f: (r: L2Run) => number) => median(ok.map(f));
      const on = `on ${side}`;
      rows.push([
        `   ${on}: first page of the root`,
        spreadMs(
          ok.map((r) => r.rootPageMs),
          1,
        ),
        `≤ ${report.goals.firstPageMs} ms`,
        meets(
          m((r) => r.rootPageMs),
          report.goals.firstPageMs,
        ),
      ]);
      rows.push([
        `   ${on}: first page of a dir of 100 files`,
        spreadMs(
          ok.map((r) => r.dirPageMs),
          1,
        ),
        `≤ ${report.goals.firstPageMs} ms`,
        meets(
          m((r) => r.dirPageMs),
          report.goals.firstPageMs,
        ),
      ]);
      const calls = ok[0]?.calls ?? 0;
      const entries = ok[0]?.entries ?? 0;
      const held = ok[0]?.heldByAll ?? 0;
      rows.push([
        `   ${on}: everything (${calls} API calls, ${entries} entries, ${held} on all devices)`,
        spreadMs(
          ok.map((r) => r.everythingMs),
          0,
        ),
        `≤ ${report.goals.everythingMs} ms`,
        meets(
          m((r) => r.everythingMs),
          report.goals.everythingMs,
        ),
      ]);
      rows.push([
        `   ${on}: lockstep ls -R --json (everything), one process`,
        spreadMs(
          ok.map((r) => r.cliAllMs),
          0,
        ),
        `≤ ${report.goals.everythingMs} ms`,
        meets(
          m((r) => r.cliAllMs),
          report.goals.everythingMs,
        ),
      ]);
      rows.push([
        `   ${on}: lockstep ls --json (root), one process`,
        spreadMs(
          ok.map((r) => r.cliRootMs),
          0,
        ),
        '',
        '',
      ]);
      rows.push([
        `   ${on}: lockstep ls DIR --json (100 files), one process`,
        spreadMs(
          ok.map((r) => r.cliDirMs),
          0,
        ),
        '',
        '',
      ]);
      rows.push([
        `   ${on}: lockstep --version (CLI start-up floor)`,
        spreadMs(
          ok.map((r) => r.cliStartMs),
          0,
        ),
        '',
        '',
      ]);
    }
  }
  const widths = head.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  const lines = [
    `Locks and listing, ${report.tool}, on ${report.machine.cores} cores, ${report.machine.memoryGiB} GiB, Node ${report.machine.node}: ${report.runs} run(s) each, medians (min–max)`,
    ...rows.map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i] as number))
        .join('  ')
        .trimEnd(),
    ),
  ];
  lines.push(...notes);
  lines.push(...report.method.map((m) => `  ${m}`));
  return lines;
}

/** Whether any run of the report failed. */
export function locksFailed(report: LocksReport): boolean {
  return (
    (report.L1?.runs.some((r) => r.error !== undefined) ?? false) ||
    (report.L1?.etcd.some((r) => r.error !== undefined) ?? false) ||
    report.L2?.error !== undefined ||
    (report.L2?.runs.some((r) => r.error !== undefined) ?? false)
  );
}

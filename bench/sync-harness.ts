/**
 * The harness of the peer-sync benchmarks: a fresh pair of folders with a
 * runner and a counting proxy per run, and the ways of telling that B has
 * caught up with A (sizes and mtimes, then contents; or one file's content).
 */
import * as fs from 'node:fs';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { CountingProxy } from './proxy.js';
import { freePort, type ProcWatch, type SyncRunner } from './runner.js';
import type { SyncRun } from './sync-report.js';
import { diffDigests, digestTree, listTree, TreeMatcher, type Tree } from './tree.js';

const GiB = 2 ** 30;

/** The two folders, the runner and the proxy of one run. */
export interface Pair {
  readonly dirA: string;
  readonly dirB: string;
  readonly work: string;
  readonly runner: SyncRunner;
  readonly proxy: CountingProxy;
}

/** Sets up a fresh pair under `dir`, runs `fn`, then stops everything and removes the data. */
export async function withPair<T>(
  where: { readonly dir: string; readonly runner: () => SyncRunner },
  name: string,
  fn: (p: Pair) => Promise<T>,
): Promise<T> {
  const root = fs.mkdtempSync(join(where.dir, `${name}-`));
  const dirA = join(root, 'A');
  const dirB = join(root, 'B');
  const work = join(root, 'work');
  fs.mkdirSync(work);
  const runner = where.runner();
  const listen = { A: await freePort(), B: await freePort() };
  const proxy = await CountingProxy.start([listen.A, listen.B]);
  try {
    await runner.setup(dirA, dirB, {
      work,
      net: { listen, reach: { A: proxy.ports[0] as number, B: proxy.ports[1] as number } },
    });
    return await fn({ dirA, dirB, work, runner, proxy });
  } finally {
    await runner.stop();
    await proxy.close();
    fs.rmSync(root, { recursive: true, force: true });
  }
}

/** Bytes through the proxy since its last reset, by direction (route 0 leads to A, 1 to B). */
export function wireOf(proxy: CountingProxy): SyncRun['wire'] {
  const toA = proxy.route(0);
  const toB = proxy.route(1);
  const aToB = toA.fromTarget + toB.toTarget;
  const bToA = toA.toTarget + toB.fromTarget;
  return { aToB, bToA, total: aToB + bToA };
}

/**
 * The bytes through the proxy once traffic has settled: what follows the
 * match (the receiver announcing its new index records back, say) belongs to
 * the change too. Waits until nothing moved for 300 ms, at most 5 s.
 */
export async function settledWire(proxy: CountingProxy): Promise<SyncRun['wire']> {
  const until = performance.now() + 5000;
  for (let last = proxy.total(); performance.now() < until;) {
    await sleep(300);
    const now = proxy.total();
    if (now === last) break;
    last = now;
  }
  return wireOf(proxy);
}

/** Resolves after `ms` milliseconds. */
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls B every ~20 ms until it holds `expected` (sizes, mtimes, no partial
 * files) and the runner's `synced` has resolved; returns the time of that
 * look. Throws on timeout with what was still missing.
 */
export async function untilMatched(
  p: Pair,
  expected: Tree,
  synced: Promise<void>,
  watch: ProcWatch | undefined,
  timeoutMs: number,
  from: number,
): Promise<number> {
  const matcher = new TreeMatcher(expected, p.runner, p.runner.mtimeToleranceNs);
  let toolDone = false;
  let toolError: unknown;
  synced.then(
    () => (toolDone = true),
    (err: unknown) => (toolError = err ?? new Error('runner failed')),
  );
  for (;;) {
    if (toolError !== undefined) throw toolError;
    const began = performance.now();
    const state = matcher.look(p.dirB);
    const at = performance.now();
    watch?.sample();
    if (state.done && toolDone) {
      // Confirm with a full look: every file re-stated.
      if (matcher.look(p.dirB, true).done) return at;
    }
    if (at - from > timeoutMs) {
      throw new Error(
        `B did not match A within ${(timeoutMs / 1000).toFixed(0)} s: ${state.missing} entries missing or different, ${state.extra} extra, ${state.partial} partial files${toolDone ? '' : `, ${p.runner.name} not done`}`,
      );
    }
    // Every ~20 ms, but never more than a third of a core on looking.
    await sleep(Math.max(20, 2 * (at - began)));
  }
}

/** Checks (untimed) that B's contents equal A's; returns a problem or undefined. */
export function verifyContents(p: Pair, digestsA: ReadonlyMap<string, string>): string | undefined {
  const treeB = listTree(p.dirB, p.runner);
  const diff = diffDigests(digestsA, digestTree(p.dirB, treeB));
  return diff === undefined ? undefined : `contents differ after sync: ${diff}`;
}

/** Fails clearly when `dir`'s file system has less than `bytes` free. */
export function freeSpaceProblem(dir: string, bytes: number): string | undefined {
  const s = fs.statfsSync(dir);
  const free = s.bavail * s.bsize;
  if (free >= bytes) return undefined;
  return `needs ${(bytes / GiB).toFixed(1)} GiB free in ${dir}, has ${(free / GiB).toFixed(1)} GiB; set BENCH_DIR to a larger disk or BENCH_SYNC_SCALE below 1`;
}

/** Starts both sides and waits (untimed) until B holds A's current tree. */
export async function startSynced(p: Pair, timeoutMs: number): Promise<void> {
  const expected = listTree(p.dirA, p.runner);
  await p.runner.start();
  await untilMatched(p, expected, p.runner.waitSynced(), undefined, timeoutMs, performance.now());
  // Let the index exchange that follows a sync settle before measuring.
  await sleep(500);
}

/**
 * Resolves with `performance.now()` when the file at `abs` holds `want`:
 * checked on every change event of its directory and every ~1 ms.
 */
export function whenContent(abs: string, want: Buffer, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let watcher: fs.FSWatcher | undefined;
    const finish = (at?: number) => {
      clearInterval(poll);
      clearTimeout(timer);
      watcher?.close();
      if (at === undefined) reject(new Error(`${abs} did not arrive within ${timeoutMs} ms`));
      else resolve(at);
    };
    const check = () => {
      try {
        if (!fs.existsSync(abs)) return;
        const got = fs.readFileSync(abs);
        if (got.equals(want)) finish(performance.now());
      } catch {
        // replaced while we read: look again
      }
    };
    const poll = setInterval(check, 1);
    const timer = setTimeout(() => finish(), timeoutMs);
    try {
      watcher = fs.watch(dirname(abs), check);
      watcher.on('error', () => undefined);
    } catch {
      // the 1 ms poll alone
    }
    check();
  });
}

import {
  appendFileSync,
  mkdirSync,
  mkdtempSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ChangedPath } from '../core/coalesce.js';
import { isWithin } from '../core/path.js';
import { TreeWatcher, type TreeWatcherOptions } from './tree-watcher.js';

// Lets a test make fs.watch fail (ENOSPC) for chosen directories, or lstat
// report no birth times (as without statx); otherwise the real thing.
const hooks = vi.hoisted(() => ({
  failWatch: undefined as ((path: string) => boolean) | undefined,
  noBirthTimes: false,
}));
vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs')>();
  const watch = ((path: string, ...rest: unknown[]) => {
    // The watcher watches a directory through its descriptor: name it by its path.
    const named = path.startsWith('/proc/self/fd/') ? real.readlinkSync(path) : path;
    if (hooks.failWatch?.(named) === true) {
      throw Object.assign(
        new Error(`ENOSPC: System limit for number of file watchers reached, watch '${path}'`),
        { code: 'ENOSPC' },
      );
    }
    return (real.watch as (...a: unknown[]) => unknown)(path, ...rest);
  }) as typeof real.watch;
  return { ...real, watch, default: { ...real, watch } };
});
vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  const lstat = (async (path: string, opts?: { bigint?: boolean }) => {
    const st = await real.lstat(path, opts);
    if (hooks.noBirthTimes && 'birthtimeNs' in st) st.birthtimeNs = 0n;
    return st;
  }) as typeof real.lstat;
  return { ...real, lstat, default: { ...real, lstat } };
});

/** Polls `cond` until it holds or `ms` pass; the bounded wait every test uses. */
async function waitFor(cond: () => boolean, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('waitFor: condition not met in time');
    await new Promise((r) => setTimeout(r, 2));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Birth times tell a replaced directory from the old one when ext4 reuses the
// inode number; without them a rename event rewatches. Run everything both ways.
describe.each([
  { mode: 'with birth times', noBirthTimes: false },
  { mode: 'without birth times', noBirthTimes: true },
])('TreeWatcher $mode', ({ noBirthTimes }) => {
  let root: string;
  let outside: string;
  let watcher: TreeWatcher | undefined;
  let batches: ChangedPath[][];
  let errors: { message: string; rel: string }[];

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'lockstep-watch-'));
    outside = mkdtempSync(join(tmpdir(), 'lockstep-watch-out-'));
    batches = [];
    errors = [];
    hooks.failWatch = undefined;
    hooks.noBirthTimes = noBirthTimes;
  });
  afterEach(() => {
    watcher?.close();
    watcher = undefined;
    hooks.failWatch = undefined;
    rmSync(root, { recursive: true, force: true });
    rmSync(outside, { recursive: true, force: true });
  });

  async function startWatcher(opts: Partial<TreeWatcherOptions> = {}): Promise<TreeWatcher> {
    watcher = new TreeWatcher({
      root,
      ignored: () => false,
      onBatch: (b) => batches.push(b),
      onError: (err, rel) => errors.push({ message: err.message, rel }),
      ...opts,
    });
    await watcher.start();
    return watcher;
  }

  const p = (rel: string) => join(root, rel);
  const entries = () => batches.flat();
  /** Whether `rel` was reported itself or inside a reported subtree. */
  const covered = (rel: string) =>
    entries().some((e) => e.path === rel || (e.subtree && isWithin(rel, e.path)));
  const reported = (rel: string, subtree?: boolean) =>
    entries().some((e) => e.path === rel && (subtree === undefined || e.subtree === subtree));

  it('reports a file created, modified and deleted', async () => {
    await startWatcher();
    writeFileSync(p('f.txt'), 'one');
    await waitFor(() => reported('f.txt', false));
    batches = [];
    appendFileSync(p('f.txt'), 'two');
    await waitFor(() => reported('f.txt', false));
    batches = [];
    unlinkSync(p('f.txt'));
    await waitFor(() => reported('f.txt', false));
    expect(errors).toEqual([]);
  });

  it('leaves out a file the device itself just put in place, but not a later change', async () => {
    const echoes = new Map<string, bigint>();
    await startWatcher({
      echo: (rel, look) => {
        const ino = echoes.get(rel);
        echoes.delete(rel);
        return ino !== undefined && ino === look()?.ino;
      },
    });
    writeFileSync(p('.tmp-pulled'), 'pulled');
    writeFileSync(p('.tmp-other'), 'other');
    echoes.set('pulled.txt', statSync(p('.tmp-pulled'), { bigint: true }).ino);
    renameSync(p('.tmp-pulled'), p('pulled.txt'));
    renameSync(p('.tmp-other'), p('other.txt'));
    await waitFor(() => reported('other.txt'));
    await new Promise((r) => setTimeout(r, 50));
    expect(reported('pulled.txt')).toBe(false);
    // Someone else's write to it afterwards is reported.
    writeFileSync(p('.tmp-user'), 'the user');
    renameSync(p('.tmp-user'), p('pulled.txt'));
    await waitFor(() => reported('pulled.txt'));
  });

  it("never looks at Lockstep's own temp files, whatever the ignore rules say", async () => {
    await startWatcher(); // ignores nothing
    writeFileSync(p('.lockstep-tmp-a.txt'), 'pulled');
    renameSync(p('.lockstep-tmp-a.txt'), p('a.txt'));
    await waitFor(() => reported('a.txt'));
    await new Promise((r) => setTimeout(r, 50));
    expect(entries().map((e) => e.path)).not.toContain('.lockstep-tmp-a.txt');
  });

  it('watches one directory per directory, not per file', async () => {
    for (const d of ['a', 'a/b', 'a/b/c', 'd', 'e']) mkdirSync(p(d));
    for (let i = 0; i < 20; i++) writeFileSync(p(`a/b/f${i}`), 'x');
    for (let i = 0; i < 10; i++) writeFileSync(p(`f${i}`), 'x');
    const w = await startWatcher();
    expect(w.watchedDirs).toBe(6); // the root and five directories
  });

  it('catches a file written right after mkdir -p', async () => {
    const w = await startWatcher();
    mkdirSync(p('a/b/c'), { recursive: true });
    writeFileSync(p('a/b/c/f.txt'), 'x');
    // 'a' is reported as a subtree once everything below it is watched.
    await waitFor(() => covered('a/b/c/f.txt') && reported('a', true));
    expect(w.watchedDirs).toBe(4);
    // The new directories are really watched: a later write is reported as itself.
    batches = [];
    writeFileSync(p('a/b/c/g.txt'), 'y');
    await waitFor(() => reported('a/b/c/g.txt', false));
  });

  it('follows a renamed directory', async () => {
    mkdirSync(p('old/sub'), { recursive: true });
    writeFileSync(p('old/sub/f.txt'), 'x');
    const w = await startWatcher();
    renameSync(p('old'), p('new'));
    await waitFor(() => reported('new', true) && reported('old', false));
    batches = [];
    writeFileSync(p('new/sub/g.txt'), 'y');
    await waitFor(() => reported('new/sub/g.txt'));
    expect(entries().some((e) => isWithin(e.path, 'old'))).toBe(false);
    expect(w.watchedDirs).toBe(3);
  });

  it('watches a directory moved in from outside the folder', async () => {
    mkdirSync(join(outside, 'm/n'), { recursive: true });
    const w = await startWatcher();
    renameSync(join(outside, 'm'), p('m'));
    await waitFor(() => reported('m', true) && w.watchedDirs === 3);
    writeFileSync(p('m/n/f.txt'), 'x');
    await waitFor(() => reported('m/n/f.txt'));
  });

  it('reports rm -r of a tree and closes its watches', async () => {
    mkdirSync(p('t/u/v'), { recursive: true });
    writeFileSync(p('t/u/v/f.txt'), 'x');
    writeFileSync(p('t/g.txt'), 'x');
    const w = await startWatcher();
    expect(w.watchedDirs).toBe(4);
    rmSync(p('t'), { recursive: true });
    await waitFor(() => reported('t', false) && w.watchedDirs === 1);
  });

  it('handles a directory replaced by one of the same name', async () => {
    mkdirSync(p('r'));
    const w = await startWatcher();
    rmSync(p('r'), { recursive: true });
    mkdirSync(p('r')); // ext4 gives it the old inode number
    await waitFor(() => reported('r', true) && w.watchedDirs === 2);
    batches = [];
    writeFileSync(p('r/f.txt'), 'x');
    await waitFor(() => reported('r/f.txt'));
  });

  it('reports continuous writes more than once (maxDelayMs)', async () => {
    // quietMs longer than the write interval: only maxDelayMs can end a batch while writing.
    await startWatcher({ quietMs: 50, maxDelayMs: 40 });
    const started = Date.now();
    let n = 0;
    while (Date.now() - started < 300) {
      appendFileSync(p('busy.log'), `line ${n++}\n`);
      await sleep(5);
    }
    const duringWrites = batches.length;
    expect(duringWrites).toBeGreaterThan(1);
    expect(batches.every((b) => b.some((e) => e.path === 'busy.log'))).toBe(true);
  });

  it('neither watches nor reports ignored directories', async () => {
    mkdirSync(p('node_modules/pkg'), { recursive: true });
    mkdirSync(p('src'));
    const ignored = (rel: string, isDir: boolean) =>
      isWithin(rel, 'node_modules') || (isDir && rel.endsWith('.cache'));
    const w = await startWatcher({ ignored });
    expect(w.watchedDirs).toBe(2); // root and src
    writeFileSync(p('node_modules/pkg/index.js'), 'x');
    writeFileSync(p('node_modules/x.js'), 'x');
    mkdirSync(p('src/.cache'));
    writeFileSync(p('src/.cache/blob'), 'x');
    writeFileSync(p('src/main.ts'), 'x'); // a sentinel: once it is seen, the rest would have been
    await waitFor(() => reported('src/main.ts'));
    await sleep(20);
    expect(entries().map((e) => e.path)).toEqual(['src/main.ts']);
    expect(w.watchedDirs).toBe(2);
  });

  it('does not follow symlinks to directories', async () => {
    mkdirSync(join(outside, 'target/deep'), { recursive: true });
    symlinkSync(join(outside, 'target'), p('link'));
    const w = await startWatcher();
    expect(w.watchedDirs).toBe(1);
    symlinkSync(join(outside, 'target'), p('link2'));
    await waitFor(() => reported('link2', false));
    writeFileSync(join(outside, 'target/deep/f.txt'), 'x');
    await sleep(20);
    expect(entries().some((e) => e.path.startsWith('link/') || e.path.startsWith('link2/'))).toBe(
      false,
    );
    expect(w.watchedDirs).toBe(1);
  });

  it('reports nothing after close()', async () => {
    const w = await startWatcher();
    writeFileSync(p('f.txt'), 'x');
    w.close(); // with an event in flight
    w.close(); // idempotent
    mkdirSync(p('d'));
    writeFileSync(p('g.txt'), 'x');
    await sleep(50);
    expect(batches).toEqual([]);
    expect(w.watchedDirs).toBe(0);
  });

  it('reports the root disappearing and keeps running', async () => {
    mkdirSync(p('a'));
    const w = await startWatcher();
    rmSync(root, { recursive: true });
    await waitFor(() => reported('', true) && errors.some((e) => e.rel === ''));
    expect(errors.find((e) => e.rel === '')?.message).toMatch(/folder root .* disappeared/);
    expect(w.watchedDirs).toBe(0);
  });

  it('reports an exhausted inotify watch limit and keeps going', async () => {
    mkdirSync(p('x/y'), { recursive: true });
    mkdirSync(p('z'));
    hooks.failWatch = (path) => path.endsWith('/x') || path.endsWith('/x/y');
    const w = await startWatcher();
    expect(w.watchedDirs).toBe(2); // root and z
    expect(errors).toHaveLength(1); // one report for a run of failures
    expect(errors[0]?.rel).toBe('x');
    expect(errors[0]?.message).toMatch(/"x".*fs\.inotify\.max_user_watches.*periodic rescan/);
    writeFileSync(p('z/f.txt'), 'x');
    await waitFor(() => reported('z/f.txt'));
  });

  it('rejects start() when the root is missing', async () => {
    rmSync(root, { recursive: true });
    await expect(startWatcher()).rejects.toThrow(/ENOENT/);
  });
});

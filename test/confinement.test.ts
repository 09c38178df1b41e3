// Confined to the folder (issue 21, findings 1-4), against real devices run
// as root (as in CI): a local user who may write somewhere inside the folder
// swaps a directory for a symlink that leads outside, racing uploads and
// deletes through the API (renameat2 exchanges in a tight loop, by
// test/flipper.py run as `nobody`), or replaces a directory holding a locked
// file by such a symlink while locks are restored, taken and released.
// Nothing outside the folder is ever created, deleted, renamed, chmodded,
// read, indexed or synced, and the devices stay up.
import { spawn, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  constants,
  existsSync,
  lchownSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { apiOf, lockedPaths, type Api } from './api-client.js';
import { TestCluster, converged, sha256, treeOf, type TestDevice } from './cluster.js';
import { indexRow, lockstepAsync, waitFor, waitUntil } from './helpers.js';

/** Uploads, and deletes, sent while the flipper runs. */
const ATTEMPTS = Number(process.env.CONFINE_ATTEMPTS ?? 300);
/** The unprivileged user the flipper runs as when the tests run as root. */
const NOBODY = 65534;
const asRoot = process.getuid?.() === 0;
/** A Python every user can run (a per-user shim, e.g. pyenv's, may not be). */
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const FLIPPER = readFileSync(new URL('./flipper.py', import.meta.url), 'utf8');

/** test/flipper.py, running as an unprivileged user; stopped by its PID. */
class Flipper {
  private out = '';
  private readonly exited: Promise<void>;

  private constructor(private readonly child: ChildProcess) {
    child.stdout?.on('data', (d: Buffer) => (this.out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.out += d.toString()));
    this.exited = new Promise((resolve) => {
      child.once('exit', () => resolve());
      child.once('error', (err) => {
        this.out += `${String(err)}\n`;
        resolve();
      });
    });
  }

  /** Starts exchanging `a` and `b` in `dir` (for at most `seconds`); resolves once it flips. */
  static async start(dir: string, a: string, b: string, seconds: number): Promise<Flipper> {
    const child = spawn(PYTHON, ['-c', FLIPPER, dir, a, b, String(seconds)], {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(asRoot ? { uid: NOBODY, gid: NOBODY } : {}),
    });
    const f = new Flipper(child);
    try {
      await waitUntil('the flipper to start flipping', () => {
        if (f.out.includes('flipping')) return true;
        if (!f.running) throw new Error(`the flipper did not start: ${f.out}`);
        return false;
      });
    } catch (err) {
      await f.stop();
      throw err;
    }
    return f;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Stops it by its PID; resolves with the number of exchanges it made. */
  async stop(): Promise<number> {
    if (this.running) this.child.kill('SIGTERM');
    await this.exited;
    return Number(/flipper: (\d+) exchanges/.exec(this.out)?.[1] ?? 0);
  }
}

/** One API request with a raw body; never throws for a status. */
async function send(api: Api, method: 'PUT' | 'DELETE', path: string, body?: string) {
  const res = await fetch(`${api.url}/api/v1/files/${path}`, {
    method,
    headers: {
      authorization: `Bearer ${api.token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/octet-stream' }),
    },
    ...(body === undefined ? {} : { body }),
  });
  return { status: res.status, text: await res.text() };
}

/** Which of `drop/sub` and `drop/link` is the directory now (the flipper stopped at either). */
function realName(drop: string): string {
  return lstatSync(join(drop, 'sub')).isDirectory() ? 'sub' : 'link';
}

/** How many answers had each status, e.g. `200: 6, 400: 294`. */
function statuses(answers: readonly { status: number }[]): string {
  const n = new Map<number, number>();
  for (const a of answers) n.set(a.status, (n.get(a.status) ?? 0) + 1);
  return [...n]
    .sort(([x], [y]) => x - y)
    .map(([s, c]) => `${s}: ${c}`)
    .join(', ');
}

/** Every index row of `db` (local and remote): path, type (0 file), size, deleted. */
function allRows(db: string): { path: string; type: number; size: number; deleted: number }[] {
  const d = new Database(db, { readonly: true, fileMustExist: true });
  try {
    return d.prepare('SELECT path, type, size, deleted FROM files').all() as {
      path: string;
      type: number;
      size: number;
      deleted: number;
    }[];
  } finally {
    d.close();
  }
}

/** What must stay as it is: a file's name, content, mode, inode, and its (old) access time. */
function snapshot(path: string) {
  const st = lstatSync(path);
  return { isFile: st.isFile(), mode: st.mode & 0o7777, ino: st.ino, atimeMs: st.atimeMs };
}

describe('confined to the folder: a directory swapped for a symlink that leads outside', () => {
  let cluster: TestCluster | undefined;
  let flipper: Flipper | undefined;
  const outside: string[] = [];
  const fds: number[] = [];
  afterEach(async () => {
    await flipper?.stop();
    flipper = undefined;
    for (const fd of fds.splice(0)) closeSync(fd);
    await cluster?.close();
    cluster = undefined;
    for (const dir of outside.splice(0)) await rm(dir, { recursive: true, force: true });
  });

  /** A directory outside every folder, owned by this (root) user, mode 0700: the target. */
  async function target(): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'lockstep-outside-'));
    outside.push(dir);
    chmodSync(dir, 0o700);
    return dir;
  }

  /**
   * One running device whose folder holds `drop/` (0777: the local user
   * writes there) with `drop/sub` (a directory) and `drop/link` (a symlink
   * to `out`), both the local user's, and a user's API token. The real
   * `drop/sub` stays reachable through `sub` (a descriptor's path) whichever
   * name it has at the moment.
   *
   * `drop/` is in `.lockstepignore`, so the device does not watch it: the
   * watcher would otherwise receive each of the flipper's ~100,000 exchanges
   * a second (ignored names too: inotify reports every name of a watched
   * directory), and libuv, which reads inotify until it is drained, would
   * leave the API's connections unread for seconds (a 408 after 10 s in a
   * loaded CI run). The API's writes and deletes do not consult the ignore
   * rules: the race is the same.
   */
  async function dropZone(out: string) {
    cluster = await TestCluster.create(['D']);
    const d = cluster.get('D');
    // The local user reaches the folder (the temp dir holding it is 0700).
    chmodSync(cluster.tmp, 0o755);
    chmodSync(d.folder, 0o755);
    writeFileSync(join(d.folder, '.lockstepignore'), 'drop/\n');
    const drop = join(d.folder, 'drop');
    mkdirSync(drop);
    chmodSync(drop, 0o777);
    mkdirSync(join(drop, 'sub'));
    symlinkSync(out, join(drop, 'link'));
    if (asRoot) {
      for (const name of ['sub', 'link']) lchownSync(join(drop, name), NOBODY, NOBODY);
    }
    const fd = openSync(join(drop, 'sub'), constants.O_RDONLY | constants.O_DIRECTORY);
    fds.push(fd);
    await d.start();
    const add = await lockstepAsync(['user', 'add', 'mallory', '--home', d.home]);
    expect(add.code, add.stderr).toBe(0);
    const api: Api = { url: apiOf(d).url, token: add.stdout.trim().split('\n').at(-1) as string };
    return { d, drop, sub: `/proc/self/fd/${fd}`, api };
  }

  /** The device is up: it answers its API and still indexes a new file. */
  async function stillUp(d: TestDevice): Promise<void> {
    expect(d.running).toBe(true);
    const r = await fetch(`${apiOf(d).url}/api/v1/status`, {
      headers: { authorization: `Bearer ${apiOf(d).token}` },
    });
    expect(r.status).toBe(200);
    writeFileSync(join(d.folder, 'still-up.txt'), 'still up\n');
    await waitFor('still-up.txt indexed', () => indexRow(d.db, 'still-up.txt'), 30_000);
  }

  /** A failed request says why, as the API's JSON error. */
  function clearError(r: { status: number; text: string }, what: string): void {
    expect(r.status, `${what}: ${r.text}`).toBeGreaterThanOrEqual(400);
    expect(r.status, `${what}: ${r.text}`).toBeLessThan(600);
    expect(JSON.parse(r.text), `${what}: ${r.text}`).toMatchObject({
      error: { code: expect.any(String), message: expect.any(String) },
    });
  }

  it(`lets no upload through the API out of the folder while a local user flips a directory and a symlink (${ATTEMPTS} uploads)`, async () => {
    const out = await target();
    const { d, drop, sub, api } = await dropZone(out);
    flipper = await Flipper.start(drop, 'sub', 'link', 60);
    const results: { status: number; text: string }[] = [];
    let unanswered = 0;
    for (let done = 0; done < ATTEMPTS; done += 10) {
      await Promise.all(
        Array.from({ length: Math.min(10, ATTEMPTS - done) }, async (_, i) => {
          const n = done + i;
          try {
            results[n] = await send(api, 'PUT', `drop/sub/x-${n}`, `upload ${n}\n`);
          } catch {
            unanswered++;
          }
        }),
      );
    }
    const flips = await flipper.stop();
    flipper = undefined;
    // Nothing was created outside: no file, no temp file.
    expect(readdirSync(out)).toEqual([]);
    expect(unanswered, 'uploads without any answer').toBe(0);
    let written = 0;
    results.forEach((r, n) => {
      if (r.status === 200) {
        written++;
        // In the real directory, whichever name it has now.
        expect(readFileSync(join(sub, `x-${n}`), 'utf8'), `x-${n}`).toBe(`upload ${n}\n`);
      } else {
        clearError(r, `PUT x-${n}`);
      }
    });
    console.info(
      `PUT race: ${flips} exchanges; ${written} of ${ATTEMPTS} uploads written inside; ${statuses(results)}`,
    );
    expect(flips).toBeGreaterThan(ATTEMPTS);
    // Once the flipping stops, an upload there is written where it should be.
    const put = await send(api, 'PUT', `drop/${realName(drop)}/after`, 'after\n');
    expect(put.status, put.text).toBe(200);
    expect(readFileSync(join(sub, 'after'), 'utf8')).toBe('after\n');
    expect(readdirSync(out)).toEqual([]);
    await stillUp(d);
  }, 90_000);

  it(`deletes nothing outside the folder through the API while a local user flips a directory and a symlink (${ATTEMPTS} deletes)`, async () => {
    const out = await target();
    const names = ['victim-0', 'victim-1', 'victim-2', 'victim-3'];
    for (const name of names)
      writeFileSync(join(out, name), `${name}: root only\n`, { mode: 0o600 });
    const before = names.map((name) => snapshot(join(out, name)));
    const { d, drop, sub, api } = await dropZone(out);
    flipper = await Flipper.start(drop, 'sub', 'link', 60);
    let deleted = 0;
    let unanswered = 0;
    const answers: { status: number }[] = [];
    // One worker per name; each puts its file back inside before every delete.
    await Promise.all(
      names.map(async (name) => {
        for (let i = 0; i < ATTEMPTS / names.length; i++) {
          writeFileSync(join(sub, name), 'inside\n');
          let r: { status: number; text: string };
          try {
            r = await send(api, 'DELETE', `drop/sub/${name}`);
          } catch {
            unanswered++;
            continue;
          }
          answers.push(r);
          if (r.status === 200) {
            deleted++;
            const still = existsSync(join(sub, name));
            expect(still, `${name}: 200, yet the file inside is still there`).toBe(false);
          } else {
            clearError(r, `DELETE ${name}`);
          }
        }
      }),
    );
    const flips = await flipper.stop();
    flipper = undefined;
    // Every outside file is still there, as it was.
    expect(readdirSync(out).sort()).toEqual(names);
    names.forEach((name, i) => {
      expect(snapshot(join(out, name)), name).toEqual(before[i]);
      expect(readFileSync(join(out, name), 'utf8')).toBe(`${name}: root only\n`);
    });
    console.info(
      `DELETE race: ${flips} exchanges; ${deleted} of ${ATTEMPTS} deletes done inside; ${statuses(answers)}`,
    );
    expect(unanswered, 'deletes without any answer').toBe(0);
    expect(flips).toBeGreaterThan(ATTEMPTS);
    // Once the flipping stops, a delete there removes the file inside.
    writeFileSync(join(sub, 'victim-0'), 'inside\n');
    const del = await send(api, 'DELETE', `drop/${realName(drop)}/victim-0`);
    expect(del.status, del.text).toBe(200);
    expect(existsSync(join(sub, 'victim-0'))).toBe(false);
    expect(readFileSync(join(out, 'victim-0'), 'utf8')).toBe('victim-0: root only\n');
    await stillUp(d);
  }, 90_000);

  const HOLDER = 'the holder version\n';
  /** What a root-only file outside holds (a length no other file here has). */
  const SECRET = 'root only, outside every folder\n'.repeat(3);
  const cli = (d: TestDevice, ...args: string[]) => lockstepAsync([...args, '--home', d.home]);
  /** How often `d` has said it could not set the lock's permissions on `path`. */
  const refusedChmods = (d: TestDevice, path: string) =>
    d.messages().filter((m) => m === `cannot set the lock's permissions on ${path}`).length;

  /**
   * Two running devices with `proj/doc.txt` locked by B's administrator (so
   * read-only on A); then, on A, `proj` is replaced by a symlink to a
   * directory outside (root's, 0700) holding a root-owned `doc.txt` of mode
   * `mode` whose access time is older than its change time (so any read
   * would set it: relatime). A notices the locked file gone and tries to
   * restore it. Resolves once A has (and says so) and B has every record A
   * made since.
   */
  async function lockedParentLinked(mode: number) {
    cluster = await TestCluster.create(['A', 'B']);
    const [a, b] = cluster.devices as [TestDevice, TestDevice];
    mkdirSync(join(a.folder, 'proj'));
    writeFileSync(join(a.folder, 'proj', 'doc.txt'), HOLDER);
    await cluster.startAll();
    await cluster.connected([a, b]);
    await converged([a, b], 'proj/doc.txt on both', (t) => t['proj/doc.txt'] !== undefined);
    const out = await target();
    const secret = join(out, 'doc.txt');
    writeFileSync(secret, SECRET);
    chmodSync(secret, mode);
    utimesSync(secret, new Date(Date.now() - 3_600_000), new Date());
    const before = snapshot(secret);
    const lock = await cli(b, 'lock', 'proj/doc.txt');
    expect(lock.code, lock.stderr).toBe(0);
    const onA = join(a.folder, 'proj', 'doc.txt');
    await waitUntil('read-only on A', () => (statSync(onA).mode & 0o222) === 0);
    // In one go, before A's watcher looks: the directory is gone, a link is there.
    rmSync(join(a.folder, 'proj'), { recursive: true });
    symlinkSync(out, join(a.folder, 'proj'));
    await waitUntil('A to try to restore proj/doc.txt', () =>
      a
        .messages()
        .some(
          (m) =>
            m === 'cannot restore locked file proj/doc.txt' ||
            m.startsWith('proj/doc.txt is locked by'),
        ),
    );
    // A sends its records in order: once this one is on B, so is all before it.
    writeFileSync(join(a.folder, 'after-link.txt'), 'after\n');
    await waitUntil('after-link.txt on B', () => existsSync(join(b.folder, 'after-link.txt')));
    return { a, b, out, secret, before };
  }

  /** The outside file is as it was: not renamed, read, chmodded; nothing added beside it. */
  function untouched(out: string, secret: string, before: ReturnType<typeof snapshot>): void {
    expect(readdirSync(out)).toEqual(['doc.txt']);
    expect(snapshot(secret)).toEqual(before);
    expect(readFileSync(secret, 'utf8')).toBe(SECRET);
  }

  /** Nothing of the outside file was indexed or synced, on any device. */
  async function notSpread(devices: readonly TestDevice[]): Promise<void> {
    for (const d of devices) {
      const rows = allRows(d.db).filter((r) => r.type === 0 && r.deleted === 0);
      expect(
        rows.filter((r) => r.size === SECRET.length),
        `${d.name}: rows of the outside file's size`,
      ).toEqual([]);
      const tree = await treeOf(d.folder);
      for (const [p, e] of Object.entries(tree)) {
        expect(e.type === 'file' && e.sha256 === sha256(SECRET), `${d.name}: ${p}`).toBe(false);
        expect(p, `${d.name}: a conflict copy`).not.toMatch(/\.conflict-/);
      }
    }
  }

  it('never restores a locked file through a parent directory replaced by a symlink: the file outside is not renamed, chmodded, read, indexed or synced', async () => {
    const { a, b, out, secret, before } = await lockedParentLinked(0o600);
    untouched(out, secret, before);
    await notSpread([a, b]);
    // The holder's version stays where the lock is.
    expect(readFileSync(join(b.folder, 'proj', 'doc.txt'), 'utf8')).toBe(HOLDER);
    expect(a.running && b.running).toBe(true);
    expect(a.messages()).toContain('cannot restore locked file proj/doc.txt');
  }, 60_000);

  it('never changes the mode of a file outside when a lock is taken and released on a path whose parent is a symlink there', async () => {
    const { a, b, out, secret, before } = await lockedParentLinked(0o660);
    const refusedAtFirst = refusedChmods(a, 'proj/doc.txt');
    for (const [step, locked] of [
      ['unlock', false],
      ['lock', true],
      ['unlock', false],
    ] as const) {
      const r = await cli(b, step, 'proj/doc.txt');
      expect(r.code, `${step}: ${r.stderr}`).toBe(0);
      // A's enforcement runs in the same run of its event loop as the listing changes.
      await waitUntil(
        `A to apply the ${step}`,
        async () => (await lockedPaths(a)).includes('proj/doc.txt') === locked,
      );
      expect(statSync(secret).mode & 0o7777, `after the ${step}`).toBe(0o660);
    }
    // A said each time that it left the path alone.
    await waitUntil(
      'A to refuse each of the three chmods',
      () => refusedChmods(a, 'proj/doc.txt') >= refusedAtFirst + 3,
    );
    untouched(out, secret, before);
    await notSpread([a, b]);
    expect(a.running && b.running).toBe(true);
  }, 60_000);
});

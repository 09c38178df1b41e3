// Fencing tokens end to end: a lock holder paused past its TTL writes under
// its stale grant when it resumes; the write is kept as a conflict copy on
// every device and the new holder's content wins everywhere, while the new
// lock stands and after it has ended.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { apiOf, call, type Api } from './api-client.js';
import { TestCluster, converged, sha256, type Entry, type TestDevice } from './cluster.js';
import { meshThroughProxies, type ProxiedMesh } from './faults.js';
import { lockstepAsync, waitUntil } from './helpers.js';

const ORIGINAL = 'the original\n';
const STALE = 'alice, writing under her expired lock\n';
const BOB = 'bob, writing under his lock\n';

/** A user made on `d`, reached through `d`'s API with that user's token. */
async function userOn(d: TestDevice, name: string): Promise<Api> {
  const add = await lockstepAsync(['user', 'add', name, '--home', d.home]);
  expect(add.code, add.stderr).toBe(0);
  return { url: apiOf(d).url, token: add.stdout.trim().split('\n').at(-1) as string };
}

/** The locks `d` lists: path → owner. */
async function locksOn(d: TestDevice): Promise<Map<string, string>> {
  const r = await call(apiOf(d), 'GET', '/locks');
  const rows = (r.body.locks ?? []) as { path: string; owner: string }[];
  return new Map(rows.map((l) => [l.path, l.owner]));
}

/** Reads `d`'s index database (read-only) while it runs: the tokens no API shows. */
function query<T>(d: TestDevice, sql: string, ...args: unknown[]): T[] {
  const db = new Database(d.db, { readonly: true, fileMustExist: true });
  try {
    return db.prepare(sql).all(...args) as T[];
  } finally {
    db.close();
  }
}

/** The fencing tokens of the locks in `d`'s lock table. */
const lockTokens = (d: TestDevice): number[] =>
  query<{ token: number }>(d, 'SELECT token FROM locks ORDER BY path').map((r) => r.token);

/** The fencing token of `d`'s own record of `path`. */
const recordToken = (d: TestDevice, path: string): number | undefined =>
  query<{ token: number }>(d, 'SELECT token FROM files WHERE device = 1 AND path = ?', path)[0]
    ?.token;

/** The conflict copies of `name` (`f` for `f.txt`) in a tree. */
const copiesOf = (t: Record<string, Entry>, name: string) =>
  Object.keys(t).filter((p) =>
    new RegExp(`^${name}\\.conflict-\\d{8}-\\d{6}-[A-Z2-7]{7}\\.txt$`).test(p),
  );

/**
 * Each of `names` holds bob's content, and its one conflict copy holds the
 * stale write (bob's content is never kept as a copy: it never lost).
 */
function fenced(t: Record<string, Entry>, names: readonly string[]): boolean {
  return names.every((n) => {
    const f = t[`${n}.txt`];
    const copies = copiesOf(t, n);
    const c = t[copies[0] as string];
    return (
      f?.type === 'file' &&
      f.sha256 === sha256(BOB) &&
      copies.length === 1 &&
      c?.type === 'file' &&
      c.sha256 === sha256(STALE)
    );
  });
}

describe('fencing', () => {
  let cluster: TestCluster | undefined;
  let mesh: ProxiedMesh | undefined;
  let paused: TestDevice | undefined;
  afterEach(async () => {
    const pid = paused?.served?.pid;
    if (pid !== undefined) process.kill(pid, 'SIGCONT');
    paused = undefined;
    await cluster?.close();
    await mesh?.close();
    cluster = undefined;
    mesh = undefined;
  });

  it("a holder paused past its TTL writes under its stale lock: the write is a conflict copy everywhere, the new holder's content wins (lock held, and lock ended)", async () => {
    cluster = await TestCluster.create(['A', 'B', 'C'], { mesh: false });
    mesh = await meshThroughProxies(cluster);
    const all = cluster.devices as TestDevice[];
    // The authority is the smallest device ID; alice works on B, bob on C.
    const [authority, b, c] = [...all].sort((x, y) => (x.id < y.id ? -1 : 1)) as [
      TestDevice,
      TestDevice,
      TestDevice,
    ];
    // f stays locked by bob; g is locked by bob, written and unlocked
    // before alice's stale write arrives.
    for (const n of ['f', 'g']) writeFileSync(join(authority.folder, `${n}.txt`), ORIGINAL);
    await cluster.startAll();
    await converged(
      all,
      'f and g everywhere',
      (t) => t['f.txt'] !== undefined && t['g.txt'] !== undefined,
      60_000,
    );
    const alice = await userOn(b, 'alice');
    const bob = await userOn(c, 'bob');

    for (const n of ['f', 'g']) {
      const r = await call(alice, 'POST', '/locks', { path: `${n}.txt`, ttl: 2 });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
    }
    await waitUntil('alice holds f and g on every device', async () => {
      for (const d of all) if ((await locksOn(d)).size !== 2) return false;
      return true;
    });
    const aliceTokens = lockTokens(authority);

    // B stops, and the authority's word cannot reach it (its stream is held
    // in the proxy): B will resume believing it still holds both locks.
    mesh.link(b, authority, 'stall');
    const pid = b.served?.pid as number;
    process.kill(pid, 'SIGSTOP');
    paused = b;

    await waitUntil(
      'the locks to expire',
      async () => (await locksOn(authority)).size === 0 && (await locksOn(c)).size === 0,
      15_000,
    );
    for (const n of ['f', 'g']) {
      const r = await call(bob, 'POST', '/locks', { path: `${n}.txt` });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
    }
    await waitUntil('bob holds f and g on C', async () => {
      const l = await locksOn(c);
      return l.get('f.txt') === 'bob' && l.get('g.txt') === 'bob';
    });
    // Later grants, later tokens.
    const bobTokens = lockTokens(authority);
    expect(Math.min(...bobTokens)).toBeGreaterThan(Math.max(...aliceTokens));
    for (const n of ['f', 'g']) writeFileSync(join(c.folder, `${n}.txt`), BOB);
    await converged([authority, c], "bob's content on A and C", (t) =>
      ['f', 'g'].every((n) => (t[`${n}.txt`] as { sha256?: string }).sha256 === sha256(BOB)),
    );
    // Bob's versions carry his tokens.
    expect([recordToken(c, 'f.txt'), recordToken(c, 'g.txt')]).toEqual(bobTokens);
    expect((await call(bob, 'DELETE', '/locks/g.txt')).status).toBe(200);
    await waitUntil('g unlocked on C', async () => !(await locksOn(c)).has('g.txt'));

    // Alice's write, made while B is stopped: B's scanner records it when B
    // resumes, under the token B's replica still has.
    for (const n of ['f', 'g']) writeFileSync(join(b.folder, `${n}.txt`), STALE);
    process.kill(pid, 'SIGCONT');
    paused = undefined;

    // B and C settle while B still believes it holds the locks.
    await converged([b, c], 'B and C: bob wins, the stale write is a copy', (t) =>
      fenced(t, ['f', 'g']),
    );
    expect((await locksOn(b)).size).toBe(2); // still stale
    // The authority's word reaches B: every device the same.
    mesh.heal();
    const tree = await converged(all, 'all three: bob wins, the stale write is a copy', (t) =>
      fenced(t, ['f', 'g']),
    );
    expect(Object.keys(tree).sort()).toEqual(
      [...copiesOf(tree, 'f'), ...copiesOf(tree, 'g'), 'f.txt', 'g.txt'].sort(),
    );
    for (const d of all) {
      await waitUntil(`bob's lock on f, and none on g, on ${d.name}`, async () => {
        const l = await locksOn(d);
        return l.get('f.txt') === 'bob' && !l.has('g.txt');
      });
      // Every device holds bob's versions, under his tokens.
      expect([recordToken(d, 'f.txt'), recordToken(d, 'g.txt')]).toEqual(bobTokens);
    }
  }, 90_000);
});

// Directory locks end to end: real devices, the real client API and CLI.
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TestCluster, converged, sha256, treeOf, type TestDevice } from './cluster.js';
import { apiOf, call } from './api-client.js';
import { lockstepAsync, waitUntil } from './helpers.js';

const cli = (d: TestDevice, ...args: string[]) => lockstepAsync([...args, '--home', d.home]);
const readOnly = (path: string) => (statSync(path).mode & 0o222) === 0;
const writable = (path: string) => (statSync(path).mode & 0o200) !== 0;
const contentIs = (path: string, text: string) => () => {
  try {
    return readFileSync(path, 'utf8') === text;
  } catch {
    return false;
  }
};
/** Conflict copies of `name` (without extension) in directory `dir` of a tree. */
const copiesOf = (tree: Record<string, unknown>, dir: string, name: string) =>
  Object.keys(tree).filter((p) =>
    new RegExp(`^${dir}/${name}\\.conflict-\\d{8}-\\d{6}-[A-Z2-7]{7}\\.txt$`).test(p),
  );

/** An upload through a device's client API. */
async function upload(d: TestDevice, path: string, text: string) {
  const api = apiOf(d);
  const res = await fetch(`${api.url}/api/v1/files/${path}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${api.token}`, 'content-type': 'application/octet-stream' },
    body: text,
  });
  return { status: res.status, body: (await res.json()) as { error?: { message: string } } };
}

describe('directory locks across devices', () => {
  let cluster: TestCluster | undefined;
  afterEach(async () => {
    await cluster?.close();
    cluster = undefined;
  });

  it('covers every file below, now and later: read-only elsewhere, 423 through the API, changes there kept as conflict copies, one listing', async () => {
    cluster = await TestCluster.create(['A', 'B']);
    const [a, b] = cluster.devices as [TestDevice, TestDevice];
    mkdirSync(join(a.folder, 'proj', 'sub'), { recursive: true });
    mkdirSync(join(a.folder, 'project'));
    writeFileSync(join(a.folder, 'proj', 'a.txt'), 'a, the holder version\n');
    writeFileSync(join(a.folder, 'proj', 'sub', 'b.txt'), 'b, the holder version\n');
    writeFileSync(join(a.folder, 'project', 'c.txt'), 'c, a sibling with a common prefix\n');
    await cluster.startAll();
    await cluster.connected([a, b]);
    await converged([a, b], 'the files on both', (t) => t['proj/sub/b.txt'] !== undefined);

    // The holder works on A and locks the directory.
    const lock = await cli(a, 'lock', 'proj', '--reason', 'release');
    expect(lock.stderr).toBe('');
    expect(lock.stdout).toMatch(/^locked proj\/ \(directory\) for admin/);
    const aOnB = join(b.folder, 'proj', 'a.txt');
    const bOnB = join(b.folder, 'proj', 'sub', 'b.txt');
    await waitUntil('both files below read-only on B', () => readOnly(aOnB) && readOnly(bOnB));
    expect(writable(join(b.folder, 'project', 'c.txt'))).toBe(true);
    expect(writable(join(a.folder, 'proj', 'a.txt'))).toBe(true);

    // Listed once, with its scope; ls shows it on the directory and below.
    for (const d of [a, b]) {
      await waitUntil(`the lock listed on ${d.name}`, async () => {
        const r = await cli(d, 'locks', '--json');
        const { locks } = JSON.parse(r.stdout) as { locks: { path: string; scope: string }[] };
        return locks.length === 1 && locks[0]?.path === 'proj' && locks[0].scope === 'directory';
      });
    }
    const table = (await cli(b, 'locks')).stdout;
    expect(table.match(/proj\/ \(directory\)/g)).toHaveLength(1);
    expect((await cli(b, 'ls')).stdout).toMatch(/ proj\/ .*admin\.[A-Z2-7]{7}@A {2}/);
    expect((await cli(b, 'ls', 'proj')).stdout).toMatch(
      / a\.txt .*admin\.[A-Z2-7]{7}@A \(proj\/\)/,
    );
    const one = JSON.parse((await cli(b, 'ls', 'proj/sub/b.txt', '--json')).stdout) as {
      entries: { lock: { path: string; scope: string } | null }[];
    };
    expect(one.entries[0]?.lock).toMatchObject({ path: 'proj', scope: 'directory' });

    // Through B's API: an upload and a delete below get 423 naming the lock.
    const up = await upload(b, 'proj/new.txt', 'through the API\n');
    expect(up.status).toBe(423);
    expect(up.body.error?.message).toMatch(/^proj\/new\.txt is inside proj\/, which is locked by/);
    const del = await call(apiOf(b), 'DELETE', '/files/proj/sub/b.txt');
    expect(del.status).toBe(423);
    expect(existsSync(join(b.folder, 'proj', 'new.txt'))).toBe(false);
    // A lock on a file below is refused naming the directory lock.
    const inner = await call(apiOf(b), 'POST', '/locks', { path: 'proj/a.txt' });
    expect(inner.status).toBe(423);
    expect((inner.body.error as { message: string }).message).toMatch(
      /^proj\/a\.txt is inside proj\/, locked by admin\.[A-Z2-7]{7}@A since \d{4}-/,
    );
    // The sibling with a common prefix is not covered.
    expect((await call(apiOf(b), 'POST', '/locks', { path: 'project/c.txt' })).status).toBe(201);

    // Root ignores read-only: B changes a file below anyway, and creates one.
    if (process.getuid?.() !== 0) chmodSync(aOnB, 0o644);
    writeFileSync(aOnB, 'an edit on B that must not spread\n');
    writeFileSync(join(b.folder, 'proj', 'new-on-b.txt'), 'a new file on B\n');
    await waitUntil('the holder version back on B', contentIs(aOnB, 'a, the holder version\n'));
    // Both are kept as conflict copies (not under the lock: writable, synced).
    const tree = await converged([a, b], 'the conflict copies on both', (t) => {
      return copiesOf(t, 'proj', 'a').length === 1 && copiesOf(t, 'proj', 'new-on-b').length === 1;
    });
    const [copyA] = copiesOf(tree, 'proj', 'a') as [string];
    const [copyNew] = copiesOf(tree, 'proj', 'new-on-b') as [string];
    expect(tree[copyA]).toMatchObject({ sha256: sha256('an edit on B that must not spread\n') });
    expect(tree[copyNew]).toMatchObject({ sha256: sha256('a new file on B\n') });
    expect(writable(join(b.folder, copyA))).toBe(true);
    // Nothing of it became the winner.
    expect(tree['proj/new-on-b.txt']).toBeUndefined();
    expect(readFileSync(join(a.folder, 'proj', 'a.txt'), 'utf8')).toBe('a, the holder version\n');

    // A file the holder creates later is covered too.
    writeFileSync(join(a.folder, 'proj', 'sub', 'later.txt'), 'later\n');
    const laterOnB = join(b.folder, 'proj', 'sub', 'later.txt');
    await waitUntil(
      'the later file read-only on B',
      () => existsSync(laterOnB) && readOnly(laterOnB),
    );

    // Enforced again when B starts: a mode changed while it was stopped is set back.
    await b.stop();
    chmodSync(bOnB, 0o644);
    await b.start();
    await cluster.connected([a, b]);
    await waitUntil('read-only again after a restart of B', () => readOnly(bOnB));

    // Unlock: writable again on B, the later file too.
    const un = await cli(a, 'unlock', 'proj');
    expect(un.stdout).toMatch(/^unlocked proj\/ \(was locked by admin\.[A-Z2-7]{7}@A/);
    await waitUntil(
      'the files below writable on B',
      () => writable(aOnB) && writable(bOnB) && writable(laterOnB),
    );
    const after = await treeOf(b.folder);
    expect(after['proj/a.txt']).toMatchObject({ sha256: sha256('a, the holder version\n') });
  }, 60_000);
});

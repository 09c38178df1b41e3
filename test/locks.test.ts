// Locks end to end: real devices, the real client API and CLI.
import { randomBytes } from 'node:crypto';
import { chmodSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TestCluster, converged, sha256, treeOf, type TestDevice } from './cluster.js';
import { apiOf, call, type Api } from './api-client.js';
import { lockstepAsync, waitUntil } from './helpers.js';

const cli = (d: TestDevice, ...args: string[]) => lockstepAsync([...args, '--home', d.home]);

describe('locks across devices', () => {
  let cluster: TestCluster | undefined;
  afterEach(async () => {
    await cluster?.close();
    cluster = undefined;
  });

  /** Two peered, running devices with `f.txt` synced; `authority` and `other` by device ID. */
  async function twoDevices() {
    cluster = await TestCluster.create(['A', 'B']);
    const [a, b] = cluster.devices as [TestDevice, TestDevice];
    writeFileSync(join(a.folder, 'f.txt'), 'the holder version\n');
    await cluster.startAll();
    await cluster.connected([a, b]);
    await converged([a, b], (t) => t['f.txt'] !== undefined);
    const [authority, other] = a.id < b.id ? [a, b] : [b, a];
    return { a, b, authority, other };
  }

  it('grants exactly one of 50 concurrent attempts over both devices; the others name the holder', async () => {
    const { a, b } = await twoDevices();
    const apis = [apiOf(a), apiOf(b)];
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        call(apis[i % 2] as Api, 'POST', '/locks', { path: 'f.txt', reason: `try ${i}` }),
      ),
    );
    const won = results.filter((r) => r.status === 201);
    expect(won).toHaveLength(1);
    for (const r of results) {
      if (r.status === 201) continue;
      expect(r.status).toBe(423);
      expect((r.body.error as { message: string }).message).toMatch(
        /f\.txt is already locked by admin\.[A-Z2-7]{7}@[AB] since \d{4}-/,
      );
    }
    // Both devices list the one lock.
    for (const d of [a, b]) {
      await waitUntil('the lock on both devices', async () => {
        const r = await cli(d, 'locks', '--json');
        const { locks } = JSON.parse(r.stdout) as { locks: { path: string }[] };
        return locks.length === 1 && locks[0]?.path === 'f.txt';
      });
    }
  }, 60_000);

  it('makes the file read-only elsewhere, undoes a change made there anyway, and survives restarts', async () => {
    const { a, b, authority, other } = await twoDevices();
    // The holder works on A.
    const lock = await cli(a, 'lock', 'f.txt', '--reason', 'editing');
    expect(lock.code).toBe(0);
    expect(lock.stdout).toMatch(/locked f\.txt for admin/);
    const onB = join(b.folder, 'f.txt');
    await waitUntil('read-only on B', () => (statSync(onB).mode & 0o222) === 0);
    expect(statSync(join(a.folder, 'f.txt')).mode & 0o200).not.toBe(0);
    // Root ignores read-only: B changes it anyway (a non-root user would chmod first).
    if (process.getuid?.() !== 0) chmodSync(onB, 0o644);
    writeFileSync(onB, 'an edit on B that must not spread\n');
    await waitUntil('the holder version back on B', () => {
      try {
        return readFileSync(onB, 'utf8') === 'the holder version\n';
      } catch {
        return false;
      }
    });
    const tree = await treeOf(b.folder);
    const copies = Object.keys(tree).filter((p) =>
      /^f\.conflict-\d{8}-\d{6}-[A-Z2-7]{7}\.txt$/.test(p),
    );
    expect(copies).toHaveLength(1);
    const copy = tree[copies[0] as string];
    expect(copy?.type === 'file' && copy.sha256).toBe(
      sha256('an edit on B that must not spread\n'),
    );
    // The copy is not locked: writable, though the file it came from was read-only.
    expect(statSync(join(b.folder, copies[0] as string)).mode & 0o200).not.toBe(0);
    // Nothing of it reached the holder's file; the copy syncs like any file.
    expect(readFileSync(join(a.folder, 'f.txt'), 'utf8')).toBe('the holder version\n');
    await converged([a, b], (t) => t[copies[0] as string] !== undefined);

    // A delete and a rename of the locked file on B are undone likewise.
    unlinkSync(onB);
    await waitUntil('f.txt back on B after a delete', () => {
      try {
        return readFileSync(onB, 'utf8') === 'the holder version\n';
      } catch {
        return false;
      }
    });
    renameSync(onB, join(b.folder, 'renamed.txt'));
    await waitUntil('f.txt back on B after a rename', () => {
      try {
        return readFileSync(onB, 'utf8') === 'the holder version\n';
      } catch {
        return false;
      }
    });
    expect(readFileSync(join(a.folder, 'f.txt'), 'utf8')).toBe('the holder version\n');

    // Restart the authority, then the other device: the lock is still there.
    for (const d of [authority, other]) {
      await d.stop();
      await d.start();
    }
    await cluster?.connected([a, b]);
    for (const d of [a, b]) {
      const r = await cli(d, 'locks', '--json');
      const { locks } = JSON.parse(r.stdout) as { locks: { path: string }[] };
      expect(locks.map((l) => l.path)).toEqual(['f.txt']);
    }
    // Unlock: writable again on B.
    const un = await cli(a, 'unlock', 'f.txt');
    expect(un.code).toBe(0);
    await waitUntil('writable on B', () => (statSync(onB).mode & 0o200) !== 0);
  }, 90_000);

  it('leaves the file writable everywhere after an unlock that lands while its last edit is being pulled', async () => {
    const { a, b } = await twoDevices();
    expect((await cli(a, 'lock', 'f.txt')).code).toBe(0);
    const onB = join(b.folder, 'f.txt');
    await waitUntil('read-only on B', () => (statSync(onB).mode & 0o222) === 0);
    // The holder's last edit, big enough to be still on its way to B when
    // the unlock gets there.
    const big = randomBytes(96 * 1024 * 1024);
    writeFileSync(join(a.folder, 'f.txt'), big);
    expect((await cli(a, 'unlock', 'f.txt')).code).toBe(0);
    await converged(
      [a, b],
      (t) => t['f.txt']?.type === 'file' && t['f.txt'].sha256 === sha256(big),
    );
    await waitUntil('writable on B after the unlock', () => (statSync(onB).mode & 0o200) !== 0);
  }, 90_000);

  it('fails within 2 s while the authority is stopped; listing and sync between the others go on', async () => {
    cluster = await TestCluster.create(['A', 'B', 'C']);
    const all = cluster.devices as TestDevice[];
    writeFileSync(join((all[0] as TestDevice).folder, 'f.txt'), 'x\n');
    await cluster.startAll();
    await cluster.connected(all);
    await converged(all, (t) => t['f.txt'] !== undefined);
    const sorted = [...all].sort((x, y) => (x.id < y.id ? -1 : 1));
    const [authority, one, two] = sorted as [TestDevice, TestDevice, TestDevice];
    await authority.stop();
    const started = Date.now();
    const r = await cli(one, 'lock', 'f.txt');
    const took = Date.now() - started;
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/lock authority .* cannot be reached/);
    // The 2 s bound is the device's own timeout; the CLI's start-up adds to it.
    expect(took).toBeLessThan(10_000);
    const ls = await cli(one, 'ls', '--json');
    expect(ls.code).toBe(0);
    expect(ls.stdout).toContain('f.txt');
    // Sync between the two others goes on.
    writeFileSync(join(one.folder, 'while-away.txt'), 'synced without the authority\n');
    await converged([one, two], (t) => t['while-away.txt'] !== undefined);
  }, 60_000);

  it('expires a lock after its TTL, and lets an administrator force an unlock', async () => {
    const { a, b } = await twoDevices();
    const t = await cli(b, 'lock', 'f.txt', '--ttl', '1s');
    expect(t.code).toBe(0);
    await waitUntil(
      'the lock to expire',
      async () =>
        (JSON.parse((await cli(a, 'locks', '--json')).stdout) as { locks: unknown[] }).locks
          .length === 0,
      15_000,
    );
    // alice locks through the authority. The other device's administrator is
    // refused, also with --force: a device speaks only for locks held at
    // itself, never for one held at another device (issue 21). The
    // authority's own administrator may force it.
    const { authority, other } =
      a.id < b.id ? { authority: a, other: b } : { authority: b, other: a };
    const add = await cli(authority, 'user', 'add', 'alice');
    expect(add.code).toBe(0);
    const token = add.stdout.trim().split('\n').at(-1) as string;
    const alice = await lockstepAsync([
      'lock',
      'f.txt',
      '--api',
      apiOf(authority).url,
      '--token',
      token,
    ]);
    expect(alice.code).toBe(0);
    const refused = await cli(other, 'unlock', 'f.txt');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/locked by alice/);
    const fromOther = await cli(other, 'unlock', 'f.txt', '--force');
    expect(fromOther.code).toBe(1);
    expect(fromOther.stderr).toMatch(/cannot unlock a lock held at another device/);
    const forced = await cli(authority, 'unlock', 'f.txt', '--force');
    expect(forced.code).toBe(0);
    const locks = await cli(a, 'locks', '--json');
    expect(JSON.parse(locks.stdout)).toEqual({ locks: [] });
  }, 60_000);

  it('answers 423 to writes and deletes through the API by anyone but the holder at its device', async () => {
    const { a, b } = await twoDevices();
    // One user of the cluster: made on A, her token works on B too.
    const added = await cli(a, 'user', 'add', 'alice');
    expect(added.code, added.stderr).toBe(0);
    const token = added.stdout.trim().split('\n').at(-1) as string;
    const aliceA: Api = { url: apiOf(a).url, token };
    const aliceB: Api = { url: apiOf(b).url, token };
    await waitUntil(
      'alice known on B',
      async () => (await call(aliceB, 'GET', '/whoami')).status === 200,
    );
    const put = (api: Api, path: string, text: string) =>
      fetch(`${api.url}/api/v1/files/${path}`, {
        method: 'PUT',
        headers: {
          authorization: `Bearer ${api.token}`,
          'content-type': 'application/octet-stream',
        },
        body: text,
      }).then(async (r) => ({
        status: r.status,
        body: (await r.json()) as Record<string, unknown>,
      }));
    expect((await call(aliceA, 'POST', '/locks', { path: 'f.txt' })).status).toBe(201);

    const byAdmin = await put(apiOf(a), 'f.txt', 'not yours\n');
    expect(byAdmin.status).toBe(423);
    expect((byAdmin.body.error as { message: string }).message).toMatch(/locked by alice@A/);
    expect((await call(apiOf(b), 'DELETE', '/files/f.txt')).status).toBe(423);
    const elsewhere = await put(aliceB, 'f.txt', 'through the wrong device\n');
    expect(elsewhere.status).toBe(423);
    expect((elsewhere.body.error as { message: string }).message).toMatch(/through that device/);
    expect(readFileSync(join(a.folder, 'f.txt'), 'utf8')).toBe('the holder version\n');

    // The holder, through the lock's device: written, and synced to B.
    const ok = await put(aliceA, 'f.txt', 'the next holder version\n');
    expect(ok.status).toBe(200);
    await waitUntil('the new version on B', () => {
      try {
        return readFileSync(join(b.folder, 'f.txt'), 'utf8') === 'the next holder version\n';
      } catch {
        return false;
      }
    });
    // An unlocked path: anyone may write and delete it.
    expect((await put(apiOf(b), 'new/x.txt', 'x\n')).status).toBe(200);
    await waitUntil('new/x.txt on A', () => {
      try {
        return readFileSync(join(a.folder, 'new', 'x.txt'), 'utf8') === 'x\n';
      } catch {
        return false;
      }
    });
    expect((await call(apiOf(a), 'DELETE', '/files/new/x.txt')).status).toBe(200);
    expect((await put(apiOf(a), '..%2Fescape.txt', 'x')).status).toBe(400);
    // Two uploads of one path at once: one of them wins whole, never a mix.
    const one = 'a'.repeat(4 << 20);
    const two = 'b'.repeat(4 << 20);
    const [r1, r2] = await Promise.all([
      put(apiOf(a), 'race.bin', one),
      put(apiOf(a), 'race.bin', two),
    ]);
    expect([r1.status, r2.status]).toEqual([200, 200]);
    const got = readFileSync(join(a.folder, 'race.bin'), 'utf8');
    expect(got === one || got === two).toBe(true);
    expect((await treeOf(a.folder))['race.bin']).toBeDefined();
    expect(Object.keys(await treeOf(a.folder)).filter((p) => p.includes('.lockstep-tmp-'))).toEqual(
      [],
    );
  }, 60_000);
});

// Partitions: every peer connection runs through a proxy that cuts, stalls or
// delays it. Devices go on locally and converge when the network heals; lock
// and unlock fail clearly while the authority is out of reach; a device with
// a stale lock table cannot change a locked file on the holder's device.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { apiOf, call, lockedPaths } from './api-client.js';
import { TestCluster, converged, sha256, tempFiles, type TestDevice } from './cluster.js';
import { meshThroughProxies, type ProxiedMesh } from './faults.js';
import { waitUntil } from './helpers.js';

const read = (d: TestDevice, p: string): string | undefined => {
  try {
    return readFileSync(join(d.folder, p), 'utf8');
  } catch {
    return undefined;
  }
};

/** Waits until `d` has logged losing its connection to `other`. */
const lostTo = (d: TestDevice, other: TestDevice) =>
  waitUntil(
    `${d.name} to lose ${other.name}`,
    () => d.output().includes(`connection to peer ${other.name} (${other.short}) lost`),
    30_000,
  );

describe('partitions', () => {
  let cluster: TestCluster | undefined;
  let mesh: ProxiedMesh | undefined;
  afterEach(async () => {
    await cluster?.close();
    await mesh?.close();
    cluster = undefined;
    mesh = undefined;
  });

  /** Three devices, every connection through a proxy; `f.txt` synced. */
  async function three() {
    cluster = await TestCluster.create(['A', 'B', 'C'], { mesh: false });
    mesh = await meshThroughProxies(cluster);
    const all = cluster.devices as [TestDevice, TestDevice, TestDevice];
    writeFileSync(join(all[0].folder, 'f.txt'), 'the holder version\n');
    await cluster.startAll();
    await converged(all, 'f.txt everywhere', (t) => t['f.txt'] !== undefined, 60_000);
    const [authority, holder, other] = [...all].sort((x, y) => (x.id < y.id ? -1 : 1)) as [
      TestDevice,
      TestDevice,
      TestDevice,
    ];
    return { all, authority, holder, other, mesh };
  }

  it('a device cut off from the authority, with a stale lock table, cannot change the locked file on the holder: its edit is kept as a conflict copy', async () => {
    const { all, authority, holder, other, mesh } = await three();
    // `other` loses the authority, but still reaches the holder's device.
    mesh.link(other, authority, 'cut');
    await lostTo(other, authority);
    const lock = await call(apiOf(holder), 'POST', '/locks', { path: 'f.txt' });
    expect(lock.status, JSON.stringify(lock.body)).toBe(201);
    expect(await lockedPaths(other)).toEqual([]); // stale

    // Watch the holder's file the whole time: it must never show the edit.
    const shown = new Set<string>();
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const t = read(holder, 'f.txt');
        if (t !== undefined) shown.add(t);
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    const edit = 'an edit made without knowing of the lock\n';
    writeFileSync(join(other.folder, 'f.txt'), edit);
    const isCopy = (p: string) => /^f\.conflict-\d{8}-\d{6}-[A-Z2-7]{7}\.txt$/.test(p);
    try {
      // The holder keeps its version; the edit comes back to `other` as a copy.
      await converged(
        [holder, other],
        'the holder version and the copy on both',
        (t) => {
          const f = t['f.txt'];
          const copies = Object.keys(t).filter(isCopy);
          const c = t[copies[0] as string];
          return (
            f?.type === 'file' &&
            f.sha256 === sha256('the holder version\n') &&
            copies.length === 1 &&
            c?.type === 'file' &&
            c.sha256 === sha256(edit)
          );
        },
        60_000,
      );
    } finally {
      watching = false;
      await watcher;
    }
    expect([...shown]).toEqual(['the holder version\n']);
    expect(holder.messages().some((m) => /f\.txt is locked by a user at/.test(m))).toBe(true);

    // Healed: everyone holds the same, the lock still stands.
    mesh.heal();
    const tree = await converged(
      all,
      'all three after the heal',
      (t) => Object.keys(t).filter(isCopy).length === 1,
      60_000,
    );
    expect((tree['f.txt'] as { sha256: string }).sha256).toBe(sha256('the holder version\n'));
    for (const d of all) {
      await waitUntil(`the lock on ${d.name}`, async () =>
        (await lockedPaths(d)).includes('f.txt'),
      );
      expect(await tempFiles(d.folder)).toEqual([]);
    }
  }, 180_000);

  it('cut, stalled and delayed links: lock and unlock fail clearly without the authority, devices go on locally and converge after the heal', async () => {
    const { all, authority, holder, other, mesh } = await three();
    const lock = await call(apiOf(holder), 'POST', '/locks', { path: 'f.txt' });
    expect(lock.status).toBe(201);
    await waitUntil('the lock on every device', async () => {
      for (const d of all) if (!(await lockedPaths(d)).includes('f.txt')) return false;
      return true;
    });

    // Stalled: the connection stays up but nothing passes; requests time out.
    mesh.isolate(authority, all, 'stall');
    const stalledUnlock = await call(apiOf(holder), 'DELETE', '/locks/f.txt');
    expect(stalledUnlock.status).toBe(503);
    expect(stalledUnlock.body.error).toMatchObject({ code: 'AUTHORITY_UNREACHABLE' });
    expect((stalledUnlock.body.error as { message: string }).message).toMatch(
      /lock authority .* cannot be reached/,
    );

    // Cut: refused at once, by code and message.
    mesh.isolate(authority, all, 'cut');
    await lostTo(holder, authority);
    await lostTo(other, authority);
    writeFileSync(join(holder.folder, 'g.txt'), 'g\n');
    await waitUntil('g.txt on the other device', () => read(other, 'g.txt') === 'g\n', 30_000);
    const cutLock = await call(apiOf(other), 'POST', '/locks', { path: 'g.txt' });
    expect(cutLock.status).toBe(503);
    expect(cutLock.body.error).toMatchObject({ code: 'AUTHORITY_UNREACHABLE' });
    const cutUnlock = await call(apiOf(holder), 'DELETE', '/locks/f.txt');
    expect(cutUnlock.status).toBe(503);
    // The authority itself still answers for its own table.
    expect(await lockedPaths(authority)).toEqual(['f.txt']);

    // Each side works locally meanwhile.
    for (const d of all) writeFileSync(join(d.folder, `while-cut-${d.name}.txt`), `${d.name}\n`);
    writeFileSync(join(authority.folder, 'both.txt'), 'authority side\n');
    await new Promise((r) => setTimeout(r, 200));
    writeFileSync(join(other.folder, 'both.txt'), 'other side, later\n');
    await converged([holder, other], 'the two connected devices', (t) =>
      Boolean(t[`while-cut-${holder.name}.txt`] && t[`while-cut-${other.name}.txt`]),
    );

    // Delayed links: slow, but they get there.
    mesh.heal();
    for (const p of mesh.proxies.values()) p.set('pass', 30);
    const tree = await converged(
      all,
      'all three after the heal (links delayed 30 ms)',
      (t) =>
        all.every((d) => t[`while-cut-${d.name}.txt`] !== undefined) &&
        Object.keys(t).some((p) => p.startsWith('both.conflict-')),
      120_000,
    );
    // The concurrent edits of both.txt: one wins, the other is kept.
    const both = Object.keys(tree).filter((p) => p.startsWith('both'));
    const hashes = both.map((p) => (tree[p] as { sha256: string }).sha256).sort();
    expect(hashes).toEqual([sha256('authority side\n'), sha256('other side, later\n')].sort());
    mesh.heal();
    // Locking works again once the authority is back.
    const unlock = await call(apiOf(holder), 'DELETE', '/locks/f.txt');
    expect(unlock.status).toBe(200);
    for (const d of all) expect(await tempFiles(d.folder)).toEqual([]);
  }, 240_000);
});

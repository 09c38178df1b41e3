// The lock authority never moves by accident: recorded when the cluster is
// made, kept when a device joins (even one whose ID sorts lowest), moved only
// by `lockstep locks move-authority`, which hands every lock over. Real
// devices, the real CLI.
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TestCluster, converged, type TestDevice } from './cluster.js';
import { lockstepAsync, waitUntil } from './helpers.js';

const cli = (d: TestDevice, ...args: string[]) => lockstepAsync([...args, '--home', d.home]);

/** The paths `d` lists as locked. */
async function lockedOn(d: TestDevice): Promise<string[]> {
  const r = await cli(d, 'locks', '--json');
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { locks: { path: string }[] }).locks.map((l) => l.path).sort();
}

/** What `d`'s configuration records as lock authority (undefined: not decided). */
function recorded(d: TestDevice): unknown {
  const config = JSON.parse(readFileSync(join(d.home, 'config.json'), 'utf8')) as {
    lockAuthority?: unknown;
  };
  return config.lockAuthority;
}

/** The lock authority `d` reports in `status --json`. */
async function authorityOf(d: TestDevice): Promise<string | null> {
  const r = await cli(d, 'status', '--json');
  expect(r.code, r.stderr).toBe(0);
  return (
    (JSON.parse(r.stdout) as { lockAuthority: { id: string } | null }).lockAuthority?.id ?? null
  );
}

const readOnly = (d: TestDevice, path: string) =>
  (statSync(join(d.folder, path)).mode & 0o222) === 0;

describe('the lock authority', () => {
  let cluster: TestCluster | undefined;
  afterEach(async () => {
    await cluster?.close();
    cluster = undefined;
  });

  it('stays where it is when a device whose ID sorts lowest joins a cluster holding locks, and moves only on purpose, with every lock', async () => {
    cluster = await TestCluster.create(['A', 'B', 'C', 'D'], { mesh: false });
    // The device that joins is the one whose ID sorts lowest: the old rule
    // (the smallest ID) would have made it the authority, with an empty table.
    const sorted = [...cluster.devices].sort((x, y) => (x.id < y.id ? -1 : 1));
    const joiner = sorted[0] as TestDevice;
    const members = sorted.slice(1);
    for (const x of members) {
      for (const y of members) if (x !== y) await x.addPeer(y);
    }
    const [x, y, z] = members as [TestDevice, TestDevice, TestDevice];
    writeFileSync(join(x.folder, 'plan.txt'), 'the plan\n');
    writeFileSync(join(y.folder, 'notes.txt'), 'notes\n');
    await Promise.all(members.map((d) => d.start()));
    await cluster.connected(members);
    await converged(members, (t) => t['plan.txt'] !== undefined && t['notes.txt'] !== undefined);
    // Made undecided, they record nothing until the first lock: its grant
    // (by the smallest ID among them) records the authority everywhere.
    for (const d of members) expect(recorded(d)).toBeUndefined();
    expect((await cli(x, 'lock', 'plan.txt')).code).toBe(0);
    expect((await cli(y, 'lock', 'notes.txt')).code).toBe(0);
    const authority = x.id;
    await waitUntil('the three to record one authority', () =>
      members.every((d) => recorded(d) === authority),
    );
    const both = ['notes.txt', 'plan.txt'];
    await waitUntil('both locks on every member', async () => {
      for (const d of members) if ((await lockedOn(d)).join() !== both.join()) return false;
      return readOnly(y, 'plan.txt') && readOnly(x, 'notes.txt');
    });
    expect(recorded(joiner)).toBeUndefined();

    // D joins: peered both ways while everything runs, then started.
    for (const d of members) {
      await d.addPeer(joiner);
      await joiner.addPeer(d);
    }
    await joiner.start();
    // Kept and enforced throughout: sampled while D connects and after.
    const deadline = Date.now() + 3000;
    let connected = false;
    while (!connected || Date.now() < deadline) {
      for (const d of members) expect(await lockedOn(d), `locks on ${d.name}`).toEqual(both);
      expect(readOnly(y, 'plan.txt') && readOnly(z, 'plan.txt')).toBe(true);
      connected ||= await cluster.connected([joiner, ...members], 200).then(
        () => true,
        () => false,
      );
    }
    await waitUntil('D to adopt the authority and see both locks', async () =>
      recorded(joiner) === authority ? (await lockedOn(joiner)).join() === both.join() : false,
    );
    await waitUntil('plan.txt read-only on D', () => readOnly(joiner, 'plan.txt'));
    for (const d of [joiner, ...members]) expect(await authorityOf(d)).toBe(authority);
    // No disagreement: locking works through the new device, at once.
    writeFileSync(join(z.folder, 'd.txt'), 'for D\n');
    await converged([joiner, ...members], (t) => t['d.txt'] !== undefined);
    const viaD = await cli(joiner, 'lock', 'd.txt');
    expect(viaD.code, viaD.stderr).toBe(0);
    const all = ['d.txt', ...both];

    // Moved on purpose, asked through a device that is neither end.
    const moved = await cli(z, 'locks', 'move-authority', joiner.name, '--json');
    expect(moved.code, moved.stderr).toBe(0);
    expect(JSON.parse(moved.stdout)).toMatchObject({
      from: { id: authority },
      to: { id: joiner.id },
      locks: 3,
    });
    await waitUntil('every device to record the move', () =>
      [joiner, ...members].every((d) => {
        const r = recorded(d) as { device?: string; epoch?: number } | undefined;
        return r?.device === joiner.id && r.epoch === 1;
      }),
    );
    for (const d of [joiner, ...members]) {
      expect(await lockedOn(d), `locks on ${d.name} after the move`).toEqual(all);
      expect(await authorityOf(d)).toBe(joiner.id);
    }
    expect(readOnly(y, 'plan.txt') && readOnly(joiner, 'plan.txt')).toBe(true);
    // The new authority grants and releases; the old one forwards to it.
    expect((await cli(x, 'unlock', 'plan.txt')).code).toBe(0);
    await waitUntil('plan.txt writable on D', () => !readOnly(joiner, 'plan.txt'));
    const again = await cli(y, 'lock', 'plan.txt');
    expect(again.code, again.stderr).toBe(0);
    const taken = await cli(x, 'lock', 'plan.txt');
    expect(taken.code).toBe(1);
    expect(taken.stderr).toMatch(/plan\.txt is already locked by admin\.[A-Z2-7]{7}@/);
    // The move was announced in each device's log.
    await waitUntil('every device to log the move', () =>
      [joiner, ...members].every((d) =>
        d.allMessages().some((m) => /^lock authority: .*on purpose/.test(m)),
      ),
    );
  }, 120_000);

  it('refuses to lock while devices disagree, naming both choices, and clears it as soon as the configurations agree, without a restart', async () => {
    cluster = await TestCluster.create(['A', 'B']);
    const [a, b] = cluster.devices as [TestDevice, TestDevice];
    writeFileSync(join(a.folder, 'f.txt'), 'x\n');
    // Each device is told it is the authority itself.
    for (const d of [a, b]) {
      const file = join(d.home, 'config.json');
      const config = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
      writeFileSync(file, JSON.stringify({ ...config, lockAuthority: d.id }, null, 2));
    }
    await cluster.startAll();
    await cluster.connected([a, b]);
    await converged([a, b], (t) => t['f.txt'] !== undefined);
    await waitUntil('the disagreement to be known', async () => {
      const r = await cli(b, 'lock', 'f.txt');
      return r.code === 1 && /disagree on the lock authority/.test(r.stderr);
    });
    // Refused on both sides, naming both choices; nothing granted.
    const r = await cli(a, 'lock', 'f.txt');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/this device uses A, B uses B/);
    expect(await lockedOn(a)).toEqual([]);
    // B's administrator makes B agree with A: no restart.
    const file = join(b.home, 'config.json');
    const config = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    writeFileSync(file, JSON.stringify({ ...config, lockAuthority: a.id }, null, 2));
    await waitUntil('locking through B to work', async () => {
      const r = await cli(b, 'lock', 'f.txt');
      return r.code === 0;
    });
    expect(await lockedOn(a)).toEqual(['f.txt']);
    expect(a.running && b.running).toBe(true);
  }, 60_000);

  it('records the authority a configuration made before this change implied, on upgrade', async () => {
    cluster = await TestCluster.create(['A', 'B']);
    const [a, b] = cluster.devices as [TestDevice, TestDevice];
    const file = join(a.home, 'config.json');
    const config = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    delete config.lockAuthority;
    writeFileSync(file, JSON.stringify({ ...config, version: 1 }, null, 2));
    await a.start();
    const upgraded = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    expect(upgraded.version).toBe(2);
    expect(upgraded.lockAuthority).toBe(a.id < b.id ? a.id : b.id);
  }, 60_000);

  it('records itself when a device alone takes the first lock, and refuses while it has peers it never met', async () => {
    cluster = await TestCluster.create(['A', 'B', 'C'], { mesh: false });
    const [a, b, c] = cluster.devices as [TestDevice, TestDevice, TestDevice];
    await b.addPeer(c); // C is never started: B never meets it
    for (const d of [a, b]) writeFileSync(join(d.folder, 'f.txt'), 'x\n');
    await Promise.all([a.start(), b.start()]);
    for (const d of [a, b]) expect(recorded(d)).toBeUndefined();
    await waitUntil('f.txt indexed on A and B', async () => {
      for (const d of [a, b])
        if (!(await cli(d, 'ls', '--json')).stdout.includes('f.txt')) return false;
      return true;
    });
    const alone = await cli(a, 'lock', 'f.txt');
    expect(alone.code, alone.stderr).toBe(0);
    expect(recorded(a)).toBe(a.id);
    const refused = await cli(b, 'lock', 'f.txt');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(
      /lock authority is not known yet.*has not met any of its peers \(C\)/,
    );
    expect(recorded(b)).toBeUndefined();
  }, 60_000);
});

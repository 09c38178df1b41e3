// Locks on etcd end to end: real `lockstep serve` devices whose lock table is
// a real three-member etcd (test/etcd.ts), members killed and started again.
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig, saveConfig, type LockAuthoritySetting } from '../src/config/config.js';
import { TestCluster, converged, type TestDevice } from './cluster.js';
import { etcdCleanup, startEtcd } from './etcd.js';
import { apiOf, call } from './api-client.js';
import { lockstepAsync, waitUntil } from './helpers.js';

const cli = (d: TestDevice, ...args: string[]) => lockstepAsync([...args, '--home', d.home]);

/** The paths `d` lists as locked. */
async function locked(d: TestDevice): Promise<string[]> {
  const r = await cli(d, 'locks', '--json');
  if (r.code !== 0) throw new Error(`lockstep locks failed on ${d.name}: ${r.stderr}`);
  return (JSON.parse(r.stdout) as { locks: { path: string }[] }).locks.map((l) => l.path).sort();
}

const readOnly = (d: TestDevice, p: string) => (statSync(join(d.folder, p)).mode & 0o222) === 0;

function setAuthority(d: TestDevice, lockAuthority: LockAuthoritySetting): void {
  saveConfig(d.home, { ...loadConfig(d.home), lockAuthority });
}

etcdCleanup('each');

describe('locks on etcd, across devices', () => {
  let cluster: TestCluster | undefined;
  afterEach(async () => {
    await cluster?.close();
    cluster = undefined;
  });

  it('goes on with one member down; without a quorum fails within 2 s while ls and sync go on; resumes when members are back; a lock outlives the device it was taken through', async () => {
    const etcd = await startEtcd();
    cluster = await TestCluster.create(['A', 'B', 'C']);
    const [a, b, c] = cluster.devices as [TestDevice, TestDevice, TestDevice];
    const setting = { kind: 'etcd', endpoints: etcd.endpoints, prefix: '/lockstep/e2e/' } as const;
    for (const d of cluster.devices) setAuthority(d, setting);
    writeFileSync(join(a.folder, 'f.txt'), 'the holder version\n');
    writeFileSync(join(a.folder, 'g.txt'), 'another file\n');
    await cluster.startAll();
    await converged([a, b, c], (t) => t['f.txt'] !== undefined && t['g.txt'] !== undefined);

    const status = await cli(b, 'status');
    expect(status.stdout).toMatch(/^Locks +in etcd \(prefix \/lockstep\/e2e\/\)$/m);
    // A lock taken through A: listed and read-only on B and C.
    const lock = await cli(a, 'lock', 'f.txt', '--reason', 'editing');
    expect(lock.code, lock.stderr).toBe(0);
    for (const d of [b, c]) {
      await waitUntil(`the lock listed on ${d.name}`, async () =>
        (await locked(d)).includes('f.txt'),
      );
      await waitUntil(`f.txt read-only on ${d.name}`, () => readOnly(d, 'f.txt'));
    }
    const refused = await cli(b, 'lock', 'f.txt');
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/f\.txt is already locked by admin\.\w{7}@A since/);

    // One member killed: locking and unlocking go on, through any device.
    await etcd.stopMember(2);
    // If it was the leader, writes pause until the other two elect one (etcd's
    // election timeout, 500 ms here); then locking goes on.
    await etcd.healthy([0, 1]);
    const g = await cli(b, 'lock', 'g.txt');
    expect(g.code, g.stderr).toBe(0);
    await waitUntil('g.txt locked on C', async () => (await locked(c)).includes('g.txt'));
    const ug = await cli(b, 'unlock', 'g.txt');
    expect(ug.code, ug.stderr).toBe(0);

    // Two killed: no quorum. Lock and unlock fail in time, saying why.
    await etcd.stopMember(1);
    const asks = [
      [c, 'POST', '/locks', { path: 'g.txt' }],
      [a, 'DELETE', '/locks/f.txt', undefined],
    ] as const;
    for (const [d, method, path, body] of asks) {
      const t0 = Date.now();
      const r = await call(apiOf(d), method, path, body);
      const ms = Date.now() - t0;
      console.log(`${method} ${path} on ${d.name} without an etcd quorum failed after ${ms} ms`);
      expect(r.status).toBe(503);
      expect(ms).toBeLessThan(5000);
    }
    for (const [d, args] of [
      [c, ['lock', 'g.txt']],
      [a, ['unlock', 'f.txt']],
    ] as const) {
      const r = await cli(d, ...args);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(
        /etcd has no quorum or cannot be reached at http:\/\/127\.0\.0\.1:\d+/,
      );
      expect(r.stderr).toMatch(/listing and sync go on/);
    }
    // Listing and sync go on.
    const ls = await cli(c, 'ls');
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout).toContain('f.txt');
    expect(await locked(c)).toEqual(['f.txt']);
    writeFileSync(join(b.folder, 'new.txt'), 'written without a quorum\n');
    await converged([a, b, c], (t) => t['new.txt'] !== undefined);

    // Members back: locking resumes, no device restarted.
    etcd.startMember(1);
    etcd.startMember(2);
    await etcd.healthy([0, 1, 2]);
    // (What was asked without a quorum may still have been committed once
    // etcd was back: f.txt and g.txt are left out from here on.)
    await waitUntil(
      'locking resumes through A',
      async () => (await cli(a, 'lock', 'new.txt', '--reason', 'taken through A')).code === 0,
      20_000,
    );
    for (const d of [b, c]) {
      await waitUntil(`new.txt read-only on ${d.name}`, () => readOnly(d, 'new.txt'));
    }

    // The device the new.txt lock was taken through is killed: the lock
    // stays, listed and enforced on the others.
    await a.stop('SIGKILL');
    await new Promise((r) => setTimeout(r, 1500));
    for (const d of [b, c]) {
      expect(await locked(d)).toContain('new.txt');
      expect(readOnly(d, 'new.txt')).toBe(true);
    }
    const still = await cli(b, 'lock', 'new.txt');
    expect(still.stderr).toMatch(/new\.txt is already locked by admin\.\w{7}@A/);
    expect(readFileSync(join(b.folder, 'new.txt'), 'utf8')).toBe('written without a quorum\n');
  }, 90_000);

  it('refuses locking when a device uses etcd and its peer a device, naming both', async () => {
    const etcd = await startEtcd();
    cluster = await TestCluster.create(['A', 'B']);
    const [a, b] = cluster.devices as [TestDevice, TestDevice];
    setAuthority(a, { kind: 'etcd', endpoints: etcd.endpoints, prefix: '/lockstep/mixed/' });
    setAuthority(b, { kind: 'device', device: b.id });
    writeFileSync(join(a.folder, 'f.txt'), 'x\n');
    await cluster.startAll();
    await converged([a, b], (t) => t['f.txt'] !== undefined);
    for (const d of [a, b]) {
      const r = await cli(d, 'lock', 'f.txt');
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/Devices disagree on the lock authority/);
      expect(r.stderr).toMatch(/etcd \(prefix \/lockstep\/mixed\/\)/);
      expect(r.stderr).toMatch(/uses B\b/);
    }
  }, 60_000);
});

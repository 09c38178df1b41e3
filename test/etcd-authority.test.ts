// The etcd lock authority against a real three-member etcd (test/etcd.ts):
// two authorities stand for two devices sharing one prefix; what one grants
// or ends, the other hears from its watch, with the reason.
import { execFileSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../src/base/clock.js';
import { LockstepError } from '../src/base/errors.js';
import { formatDeviceId } from '../src/core/device-id.js';
import type { LockRow } from '../src/core/lock-rules.js';
import { EtcdAuthority, type EtcdAuthorityOptions } from '../src/locks/etcd-authority.js';
import type { LockChange } from '../src/locks/lock-wire.js';
import type { LocalEtcd } from '../src/cli/local-etcd.js';
import { etcdCleanup, quietLog, startEtcd } from './etcd.js';
import { waitUntil } from './helpers.js';

const until = <T>(cond: () => Promise<T> | T, ms?: number) =>
  waitUntil('the change to arrive', cond, ms);

const A = formatDeviceId(new Uint8Array(32).fill(1));
const B = formatDeviceId(new Uint8Array(32).fill(200));
const names: Record<string, string> = { [A]: 'A', [B]: 'B' };

etcdCleanup('each');
const made: EtcdAuthority[] = [];
afterEach(() => {
  for (const a of made.splice(0)) a.close();
});

let prefixes = 0;

/** An authority on `etcd` (one per device), with what it announced. */
async function authority(
  etcd: LocalEtcd,
  prefix: string,
  extra: Partial<EtcdAuthorityOptions> = {},
): Promise<{ auth: EtcdAuthority; heard: LockChange[] }> {
  const auth = new EtcdAuthority({
    endpoints: etcd.endpoints,
    prefix,
    clock: systemClock,
    log: quietLog,
    checkFile: (p) => {
      if (p.startsWith('missing')) throw new LockstepError('NOT_FOUND', `${p} does not exist`);
    },
    deviceName: (id) => names[id] ?? id,
    ...extra,
  });
  made.push(auth);
  const heard: LockChange[] = [];
  auth.subscribe((m) => {
    if (m.type === 'change') heard.push(m.change);
  });
  await auth.ready();
  return { auth, heard };
}

const code = (p: Promise<unknown>) =>
  p.then(
    () => 'granted',
    (e: unknown) => (e instanceof LockstepError ? e.code : String(e)),
  );

describe('EtcdAuthority on a real three-member etcd', () => {
  it('grants, refuses naming the holder, releases by owner, forces only for an administrator', async () => {
    const etcd = await startEtcd();
    const prefix = `/t${prefixes++}/`;
    const a = await authority(etcd, prefix);
    const b = await authority(etcd, prefix);
    const lock = await a.auth.grant({ path: 'doc.md', owner: 'alice', device: A });
    expect(lock.token).toBeGreaterThan(0);
    await until(() => b.heard.some((c) => c.type === 'locked' && c.lock.id === lock.id));
    expect(await b.auth.list()).toEqual([lock]);

    const refused = await b.auth
      .grant({ path: 'doc.md', owner: 'bob', device: B })
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(LockstepError);
    expect((refused as LockstepError).code).toBe('LOCKED');
    expect((refused as LockstepError).message).toContain('alice@A');
    expect(await code(a.auth.grant({ path: 'missing.md', owner: 'alice', device: A }))).toBe(
      'NOT_FOUND',
    );

    const notOwner = { path: 'doc.md', user: 'bob', admin: false };
    expect(await code(b.auth.release({ ...notOwner, force: false }))).toBe('NOT_LOCK_OWNER');
    expect(await code(b.auth.release({ ...notOwner, force: true }))).toBe('NOT_LOCK_OWNER');
    const forced = await b.auth.release({ path: 'doc.md', user: 'root', admin: true, force: true });
    expect(forced).toEqual({ lock, forced: true });
    await until(() => a.heard.some((c) => c.type === 'forced'));
    expect(a.heard.find((c) => c.type === 'forced')).toEqual({ type: 'forced', lock, by: 'root' });

    const again = await b.auth.grant({ path: 'doc.md', owner: 'bob', device: B });
    expect(again.token).toBeGreaterThan(lock.token);
    expect(
      await b.auth.release({ path: 'doc.md', user: 'bob', admin: false, force: false }),
    ).toEqual({ lock: again, forced: false });
    await until(() => a.heard.some((c) => c.type === 'unlocked' && c.lock.id === again.id));
    expect(await a.auth.list()).toEqual([]);
    expect(await code(a.auth.release({ ...notOwner, force: false }))).toBe('NOT_FOUND');

    // Its holder deleted the file: the end is told as such on every device.
    const third = await b.auth.grant({ path: 'doc.md', owner: 'bob', device: B });
    const dropped = { path: 'doc.md', user: 'bob', admin: false, force: false, dropped: true };
    expect(await b.auth.release(dropped)).toEqual({ lock: third, forced: false });
    await until(() => a.heard.some((c) => c.type === 'dropped' && c.lock.id === third.id));
  });

  it('expires a TTL lock in etcd, announced as expired on every device; a refresh extends it, same token', async () => {
    const etcd = await startEtcd();
    const prefix = `/t${prefixes++}/`;
    const a = await authority(etcd, prefix);
    const b = await authority(etcd, prefix);
    const short = await a.auth.grant({ path: 'x.md', owner: 'alice', device: A, ttlMs: 1000 });
    const kept = await a.auth.grant({ path: 'y.md', owner: 'alice', device: A, ttlMs: 1000 });
    const t0 = Date.now();
    const longer = await a.auth.refresh({ path: 'y.md', id: kept.id, user: 'alice', ttlMs: 6000 });
    expect(longer.token).toBe(kept.token);
    expect(longer.expiresMs).toBeGreaterThan((kept.expiresMs ?? 0) + 4000);
    expect(
      await code(b.auth.refresh({ path: 'y.md', id: kept.id, user: 'bob', ttlMs: 6000 })),
    ).toBe('NOT_LOCK_OWNER');
    await until(() => b.heard.some((c) => c.type === 'expired' && c.lock.id === short.id), 10_000);
    await until(() => a.heard.some((c) => c.type === 'expired' && c.lock.id === short.id), 10_000);
    console.log(`TTL 1000 ms lock announced expired after ${Date.now() - t0} ms`);
    // The refreshed one is still there, on both, with its token.
    await until(() => b.heard.some((c) => c.type === 'refreshed' && c.lock.id === kept.id));
    expect((await b.auth.list()).map((l: LockRow) => [l.path, l.token])).toEqual([
      ['y.md', kept.token],
    ]);
    // A grant over a lock whose expiry has passed ends it as expired.
    expect(await code(b.auth.grant({ path: 'x.md', owner: 'bob', device: B }))).toBe('granted');
  });

  it('makes tokens that only grow, also across a raised token base and imported locks', async () => {
    const etcd = await startEtcd();
    const prefix = `/t${prefixes++}/`;
    const embedded: LockRow = {
      path: 'old.md',
      id: 'imported-lock-1',
      owner: 'carol',
      device: B,
      createdMs: 1,
      expiresMs: null,
      reason: 'from the embedded authority',
      token: 5000,
      scope: 'file',
    };
    // The first device on etcd brings the embedded authority's locks; tokens go on above them.
    const a = await authority(etcd, prefix, { importLocks: [embedded], knownToken: 5000 });
    expect(await a.auth.list()).toEqual([embedded]);
    const tokens: number[] = [5000];
    for (let i = 0; i < 5; i++) {
      const l = await a.auth.grant({ path: `f${i}.md`, owner: 'alice', device: A });
      tokens.push(l.token);
      if (i % 2 === 0)
        await a.auth.release({ path: `f${i}.md`, user: 'alice', admin: false, force: false });
    }
    // A device that knew a larger token raises the base; nothing imported twice.
    const b = await authority(etcd, prefix, { importLocks: [], knownToken: 90_000 });
    const next = await b.auth.grant({ path: 'g.md', owner: 'bob', device: B });
    tokens.push(next.token);
    expect(next.token).toBeGreaterThan(90_000);
    const last = await a.auth.grant({ path: 'h.md', owner: 'alice', device: A });
    tokens.push(last.token);
    expect(tokens).toEqual([...tokens].sort((x, y) => x - y));
    expect(new Set(tokens).size).toBe(tokens.length);
    // Each lock keeps the token it was granted with, as every device sees it.
    await until(async () => (await a.auth.list()).length === 5);
    const byPath = new Map((await a.auth.list()).map((l) => [l.path, l.token]));
    expect(byPath.get('old.md')).toBe(5000);
    expect(byPath.get('g.md')).toBe(next.token);
    expect(byPath.get('f1.md')).toBe(tokens[2]);
  });

  it('fails within 2 s saying etcd has no quorum, and works again once members are back', async () => {
    const etcd = await startEtcd();
    const prefix = `/t${prefixes++}/`;
    const a = await authority(etcd, prefix);
    await etcd.stopMember(2);
    // If it was the leader, writes pause until the other two elect one (etcd's
    // election timeout, 500 ms here); then locking goes on.
    await etcd.healthy([0, 1]);
    // One member down: locking goes on.
    const l = await a.auth.grant({ path: 'q.md', owner: 'alice', device: A });
    await etcd.stopMember(1);
    const t0 = Date.now();
    const err = await a.auth
      .release({ path: 'q.md', user: 'alice', admin: false, force: false })
      .catch((e: unknown) => e);
    const ms = Date.now() - t0;
    console.log(`unlock without quorum failed after ${ms} ms`);
    expect(ms).toBeLessThan(5000);
    expect((err as LockstepError).code).toBe('AUTHORITY_UNREACHABLE');
    expect((err as LockstepError).message).toMatch(
      /etcd has no quorum or cannot be reached at http:\/\/127/,
    );
    const t1 = Date.now();
    const lockErr = await a.auth
      .grant({ path: 'p.md', owner: 'alice', device: A })
      .catch((e: unknown) => e);
    expect(Date.now() - t1).toBeLessThan(5000);
    expect((lockErr as LockstepError).code).toBe('AUTHORITY_UNREACHABLE');
    etcd.startMember(1);
    etcd.startMember(2);
    await etcd.healthy([0, 1, 2]);
    // Locking resumes without a new authority.
    await until(
      async () =>
        (await code(a.auth.grant({ path: 'r.md', owner: 'alice', device: A }))) === 'granted',
      15_000,
    );
    // The unlock that timed out may still have been committed (etcd keeps the
    // proposal): either way the lock ends, announced, on asking again.
    await until(async () => {
      if (!(await a.auth.list()).some((x) => x.id === l.id)) return true;
      return (
        (await code(
          a.auth.release({ path: 'q.md', user: 'alice', admin: false, force: false }),
        )) === 'granted'
      );
    });
    await until(() => a.heard.some((c) => c.type === 'unlocked' && c.lock.id === l.id));
    // The lock whose grant failed is not held, even if etcd committed it after all.
    const granted = a.heard.find((c) => c.type === 'locked' && c.lock.path === 'p.md');
    console.log(
      `the failed grant was ${granted ? 'committed later, and ended' : 'never committed'}`,
    );
    if (granted)
      await until(() =>
        a.heard.some((c) => c.type === 'unlocked' && c.lock.id === granted.lock.id),
      );
    await new Promise((r) => setTimeout(r, 500));
    const b = await authority(etcd, prefix);
    expect((await b.auth.list()).map((x) => x.path)).not.toContain('p.md');
  });

  it('goes on while one member hangs (paused): a try on it costs half the budget, then it is skipped', async () => {
    const etcd = await startEtcd();
    const prefix = `/t${prefixes++}/`;
    const a = await authority(etcd, prefix);
    etcd.pauseMember(2);
    // If it was the leader, the other two elect one first.
    await etcd.healthy([0, 1]);
    let slowest = 0;
    for (let i = 0; i < 20; i++) {
      const t0 = Date.now();
      await a.auth.grant({ path: 'h.md', owner: 'alice', device: A });
      await a.auth.release({ path: 'h.md', user: 'alice', admin: false, force: false });
      slowest = Math.max(slowest, Date.now() - t0);
    }
    console.log(`with a member paused, the slowest lock + unlock took ${slowest} ms`);
    etcd.resumeMember(2);
    expect(await a.auth.list()).toEqual([]);
  });

  it('resumes a cut-off watch from the last revision it saw, and takes a new snapshot past a compaction', async () => {
    const etcd = await startEtcd();
    const prefix = `/t${prefixes++}/`;
    const a = await authority(etcd, prefix);
    // b reaches etcd through member 2 only.
    const b = await authority(etcd, prefix, { endpoints: [etcd.endpoints[2] as string] });
    await etcd.stopMember(2);
    await etcd.healthy([0, 1]);
    const x = await a.auth.grant({ path: 'x.md', owner: 'alice', device: A });
    await a.auth.release({ path: 'x.md', user: 'alice', admin: false, force: false });
    const y = await a.auth.grant({ path: 'y.md', owner: 'alice', device: A });
    etcd.startMember(2);
    await etcd.healthy([2]);
    // Every change b missed, in order, with its reason.
    await until(() => b.heard.some((c) => c.type === 'locked' && c.lock.id === y.id), 15_000);
    expect(b.heard.map((c) => [c.type, c.lock.id])).toEqual([
      ['locked', x.id],
      ['unlocked', x.id],
      ['locked', y.id],
    ]);
    // Cut off again while the history it would need is compacted away.
    await etcd.stopMember(2);
    await etcd.healthy([0, 1]);
    await a.auth.release({ path: 'y.md', user: 'root', admin: true, force: true });
    const z = await a.auth.grant({ path: 'z.md', owner: 'alice', device: A });
    const status = JSON.parse(
      execFileSync(
        'etcdctl',
        ['--endpoints', etcd.endpoints[0] as string, 'endpoint', 'status', '-w', 'json'],
        { encoding: 'utf8' },
      ),
    ) as { Status: { header: { revision: number } } }[];
    const rev = String(status[0]?.Status.header.revision);
    execFileSync('etcdctl', ['--endpoints', etcd.endpoints[0] as string, 'compact', rev]);
    etcd.startMember(2);
    await etcd.healthy([2]);
    await until(async () => {
      const locks = await b.auth.list();
      return locks.length === 1 && locks[0]?.id === z.id;
    }, 15_000);
  });
});

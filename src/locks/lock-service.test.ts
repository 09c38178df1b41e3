// The lock service over both authorities and the replica, with a real
// SQLite file; a direct call between two devices stands in for the peer link
// (requests and the lock stream both pass through JSON, as on the wire; the
// real link is covered end to end in test/locks.test.ts). Time is a manual
// clock: nothing here sleeps.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import { LockstepError } from '../base/errors.js';
import { formatDeviceId } from '../core/device-id.js';
import { IndexStore } from '../store/index-store.js';
import { ManualClock } from '../base/clock.js';
import { EmbeddedAuthority } from './embedded-authority.js';
import { ForwardedAuthority } from './forwarded-authority.js';
import { LockService } from './lock-service.js';
import { decodeLockRequest, type LockChange, type LockRequest } from './lock-wire.js';
import { LockReplica } from './replica.js';

const A = formatDeviceId(new Uint8Array(32).fill(1));
const B = formatDeviceId(new Uint8Array(32).fill(200));
const log = pino({ level: 'silent' });

describe('locks', () => {
  let dir: string;
  let stores: IndexStore[];
  let a: LockService;
  let b: LockService;
  let reachable: boolean;
  let disagree: { peer: string; choice: string }[];
  const changes: { on: string; c: LockChange }[] = [];

  let clock: ManualClock;
  const forwarded = new Map<string, ForwardedAuthority>();
  const wire = <T>(v: T): unknown => JSON.parse(JSON.stringify(v)) as unknown;

  const service = (self: string, store: IndexStore, other: () => LockService) => {
    const deviceName = (id: string) => (id === A ? 'A' : 'B');
    const table = store.lockTable();
    const remote = new ForwardedAuthority({
      device: () => A,
      send: async (_auth: string, req: LockRequest) => {
        if (!reachable) throw new LockstepError('PEER_UNREACHABLE', 'connection refused');
        await new Promise((r) => setImmediate(r));
        // What the peer server does: decode the JSON body, then handle it.
        return wire(other().handle(decodeLockRequest(wire(req)), self));
      },
      deviceName,
    });
    forwarded.set(self, remote);
    return new LockService({
      self,
      replica: new LockReplica(table),
      embedded: new EmbeddedAuthority({
        table,
        clock,
        log,
        checkLockable: (path) => {
          if (path.startsWith('missing'))
            throw new LockstepError('NOT_FOUND', `${path} does not exist`);
          if (path.startsWith('link'))
            throw new LockstepError('NOT_A_FILE', `${path} is a symlink`);
          return /^(dir|proj)[^/]*$/.test(path) ? 'directory' : 'file';
        },
        deviceName,
      }),
      remote,
      authority: () => A,
      disagreements: () => disagree,
      deviceName,
    });
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'lockstep-locks-'));
    stores = [new IndexStore(join(dir, 'a.db'), A), new IndexStore(join(dir, 'b.db'), B)];
    reachable = true;
    disagree = [];
    changes.length = 0;
    clock = new ManualClock(1_000_000);
    a = service(A, stores[0] as IndexStore, () => b);
    b = service(B, stores[1] as IndexStore, () => a);
    // A's lock stream, as B's link would receive it.
    const toB = forwarded.get(B) as ForwardedAuthority;
    toB.deliver(A, wire({ type: 'locks', locks: a.all() }));
    a.on('change', (change) => toB.deliver(A, wire({ type: 'change', change })));
    a.on('change', (c) => changes.push({ on: 'A', c }));
    b.on('change', (c) => changes.push({ on: 'B', c }));
  });
  afterEach(() => {
    a.close();
    b.close();
    for (const s of stores) s.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('grants exactly one of many concurrent attempts, from both devices, naming the holder to the others', async () => {
    const attempts = Array.from({ length: 50 }, (_, i) =>
      (i % 2 === 0 ? a : b).lock('c.pdf', `user${i}`, {}).then(
        (r) => ({ ok: true as const, owner: r.lock.owner }),
        (err: unknown) => ({ ok: false as const, err: err as LockstepError }),
      ),
    );
    const results = await Promise.all(attempts);
    const won = results.filter((r) => r.ok);
    expect(won).toHaveLength(1);
    const holder = (won[0] as { owner: string }).owner;
    for (const r of results) {
      if (r.ok) continue;
      expect(r.err.code).toBe('LOCKED');
      expect(r.err.message).toMatch(new RegExp(`already locked by ${holder}@[AB] since \\d{4}-`));
    }
    expect(a.all()).toHaveLength(1);
  });

  it('refuses missing files, links, and a second lock for the holder too', async () => {
    await expect(b.lock('missing.txt', 'alice', {})).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(a.lock('link', 'alice', {})).rejects.toMatchObject({ code: 'NOT_A_FILE' });
    await b.lock('x.txt', 'alice', { reason: 'editing' });
    await expect(b.lock('x.txt', 'alice', {})).rejects.toMatchObject({ code: 'LOCKED' });
  });

  it('locks a directory: it covers what is below on every replica, and overlapping locks are refused naming it', async () => {
    const { lock } = await b.lock('proj', 'alice', {});
    expect(lock.scope).toBe('directory');
    for (const s of [a, b]) {
      expect(s.covering('proj/x/new.txt')?.path).toBe('proj');
      expect(s.covering('project/a.txt')).toBeUndefined();
    }
    await expect(a.lock('proj/a.txt', 'bob', {})).rejects.toMatchObject({
      code: 'LOCKED',
      message: expect.stringMatching(
        /^proj\/a\.txt is inside proj\/, locked by alice@B since /,
      ) as unknown,
    });
    expect((await a.lock('project', 'bob', {})).lock.scope).toBe('directory');
    await a.lock('dir1/f.txt', 'bob', {});
    await expect(b.lock('dir1', 'alice', {})).rejects.toMatchObject({
      code: 'LOCKED',
      message: expect.stringMatching(/^dir1\/ holds dir1\/f\.txt, locked by bob@A/) as unknown,
    });
    await b.unlock('proj', { name: 'alice', admin: false }, false);
    expect(b.covering('proj/a.txt')).toBeUndefined();
    await a.lock('proj/a.txt', 'bob', {});
  });

  it('lets an expired lock below a directory give way to the directory lock, announced', async () => {
    await b.lock('proj/a.txt', 'alice', { ttlMs: 10 });
    clock.advance(10);
    const { lock } = await b.lock('proj', 'bob', {});
    expect(lock.scope).toBe('directory');
    expect(changes.filter((x) => x.on === 'A').map((x) => `${x.c.type} ${x.c.lock.path}`)).toEqual([
      'locked proj/a.txt',
      'expired proj/a.txt',
      'locked proj',
    ]);
  });

  it('lets only the owner unlock; an administrator may force, and that is announced', async () => {
    await b.lock('x.txt', 'alice', {});
    await expect(b.unlock('x.txt', { name: 'bob', admin: false }, false)).rejects.toMatchObject({
      code: 'NOT_LOCK_OWNER',
    });
    await expect(b.unlock('x.txt', { name: 'bob', admin: false }, true)).rejects.toThrow(
      /only an administrator/,
    );
    const r = await b.unlock('x.txt', { name: 'admin', admin: true }, true);
    expect(r.forced).toBe(true);
    expect(changes.some((x) => x.on === 'A' && x.c.type === 'forced' && x.c.by === 'admin')).toBe(
      true,
    );
    expect(a.get('x.txt')).toBeUndefined();
    expect(b.get('x.txt')).toBeUndefined();
    await expect(b.unlock('x.txt', { name: 'alice', admin: false }, false)).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
  });

  it('refuses what a peer may not ask: a lock at another device, an unlock of a lock held elsewhere, whatever admin or force it claims', async () => {
    await a.lock('x.txt', 'admin', {});
    // What a configured but hostile peer B sends straight to the authority A.
    const forged = (req: unknown) => () => a.handle(decodeLockRequest(req), B);
    expect(
      forged({ op: 'unlock', path: 'x.txt', user: 'mallory', admin: true, force: true }),
    ).toThrow(expect.objectContaining({ code: 'FORBIDDEN' }) as Error);
    expect(
      forged({ op: 'unlock', path: 'x.txt', user: 'admin', admin: true, force: false }),
    ).toThrow(/locked by admin at A; B cannot unlock a lock held at another device/);
    expect(forged({ op: 'lock', path: 'y.txt', owner: 'carol', device: A })).toThrow(
      /B asked for a lock held at A/,
    );
    expect(a.get('x.txt')?.owner).toBe('admin');
    expect(a.get('y.txt')).toBeUndefined();
    // What B may ask: a lock at itself, and its release.
    const own = a.handle(
      decodeLockRequest({ op: 'lock', path: 'y.txt', owner: 'carol', device: B }),
      B,
    );
    expect(own.device).toBe(B);
    a.handle(
      decodeLockRequest({ op: 'unlock', path: 'y.txt', user: 'carol', admin: false, force: false }),
      B,
    );
    expect(a.get('y.txt')).toBeUndefined();
  });

  it('fails clearly while the authority is unreachable or devices disagree', async () => {
    reachable = false;
    await expect(b.lock('x.txt', 'alice', {})).rejects.toThrow(
      /lock authority A cannot be reached.*listing and sync go on/,
    );
    reachable = true;
    disagree = [{ peer: B, choice: B }];
    await expect(a.lock('x.txt', 'alice', {})).rejects.toMatchObject({
      code: 'AUTHORITY_DISAGREE',
      message: expect.stringMatching(/this device uses A, B uses B/) as unknown,
    });
  });

  it('expires a lock with a TTL on the clock, announces it everywhere, and a refresh postpones it', async () => {
    a.authorityMayHaveChanged();
    const { lock } = await b.lock('t.txt', 'alice', { ttlMs: 30_000 });
    expect(b.get('t.txt')?.expiresMs).toBe(clock.now() + 30_000);
    clock.advance(20_000);
    const longer = await b.refresh('t.txt', lock.id, 'alice', 30_000);
    expect(longer.token).toBe(lock.token);
    expect(b.get('t.txt')?.expiresMs).toBe(clock.now() + 30_000);
    await expect(b.refresh('t.txt', lock.id, 'bob', 30_000)).rejects.toMatchObject({
      code: 'NOT_LOCK_OWNER',
    });
    clock.advance(29_999);
    expect(a.get('t.txt')).toBeDefined();
    clock.advance(1);
    expect(a.get('t.txt')).toBeUndefined();
    expect(b.get('t.txt')).toBeUndefined();
    expect(
      changes
        .filter((x) => x.c.type === 'expired')
        .map((x) => x.on)
        .sort(),
    ).toEqual(['A', 'B']);
    await expect(b.refresh('t.txt', lock.id, 'alice', 30_000)).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    expect(clock.pending).toBe(0);
  });

  it('does not expire locks while this device is not the authority', async () => {
    await b.lock('t.txt', 'alice', { ttlMs: 10 });
    clock.advance(1000);
    expect(a.get('t.txt')).toBeDefined();
    a.authorityMayHaveChanged();
    clock.advance(0);
    expect(a.get('t.txt')).toBeUndefined();
  });

  it('gives every grant a larger fencing token, kept in every replica and across a restart', async () => {
    const t1 = (await b.lock('f.txt', 'alice', {})).lock.token;
    await b.unlock('f.txt', { name: 'alice', admin: false }, false);
    const t2 = (await a.lock('f.txt', 'bob', {})).lock.token;
    expect(t2).toBeGreaterThan(t1);
    expect(b.get('f.txt')?.token).toBe(t2);
    a.close();
    (stores[0] as IndexStore).close();
    stores[0] = new IndexStore(join(dir, 'a.db'), A);
    a = service(A, stores[0], () => b);
    expect(a.get('f.txt')?.token).toBe(t2);
    const t3 = (await a.lock('g.txt', 'bob', {})).lock.token;
    expect(t3).toBeGreaterThan(t2);
    // B, having seen A's tokens, grants above them if it becomes the authority.
    expect((stores[1] as IndexStore).lockTable().lastToken()).toBeGreaterThanOrEqual(t2);
  });

  it('grants above every earlier token after a restart with no lock left (released, expired)', async () => {
    a.authorityMayHaveChanged();
    const t1 = (await a.lock('f.txt', 'alice', {})).lock.token;
    const t2 = (await b.lock('g.txt', 'bob', { ttlMs: 10 })).lock.token;
    await a.unlock('f.txt', { name: 'alice', admin: false }, false);
    clock.advance(10);
    expect(a.all()).toEqual([]);
    a.close();
    (stores[0] as IndexStore).close();
    stores[0] = new IndexStore(join(dir, 'a.db'), A);
    a = service(A, stores[0], () => b);
    const t3 = (await a.lock('f.txt', 'carol', {})).lock.token;
    expect(t3).toBeGreaterThan(Math.max(t1, t2));
  });

  it('keeps locks across a restart of the authority', async () => {
    await b.lock('k.txt', 'alice', {});
    a.close();
    (stores[0] as IndexStore).close();
    const reopened = new IndexStore(join(dir, 'a.db'), A);
    stores[0] = reopened;
    expect(reopened.lockTable().get('k.txt')?.owner).toBe('alice');
  });

  it('a replica adopts a snapshot and announces the difference', () => {
    const l = {
      path: 'p',
      id: 'id1',
      owner: 'o',
      device: A,
      createdMs: 1,
      expiresMs: null,
      reason: '',
      token: 5,
      scope: 'file' as const,
    };
    const toB = forwarded.get(B) as ForwardedAuthority;
    toB.deliver(A, wire({ type: 'locks', locks: [l] }));
    expect(b.get('p')).toEqual(l);
    // Already known: no second announcement.
    toB.deliver(A, wire({ type: 'change', change: { type: 'locked', lock: l } }));
    // Another device's stream (not the authority's) is dropped.
    toB.deliver(B, wire({ type: 'locks', locks: [] }));
    expect(b.get('p')).toEqual(l);
    // A lock from a Lockstep without tokens decodes, with token 0.
    const { token: _, ...old } = { ...l, id: 'id2', path: 'q' };
    toB.deliver(A, wire({ type: 'change', change: { type: 'locked', lock: old } }));
    expect(b.get('q')?.token).toBe(0);
    toB.deliver(A, wire({ type: 'locks', locks: [] }));
    expect(b.get('p')).toBeUndefined();
    expect(changes.filter((x) => x.on === 'B').map((x) => x.c.type)).toEqual([
      'locked',
      'locked',
      'unlocked',
      'unlocked',
    ]);
  });
});

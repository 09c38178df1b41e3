// The lock table and the lock service with a real SQLite file; forwarding
// between two services stands in for the peer link (the real link is
// covered end to end in test/locks.test.ts).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import { LockstepError } from '../base/errors.js';
import { formatDeviceId } from '../core/device-id.js';
import { IndexStore } from '../store/index-store.js';
import { LockService } from './lock-service.js';
import { LockTable } from './lock-table.js';
import { decodeLockRequest, type LockChange, type LockRequest } from './lock-wire.js';

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

  const service = (self: string, store: IndexStore, other: () => LockService) =>
    new LockService({
      table: new LockTable(store.db),
      self,
      log,
      authority: () => A,
      disagreements: () => disagree,
      forward: async (_auth, req: LockRequest) => {
        if (!reachable) throw new LockstepError('PEER_UNREACHABLE', 'connection refused');
        await new Promise((r) => setImmediate(r));
        // What the peer server does: decode the JSON body, then handle it.
        return JSON.parse(
          JSON.stringify(other().handle(decodeLockRequest(JSON.parse(JSON.stringify(req))))),
        );
      },
      checkFile: (path) => {
        if (path.startsWith('missing'))
          throw new LockstepError('NOT_FOUND', `${path} does not exist`);
        if (path.startsWith('dir')) throw new LockstepError('NOT_A_FILE', `${path} is a directory`);
      },
      deviceName: (id) => (id === A ? 'A' : 'B'),
    });

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'lockstep-locks-'));
    stores = [new IndexStore(join(dir, 'a.db'), A), new IndexStore(join(dir, 'b.db'), B)];
    reachable = true;
    disagree = [];
    changes.length = 0;
    a = service(A, stores[0] as IndexStore, () => b);
    b = service(B, stores[1] as IndexStore, () => a);
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

  it('refuses missing files, directories, and a second lock for the holder too', async () => {
    await expect(b.lock('missing.txt', 'alice', {})).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(a.lock('dir', 'alice', {})).rejects.toMatchObject({ code: 'NOT_A_FILE' });
    await b.lock('x.txt', 'alice', { reason: 'editing' });
    await expect(b.lock('x.txt', 'alice', {})).rejects.toMatchObject({ code: 'LOCKED' });
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

  it('expires a lock with a TTL and announces it', async () => {
    a.start();
    await b.lock('t.txt', 'alice', { ttlMs: 30 });
    expect(a.get('t.txt')).toBeDefined();
    for (let i = 0; i < 500 && a.get('t.txt') !== undefined; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(a.get('t.txt')).toBeUndefined();
    expect(changes.some((x) => x.on === 'A' && x.c.type === 'expired')).toBe(true);
  });

  it('keeps locks across a restart of the authority', async () => {
    await b.lock('k.txt', 'alice', {});
    a.close();
    (stores[0] as IndexStore).close();
    const reopened = new IndexStore(join(dir, 'a.db'), A);
    stores[0] = reopened;
    expect(new LockTable(reopened.db).get('k.txt')?.owner).toBe('alice');
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
    };
    b.applySnapshot([l]);
    expect(b.get('p')).toEqual(l);
    b.applyChange({ type: 'locked', lock: l }); // already known: no second announcement
    b.applySnapshot([]);
    expect(b.get('p')).toBeUndefined();
    expect(changes.filter((x) => x.on === 'B').map((x) => x.c.type)).toEqual([
      'locked',
      'unlocked',
    ]);
  });
});

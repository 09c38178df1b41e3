// Two devices' ClusterUsers joined in process: the authority's table, a follower's copy.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LockstepError } from '../base/errors.js';
import type { Logger } from '../base/log.js';
import { openUserStore } from '../config/users.js';
import { adminNameOf, type UserRequest } from '../core/user-table.js';
import { ClusterUsers } from './cluster-users.js';

const X = 'XXXXXXX-BBBBBBB-CCCCCCC-DDDDDDD-EEEEEEE-FFFFFFF-GGGGGGG-HHHHHHH';
const Y = 'YYYYYYY-BBBBBBB-CCCCCCC-DDDDDDD-EEEEEEE-FFFFFFF-GGGGGGG-HHHHHHH';
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const log = quiet as unknown as Logger;

describe('ClusterUsers', () => {
  let tmp: string;
  let reachable: boolean;
  let x: ClusterUsers;
  let y: ClusterUsers;
  const home = (name: string) => join(tmp, name);

  function device(name: string, self: string, legacy?: unknown, decided = true): ClusterUsers {
    mkdirSync(home(name), { mode: 0o700 });
    writeFileSync(join(home(name), 'token'), `token-of-${name}\n`, { mode: 0o600 });
    if (legacy !== undefined) writeFileSync(join(home(name), 'users.json'), JSON.stringify(legacy));
    return new ClusterUsers({
      home: home(name),
      self,
      log,
      authority: () => X,
      deviceName: (id) => id.slice(0, 1),
      decided: () => decided,
      // Y's requests reach X's handle, as over the peer link.
      send: (_to, req: UserRequest) =>
        reachable
          ? Promise.resolve(JSON.parse(JSON.stringify(x.handle(req, self))) as unknown)
          : Promise.reject(new LockstepError('PEER_UNREACHABLE', 'not connected')),
    });
  }

  beforeEach(() => {
    tmp = mkdtempSync(join(tmpdir(), 'lockstep-cluster-users-'));
    reachable = true;
    const bob = {
      name: 'bob',
      admin: false,
      tokenSha256: 'b'.repeat(64),
      created: '2025-01-01T00:00:00.000Z',
    };
    x = device('x', X);
    y = device('y', Y, { version: 1, users: [bob] });
    x.authorityMayHaveChanged();
    // Y follows X's stream (the peer link's job in a running device).
    x.subscribe((m) => y.deliver(X, JSON.parse(JSON.stringify(m))));
  });
  afterEach(() => rmSync(tmp, { recursive: true, force: true }));

  const names = (u: ClusterUsers) => u.list().map((e) => e.name);
  const settle = () => new Promise((r) => setTimeout(r, 20));

  it("follows the authority's table, entering the follower's administrator and its users of before", async () => {
    await settle();
    expect(names(x)).toEqual([adminNameOf(X), adminNameOf(Y), 'bob'].sort());
    expect(names(y)).toEqual(names(x));
    const file = JSON.parse(readFileSync(join(home('y'), 'users.json'), 'utf8')) as {
      version: number;
    };
    expect(file.version).toBe(2);
  });

  it('adds through the authority; the token works on both devices; removal ends it on both', async () => {
    await settle();
    const admin = { name: adminNameOf(Y), admin: true };
    const made = await y.add('carol', { admin: false, replace: false }, admin);
    for (const h of ['x', 'y']) {
      expect(openUserStore(home(h)).authenticate(made.token)).toEqual({
        name: 'carol',
        admin: false,
      });
    }
    await expect(y.add('carol', { admin: false, replace: false }, admin)).rejects.toThrow(
      /already exists in the cluster/,
    );
    await expect(y.add('dave', { admin: false, replace: false }, made)).rejects.toThrow(
      /Only an administrator/,
    );
    await y.remove('carol', admin);
    for (const h of ['x', 'y']) {
      expect(openUserStore(home(h)).authenticate(made.token)).toBeUndefined();
    }
  });

  it("keeps its own administrator, so the cluster never loses its last one; a gone device's goes", async () => {
    await settle();
    const admin = { name: adminNameOf(X), admin: true };
    // Y is not among X's members here (no peers configured): a gone device's administrator.
    await x.remove(adminNameOf(Y), admin);
    await expect(x.remove(adminNameOf(X), admin)).rejects.toThrow(/administrator of a device/);
  });

  it('keeps its copy, and says why adding fails, while the authority is away', async () => {
    await settle();
    reachable = false;
    const admin = { name: adminNameOf(Y), admin: true };
    await expect(y.add('erin', { admin: false, replace: false }, admin)).rejects.toThrow(
      /cannot be reached/,
    );
    const again = device('y2', Y, JSON.parse(readFileSync(join(home('y'), 'users.json'), 'utf8')));
    expect(names(again)).toEqual(names(x));
  });

  it('offers the users it kept as its own authority once it follows the cluster', async () => {
    await settle();
    const zed = { ...x.list()[0], name: 'zed', admin: false } as const;
    const bob = x.list().find((u) => u.name === 'bob');
    const z = device(
      'z',
      Y,
      { version: 2, users: [zed, { ...bob, tokenSha256: 'c'.repeat(64) }] },
      false,
    );
    z.deliver(X, { type: 'users', users: x.list() });
    await settle();
    expect(names(x)).toContain('zed');
    // A name the cluster has keeps the cluster's token.
    expect(x.list().find((u) => u.name === 'bob')?.tokenSha256).toBe('b'.repeat(64));
  });

  it("takes a peer's word only for users of the table", async () => {
    await settle();
    expect(x.claimProblem('bob', false, Y)).toBeUndefined();
    expect(x.claimProblem('bob', true, Y)).toMatch(/table says not/);
    expect(x.claimProblem('mallory', false, Y)).toMatch(/not a user/);
    expect(x.claimProblem(adminNameOf(Y), true, Y)).toBeUndefined();
  });
});

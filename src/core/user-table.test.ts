import { describe, expect, it } from 'vitest';
import { LockstepError } from '../base/errors.js';
import {
  adminNameOf,
  applyUserChange,
  decideUserRequest,
  decodeUserRequest,
  decodeUserStream,
  isDeviceAdminName,
  tableDiff,
  userClaimProblem,
  userNameProblem,
  type UserEntry,
} from './user-table.js';

const A = 'AAAAAAA-BBBBBBB-CCCCCCC-DDDDDDD-EEEEEEE-FFFFFFF-GGGGGGG-HHHHHHH';
const B = 'BBBBBBB-BBBBBBB-CCCCCCC-DDDDDDD-EEEEEEE-FFFFFFF-GGGGGGG-HHHHHHH';
const hash = (c: string) => c.repeat(64);
const user = (name: string, admin = false, h = 'a'): UserEntry => ({
  name,
  admin,
  tokenSha256: hash(h),
  created: '2026-01-01T00:00:00.000Z',
});

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof LockstepError) return err.code;
    throw err;
  }
  return undefined;
}

describe('user names', () => {
  it('names a device administrator after its short ID, a valid user name', () => {
    expect(adminNameOf(A)).toBe('admin.AAAAAAA');
    expect(adminNameOf(A)).not.toBe(adminNameOf(B));
    expect(userNameProblem(adminNameOf(A))).toBeUndefined();
    expect(isDeviceAdminName('admin')).toBe(true);
    expect(isDeviceAdminName('admin.X')).toBe(true);
    expect(isDeviceAdminName('administrator')).toBe(false);
  });

  it.each(['', 'a b', 'é', 'x'.repeat(65), 'a/b'])('refuses %j', (n) => {
    expect(userNameProblem(n)).toMatch(/Invalid user name/);
  });
});

describe('the table', () => {
  it('applies puts and removals, sorted by name', () => {
    let t = applyUserChange([], { type: 'put', user: user('bob') });
    t = applyUserChange(t, { type: 'put', user: user('alice') });
    t = applyUserChange(t, { type: 'put', user: user('bob', true, 'b') });
    expect(t.map((u) => [u.name, u.admin])).toEqual([
      ['alice', false],
      ['bob', true],
    ]);
    t = applyUserChange(t, { type: 'removed', name: 'alice' });
    expect(t.map((u) => u.name)).toEqual(['bob']);
  });

  it('diffs two tables into the changes between them', () => {
    const before = [user('a'), user('b')];
    const after = [user('b', false, 'c'), user('c')];
    expect(tableDiff(before, after)).toEqual([
      { type: 'put', user: after[0] },
      { type: 'put', user: after[1] },
      { type: 'removed', name: 'a' },
    ]);
    expect(tableDiff(after, after)).toEqual([]);
  });
});

describe('requests to the table', () => {
  const table = [user(adminNameOf(A), true), user('root', true), user('alice')];

  it('lets an administrator add and remove users', () => {
    const add = { op: 'add', by: 'root', user: user('bob'), replace: false } as const;
    expect(decideUserRequest(table, add, B)).toEqual({ type: 'put', user: user('bob') });
    const rm = { op: 'remove', by: 'root', name: 'alice' } as const;
    expect(decideUserRequest(table, rm, B)).toEqual({ type: 'removed', name: 'alice' });
  });

  it("takes a device's word for its own administrator, not another's", () => {
    const add = { op: 'add', by: adminNameOf(B), user: user('bob'), replace: false } as const;
    expect(decideUserRequest(table, add, B)).toEqual({ type: 'put', user: user('bob') });
    expect(codeOf(() => decideUserRequest(table, add, A))).toBe('FORBIDDEN');
  });

  it('refuses users who are not administrators, and unknown ones', () => {
    const byAlice = { op: 'add', by: 'alice', user: user('bob'), replace: false } as const;
    expect(codeOf(() => decideUserRequest(table, byAlice, B))).toBe('FORBIDDEN');
    const byNobody = { op: 'remove', by: 'mallory', name: 'alice' } as const;
    expect(codeOf(() => decideUserRequest(table, byNobody, B))).toBe('FORBIDDEN');
  });

  it('refuses a name in use without replace, and administrator names', () => {
    const again = { op: 'add', by: 'root', user: user('alice', false, 'b'), replace: false };
    expect(codeOf(() => decideUserRequest(table, again as never, B))).toBe('USER_EXISTS');
    const replaced = decideUserRequest(table, { ...again, replace: true } as never, B);
    expect(replaced).toEqual({ type: 'put', user: user('alice', false, 'b') });
    const admin = { op: 'add', by: 'root', user: user('admin.ZZZ'), replace: true } as const;
    expect(codeOf(() => decideUserRequest(table, admin, B))).toBe('USER_EXISTS');
  });

  it('refuses to remove an unknown user and the last administrator', () => {
    const rm = (name: string) => ({ op: 'remove', by: 'root', name }) as const;
    expect(codeOf(() => decideUserRequest(table, rm('nobody'), B))).toBe('NOT_FOUND');
    const one = [user('root', true), user('alice')];
    expect(() => decideUserRequest(one, rm('root'), B)).toThrow(/last administrator/);
    expect(decideUserRequest(table, rm('root'), B)).toEqual({ type: 'removed', name: 'root' });
  });

  it("keeps the administrators of the cluster's devices; a gone device's may be removed", () => {
    const rm = { op: 'remove', by: 'root', name: adminNameOf(A) } as const;
    expect(() => decideUserRequest(table, rm, B, [A, B])).toThrow(/administrator of a device/);
    expect(decideUserRequest(table, rm, B, [B])).toEqual({ type: 'removed', name: adminNameOf(A) });
  });

  it('registers only the asking device administrator', () => {
    const own = user(adminNameOf(B), true, 'f');
    expect(decideUserRequest(table, { op: 'register', user: own }, B)).toEqual({
      type: 'put',
      user: own,
    });
    expect(codeOf(() => decideUserRequest(table, { op: 'register', user: own }, A))).toBe(
      'FORBIDDEN',
    );
    const same = user(adminNameOf(A), true);
    expect(decideUserRequest(table, { op: 'register', user: same }, A)).toBeUndefined();
  });
});

describe("a peer's claims about users", () => {
  const table = [user('root', true), user('alice')];

  it('takes known users, administrators as such, and the peer device administrator', () => {
    expect(userClaimProblem(table, 'alice', false, B, 'B')).toBeUndefined();
    expect(userClaimProblem(table, 'root', true, B, 'B')).toBeUndefined();
    expect(userClaimProblem(table, adminNameOf(B), true, B, 'B')).toBeUndefined();
  });

  it('refuses unknown users, false administrators and another device administrator', () => {
    expect(userClaimProblem(table, 'mallory', false, B, 'B')).toMatch(/not a user/);
    expect(userClaimProblem(table, 'alice', true, B, 'B')).toMatch(/administrator/);
    expect(userClaimProblem(table, adminNameOf(A), true, B, 'B')).toMatch(/not a user/);
  });
});

describe('the wire', () => {
  it('checks stream messages and requests', () => {
    const msg = { type: 'users', users: [user('alice')] };
    expect(decodeUserStream(msg)).toEqual(msg);
    expect(() =>
      decodeUserStream({ type: 'users', users: [{ ...user('a'), name: 'a b' }] }),
    ).toThrow(/user name/);
    expect(() =>
      decodeUserStream({ type: 'users', users: [{ ...user('a'), tokenSha256: 'x' }] }),
    ).toThrow(/tokenSha256/);
    expect(() => decodeUserRequest({ op: 'add', by: 'root', user: user('a') })).toThrow(/replace/);
    expect(() => decodeUserRequest({ op: 'drop' })).toThrow(/op must be/);
  });
});

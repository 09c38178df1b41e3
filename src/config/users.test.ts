import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { initHome, readToken } from './home.js';
import { addUser, openUserStore, staticUserStore } from './users.js';

describe('users', () => {
  let tmp: string;
  let home: string;
  beforeEach(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'lockstep-users-'));
    home = join(tmp, 'home');
    await initHome({ home, folder: join(tmp, 'f'), name: 'A' });
  });
  afterEach(() => rmSync(tmp, { recursive: true, force: true }));

  it("the home's token is the administrator", () => {
    const users = openUserStore(home);
    expect(users.authenticate(readToken(home))).toEqual({ name: 'admin', admin: true });
    expect(users.authenticate('')).toBeUndefined();
    expect(users.authenticate('nope')).toBeUndefined();
  });

  it('add stores only a hash, mode 0600; the token then authenticates', () => {
    const { user, token } = addUser(home, 'alice');
    expect(user).toEqual({ name: 'alice', admin: false });
    const file = join(home, 'users.json');
    const text = readFileSync(file, 'utf8');
    expect(text).not.toContain(token);
    expect(JSON.parse(text).users[0].tokenSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(openUserStore(home).authenticate(token)).toEqual({ name: 'alice', admin: false });
  });

  it('a store that is already open sees users added later', () => {
    const users = openUserStore(home);
    const { token } = addUser(home, 'bob', { admin: true });
    expect(users.authenticate(token)).toEqual({ name: 'bob', admin: true });
  });

  it('refuses a taken name unless replace, which retires the old token', () => {
    const first = addUser(home, 'alice');
    expect(() => addUser(home, 'alice')).toThrow(/already exists; give --replace/);
    expect(() => addUser(home, 'admin')).toThrow(/administrator/);
    const second = addUser(home, 'alice', { replace: true });
    const users = openUserStore(home);
    expect(users.authenticate(first.token)).toBeUndefined();
    expect(users.authenticate(second.token)?.name).toBe('alice');
  });

  it('a store that is already open sees a user given a new token or removed', () => {
    const users = openUserStore(home);
    const first = addUser(home, 'alice');
    expect(users.authenticate(first.token)?.name).toBe('alice');
    const second = addUser(home, 'alice', { replace: true });
    expect(users.authenticate(first.token)).toBeUndefined();
    expect(users.authenticate(second.token)?.name).toBe('alice');
    writeFileSync(join(home, 'users.json'), JSON.stringify({ version: 1, users: [] }));
    expect(users.authenticate(second.token)).toBeUndefined();
  });

  it.each(['', 'a b', 'x'.repeat(65), 'é', 'a/b', 'a\nb'])('refuses the name %j', (name) => {
    expect(() => addUser(home, name)).toThrow(/Invalid user name/);
  });

  it('accepts 64 characters of letters, digits, . _ -', () => {
    const name = `${'a'.repeat(60)}.-_9`;
    expect(addUser(home, name).user.name).toBe(name);
  });

  it('keeps the known users when users.json is broken', () => {
    const users = openUserStore(home);
    const { token } = addUser(home, 'alice');
    expect(users.authenticate(token)?.name).toBe('alice');
    writeFileSync(join(home, 'users.json'), '{ broken');
    expect(users.authenticate('other')).toBeUndefined();
    expect(users.authenticate(readToken(home))?.name).toBe('admin');
    expect(() => openUserStore(home)).toThrow(/Invalid JSON/);
  });

  it('staticUserStore() knows exactly its tokens', () => {
    const s = staticUserStore({ t1: { name: 'a', admin: false } });
    expect(s.authenticate('t1')?.name).toBe('a');
    expect(s.authenticate('t2')).toBeUndefined();
    expect(s.userOfDigest(createHash('sha256').update('t1').digest())?.name).toBe('a');
  });
});

// Web sign-in codes and sessions: one use, short life, revocable, and always
// checked against the device's current users.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { initHome, readToken } from '../config/home.js';
import { addUser, openUserStore, staticUserStore } from '../config/users.js';
import {
  MAX_CODES_PER_USER,
  MAX_SESSIONS_PER_USER,
  SESSION_TTL_MS,
  SIGNIN_CODE_TTL_MS,
  SessionStore,
} from './sessions.js';

const ALICE = { name: 'alice', admin: false };
const users = staticUserStore({
  'alice-token': ALICE,
  'bob-token': { name: 'bob', admin: false },
});

describe('SessionStore', () => {
  it('exchanges a code once for a session of the code’s user', () => {
    const s = new SessionStore(users);
    const { code, user } = s.createCode('alice-token');
    expect(user).toEqual(ALICE);
    const session = s.exchange(code);
    expect(session?.user).toEqual(ALICE);
    expect(s.authenticate(session?.token as string)).toEqual(ALICE);
    expect(s.exchange(code)).toBeUndefined();
    expect(s.exchange('not-a-code')).toBeUndefined();
    expect(s.authenticate(code)).toBeUndefined();
    expect(s.authenticate('')).toBeUndefined();
  });

  it('makes codes only for a user token, not for a session', () => {
    const s = new SessionStore(users);
    const session = s.exchange(s.createCode('alice-token').code)?.token as string;
    expect(() => s.createCode(session)).toThrow(/not valid/);
    expect(() => s.createCode('nope')).toThrow(/not valid/);
  });

  it('refuses an expired code and an expired session', () => {
    let now = 1_000_000;
    const s = new SessionStore(users, () => now);
    const late = s.createCode('alice-token');
    const { code } = s.createCode('alice-token');
    const session = s.exchange(code);
    now += SIGNIN_CODE_TTL_MS + 1;
    expect(s.exchange(late.code)).toBeUndefined();
    expect(s.authenticate(session?.token as string)).toEqual(ALICE);
    now += SESSION_TTL_MS;
    expect(s.authenticate(session?.token as string)).toBeUndefined();
  });

  it("a user at its cap of codes is refused, and no one else's codes or sessions go", () => {
    const s = new SessionStore(users);
    const bobCode = s.createCode('bob-token').code;
    const bobSession = s.exchange(s.createCode('bob-token').code)?.token as string;
    let made = 0;
    let refused = 0;
    for (let i = 0; i < 1100; i++) {
      try {
        s.createCode('alice-token');
        made++;
      } catch (err) {
        expect(err).toMatchObject({ code: 'TOO_MANY' });
        refused++;
      }
    }
    expect(made).toBe(MAX_CODES_PER_USER);
    expect(refused).toBe(1100 - MAX_CODES_PER_USER);
    expect(s.authenticate(bobSession)?.name).toBe('bob');
    expect(s.exchange(bobCode)?.user.name).toBe('bob');
  });

  it('a user at its cap of sessions is refused until one ends; the code stays usable', () => {
    const s = new SessionStore(users);
    const sessions: string[] = [];
    for (let i = 0; i < MAX_SESSIONS_PER_USER; i++) {
      sessions.push(s.exchange(s.createCode('alice-token').code)?.token as string);
    }
    const { code } = s.createCode('alice-token');
    expect(() => s.exchange(code)).toThrow(/50 web sessions, the most allowed: sign out/);
    const bob = s.exchange(s.createCode('bob-token').code);
    expect(bob?.user.name).toBe('bob');
    expect(sessions.every((t) => s.authenticate(t)?.name === 'alice')).toBe(true);
    s.revoke(sessions[0] as string);
    expect(s.exchange(code)?.user).toEqual(ALICE);
  });

  it('ends a session on sign-out', () => {
    const s = new SessionStore(users);
    const session = s.exchange(s.createCode('alice-token').code);
    expect(s.revoke(session?.token as string)).toBe(true);
    expect(s.authenticate(session?.token as string)).toBeUndefined();
    expect(s.revoke(session?.token as string)).toBe(false);
  });
});

describe('SessionStore over a home’s users', () => {
  let tmp: string;
  let home: string;
  beforeEach(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'lockstep-sessions-'));
    home = join(tmp, 'home');
    await initHome({ home, folder: join(tmp, 'f'), name: 'A' });
  });
  afterEach(() => rmSync(tmp, { recursive: true, force: true }));

  /** Rewrites users.json through `edit`. */
  const editUsers = (edit: (users: { name: string; admin: boolean }[]) => unknown[]) => {
    const file = join(home, 'users.json');
    const data = JSON.parse(readFileSync(file, 'utf8')) as {
      users: { name: string; admin: boolean }[];
    };
    writeFileSync(file, JSON.stringify({ ...data, users: edit(data.users) }));
  };

  it('a session follows its user: admin flag changed, user removed', () => {
    const { token } = addUser(home, 'alice');
    const s = new SessionStore(openUserStore(home));
    const session = s.exchange(s.createCode(token).code)?.token as string;
    const pending = s.createCode(token).code;
    expect(s.authenticate(session)).toEqual({ name: 'alice', admin: false });
    editUsers((us) => us.map((u) => ({ ...u, admin: true })));
    expect(s.authenticate(session)).toEqual({ name: 'alice', admin: true });
    editUsers((us) => us.filter((u) => u.name !== 'alice'));
    expect(s.authenticate(session)).toBeUndefined();
    expect(s.exchange(pending)).toBeUndefined();
  });

  it('a new token for the user ends its sessions', () => {
    const { token } = addUser(home, 'alice');
    const s = new SessionStore(openUserStore(home));
    const session = s.exchange(s.createCode(token).code)?.token as string;
    addUser(home, 'alice', { replace: true });
    expect(s.authenticate(session)).toBeUndefined();
  });

  it("a new administrator token file ends the administrator's sessions", () => {
    const s = new SessionStore(openUserStore(home));
    const session = s.exchange(s.createCode(readToken(home)).code)?.token as string;
    expect(s.authenticate(session)).toEqual({ name: 'admin', admin: true });
    writeFileSync(join(home, 'token'), 'a-new-administrator-token-0123456789\n');
    expect(s.authenticate(session)).toBeUndefined();
  });
});

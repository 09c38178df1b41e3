// Web sign-in codes and sessions: one use, short life, revocable.
import { describe, expect, it } from 'vitest';
import { SESSION_TTL_MS, SIGNIN_CODE_TTL_MS, SessionStore } from './sessions.js';

const ALICE = { name: 'alice', admin: false };

describe('SessionStore', () => {
  it('exchanges a code once for a session of the code’s user', () => {
    const s = new SessionStore();
    const { code } = s.createCode(ALICE);
    const session = s.exchange(code);
    expect(session?.user).toEqual(ALICE);
    expect(s.authenticate(session?.token as string)).toEqual(ALICE);
    expect(s.exchange(code)).toBeUndefined();
    expect(s.exchange('not-a-code')).toBeUndefined();
    expect(s.authenticate(code)).toBeUndefined();
    expect(s.authenticate('')).toBeUndefined();
  });

  it('refuses an expired code and an expired session', () => {
    let now = 1_000_000;
    const s = new SessionStore(() => now);
    const late = s.createCode(ALICE);
    const { code } = s.createCode(ALICE);
    const session = s.exchange(code);
    now += SIGNIN_CODE_TTL_MS + 1;
    expect(s.exchange(late.code)).toBeUndefined();
    expect(s.authenticate(session?.token as string)).toEqual(ALICE);
    now += SESSION_TTL_MS;
    expect(s.authenticate(session?.token as string)).toBeUndefined();
  });

  it('ends a session on sign-out', () => {
    const s = new SessionStore();
    const session = s.exchange(s.createCode(ALICE).code);
    expect(s.revoke(session?.token as string)).toBe(true);
    expect(s.authenticate(session?.token as string)).toBeUndefined();
    expect(s.revoke(session?.token as string)).toBe(false);
  });
});

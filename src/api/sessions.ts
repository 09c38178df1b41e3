/**
 * Web page sign-in: one-time sign-in codes (what `lockstep open` prints in a
 * link) and the session tokens they are exchanged for. A code works once and
 * only for a few minutes; a session acts as the user who asked for the code
 * and lasts until it expires, is signed out, or the device restarts (both
 * live only in memory). Only SHA-256 digests are kept, compared in constant
 * time.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { User } from './backend.js';

/** How long a sign-in code works, in milliseconds. */
export const SIGNIN_CODE_TTL_MS = 10 * 60_000;
/** How long a web session lasts, in milliseconds. */
export const SESSION_TTL_MS = 24 * 3600_000;
/** Most codes and sessions kept at once (the oldest go first). */
const MAX_ENTRIES = 1000;

/** A code or session: the digest of its secret, its user and its expiry. */
interface Entry {
  readonly hash: Buffer;
  readonly user: User;
  readonly expiresMs: number;
}

/** SHA-256 of a secret. */
function digest(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest();
}

/** Finds the live entry whose secret is `secret`, comparing with every entry in constant time. */
function find(entries: readonly Entry[], secret: string, nowMs: number): Entry | undefined {
  const hash = digest(secret);
  let found: Entry | undefined;
  for (const e of entries) {
    if (timingSafeEqual(e.hash, hash) && found === undefined && e.expiresMs > nowMs) found = e;
  }
  return found;
}

/** A new random secret: 32 bytes, base64url. */
function newSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** One-time sign-in codes and the web sessions made from them. */
export class SessionStore {
  private codes: Entry[] = [];
  private sessions: Entry[] = [];

  constructor(private readonly now: () => number = Date.now) {}

  /** Drops expired entries and, past the limit, the oldest. */
  private prune(): void {
    const t = this.now();
    this.codes = this.codes.filter((e) => e.expiresMs > t).slice(-MAX_ENTRIES);
    this.sessions = this.sessions.filter((e) => e.expiresMs > t).slice(-MAX_ENTRIES);
  }

  /** A new one-time sign-in code for `user`. */
  createCode(user: User): { code: string; expires: string } {
    this.prune();
    const code = newSecret();
    const expiresMs = this.now() + SIGNIN_CODE_TTL_MS;
    this.codes.push({ hash: digest(code), user, expiresMs });
    return { code, expires: new Date(expiresMs).toISOString() };
  }

  /**
   * Exchanges a sign-in code for a session token of the code's user; the code
   * is used up. Undefined for an unknown, used or expired code.
   */
  exchange(code: string): { token: string; user: User; expires: string } | undefined {
    this.prune();
    const entry = find(this.codes, code, this.now());
    if (entry === undefined) return undefined;
    this.codes = this.codes.filter((e) => e !== entry);
    const token = newSecret();
    const expiresMs = this.now() + SESSION_TTL_MS;
    this.sessions.push({ hash: digest(token), user: entry.user, expiresMs });
    return { token, user: entry.user, expires: new Date(expiresMs).toISOString() };
  }

  /** The user of a live session token, or undefined. */
  authenticate(token: string): User | undefined {
    if (token === '') return undefined;
    return find(this.sessions, token, this.now())?.user;
  }

  /** Ends the session of `token`; true if there was one. */
  revoke(token: string): boolean {
    const entry = find(this.sessions, token, this.now());
    if (entry === undefined) return false;
    this.sessions = this.sessions.filter((e) => e !== entry);
    return true;
  }
}

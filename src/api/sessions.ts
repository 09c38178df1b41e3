/**
 * Web page sign-in: one-time sign-in codes (what `lockstep open` prints in a
 * link) and the session tokens they are exchanged for. A code works once and
 * only for a few minutes; a session lasts until it expires, is signed out, or
 * the device restarts (both live only in memory). Only a user token (not a
 * session) makes codes and sessions. A code or session keeps its user's name
 * and the SHA-256 of the user token it came from, and is checked against the
 * current users on every use: removing the user, giving it a new token or
 * rotating the administrator's token file ends its sessions, and a changed
 * admin flag applies at once. Each user has at most {@link MAX_CODES_PER_USER}
 * codes and {@link MAX_SESSIONS_PER_USER} sessions; past that, new ones are
 * refused (never someone else's dropped). Only SHA-256 digests are kept,
 * compared in constant time.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { LockstepError } from '../base/errors.js';
import type { UserStore } from '../config/users.js';
import type { SignInCode, User, WebSession } from './backend.js';

/** How long a sign-in code works, in milliseconds. */
export const SIGNIN_CODE_TTL_MS = 10 * 60_000;
/** How long a web session lasts, in milliseconds. */
export const SESSION_TTL_MS = 24 * 3600_000;
/** Most unused sign-in codes one user may have. */
export const MAX_CODES_PER_USER = 20;
/** Most web sessions one user may have. */
export const MAX_SESSIONS_PER_USER = 50;

/** A code or session: the digest of its secret, its user and its expiry. */
interface Entry {
  readonly hash: Buffer;
  /** The user's name. */
  readonly name: string;
  /** SHA-256 of the user token the entry was made with. */
  readonly userTokenHash: Buffer;
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

  /** @param users - the device's users, asked again on every use of a code or session */
  constructor(
    private readonly users: UserStore,
    private readonly now: () => number = Date.now,
  ) {}

  /** Drops expired entries. */
  private prune(): void {
    const t = this.now();
    this.codes = this.codes.filter((e) => e.expiresMs > t);
    this.sessions = this.sessions.filter((e) => e.expiresMs > t);
  }

  /** The current user of an entry: undefined once its token no longer belongs to that user. */
  private userOf(e: Entry): User | undefined {
    const user = this.users.userOfDigest(e.userTokenHash);
    return user?.name === e.name ? user : undefined;
  }

  /**
   * The user of `userToken`, which must be a user token, not a session.
   *
   * @throws LockstepError `UNAUTHORIZED` for a token that is no user's
   */
  private userOfToken(userToken: string): User {
    const user = this.users.authenticate(userToken);
    if (user === undefined) {
      throw new LockstepError('UNAUTHORIZED', 'The bearer token is not valid on this device');
    }
    return user;
  }

  /** Refuses a new entry for `name` when it has `max` already; `hint` says what to do. */
  private checkCap(
    entries: readonly Entry[],
    name: string,
    max: number,
    what: string,
    hint: string,
  ): void {
    if (entries.filter((e) => e.name === name).length >= max) {
      throw new LockstepError(
        'TOO_MANY',
        `The user ${name} has ${max} ${what}, the most allowed: ${hint}`,
      );
    }
  }

  /** A new session of `user`, made with the user token whose digest is `userTokenHash`. */
  private addSession(user: User, userTokenHash: Buffer): WebSession {
    this.checkCap(
      this.sessions,
      user.name,
      MAX_SESSIONS_PER_USER,
      'web sessions',
      'sign out of some, or wait until they expire (24 hours after they began)',
    );
    const token = newSecret();
    const expiresMs = this.now() + SESSION_TTL_MS;
    this.sessions.push({ hash: digest(token), name: user.name, userTokenHash, expiresMs });
    return { token, user, expires: new Date(expiresMs).toISOString() };
  }

  /**
   * A new one-time sign-in code for the user of `userToken`.
   *
   * @throws LockstepError `UNAUTHORIZED` if `userToken` is not a user token,
   *   `TOO_MANY` if the user has {@link MAX_CODES_PER_USER} unused codes
   */
  createCode(userToken: string): SignInCode {
    this.prune();
    const user = this.userOfToken(userToken);
    this.checkCap(
      this.codes,
      user.name,
      MAX_CODES_PER_USER,
      'unused sign-in codes',
      'use one, or wait until they expire (10 minutes after they were made)',
    );
    const code = newSecret();
    const expiresMs = this.now() + SIGNIN_CODE_TTL_MS;
    this.codes.push({
      hash: digest(code),
      name: user.name,
      userTokenHash: digest(userToken),
      expiresMs,
    });
    return { code, expires: new Date(expiresMs).toISOString(), user };
  }

  /**
   * A new web session of the user of `userToken` (what the page makes of a
   * pasted token, so that it never keeps the token itself).
   *
   * @throws LockstepError `UNAUTHORIZED` if `userToken` is not a user token,
   *   `TOO_MANY` if the user has {@link MAX_SESSIONS_PER_USER} sessions
   */
  createSession(userToken: string): WebSession {
    this.prune();
    return this.addSession(this.userOfToken(userToken), digest(userToken));
  }

  /**
   * Exchanges a sign-in code for a session token of the code's user; the code
   * is used up. Undefined for an unknown, used or expired code, or one whose
   * user's token changed since.
   *
   * @throws LockstepError `TOO_MANY` if the user has {@link MAX_SESSIONS_PER_USER}
   *   sessions (the code stays usable)
   */
  exchange(code: string): WebSession | undefined {
    this.prune();
    const entry = find(this.codes, code, this.now());
    if (entry === undefined) return undefined;
    const user = this.userOf(entry);
    if (user === undefined) {
      this.codes = this.codes.filter((e) => e !== entry);
      return undefined;
    }
    const session = this.addSession(user, entry.userTokenHash);
    this.codes = this.codes.filter((e) => e !== entry);
    return session;
  }

  /** The current user of a live session token, or undefined. */
  authenticate(token: string): User | undefined {
    if (token === '') return undefined;
    const entry = find(this.sessions, token, this.now());
    return entry === undefined ? undefined : this.userOf(entry);
  }

  /** Ends the session of `token`; true if there was one. */
  revoke(token: string): boolean {
    const entry = find(this.sessions, token, this.now());
    if (entry === undefined) return false;
    this.sessions = this.sessions.filter((e) => e !== entry);
    return true;
  }
}

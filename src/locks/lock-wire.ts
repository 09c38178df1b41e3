/**
 * Lock messages between devices, checked at the wire like index records:
 * the lock stream (a snapshot, then changes) and forwarded lock requests.
 * The lock modules own their messages; the peer server and link carry them
 * without looking inside (peer imports locks, never the other way).
 */
import { LockstepError } from '../base/errors.js';
import { parseDeviceId } from '../core/device-id.js';
import type { LockRow, LockScope } from '../core/lock-rules.js';
import { peerPathProblem } from '../core/path.js';

/**
 * A change to the lock table: `refreshed` is a holder extending its TTL
 * lock's expiry (the same lock, the same token); `dropped` is a lock that
 * ended because its holder deleted the file; `moved` is a lock that follows
 * its holder's rename of the file (the same lock and token, at a new path).
 */
export type LockChangeType =
  'locked' | 'unlocked' | 'expired' | 'forced' | 'refreshed' | 'dropped' | 'moved';

/** A change, as announced to peers and clients. */
export interface LockChange {
  readonly type: LockChangeType;
  readonly lock: LockRow;
  /** Who forced an unlock. */
  readonly by?: string;
  /** Where a moved lock was before. */
  readonly from?: string;
}

/** Messages of the lock stream. */
export type LockStreamMessage =
  | { readonly type: 'locks'; readonly locks: readonly LockRow[] }
  | { readonly type: 'change'; readonly change: LockChange };

/** A lock, unlock or refresh forwarded to the authority. */
export type LockRequest =
  | {
      readonly op: 'lock';
      readonly path: string;
      readonly owner: string;
      readonly device: string;
      readonly ttlMs?: number;
      readonly reason?: string;
    }
  | {
      readonly op: 'unlock';
      readonly path: string;
      readonly user: string;
      readonly admin: boolean;
      readonly force: boolean;
      /** The holder deleted the file: the lock ends with it (announced as `dropped`). */
      readonly dropped?: boolean;
    }
  | {
      /** The holder renamed the file: its lock `id` follows it to `to`. */
      readonly op: 'move';
      readonly path: string;
      readonly to: string;
      readonly id: string;
      readonly user: string;
    }
  | {
      readonly op: 'refresh';
      readonly path: string;
      readonly id: string;
      readonly user: string;
      readonly ttlMs: number;
    };

const USER_RE = /^[A-Za-z0-9._-]{1,64}$/;
const ID_RE = /^[A-Za-z0-9_-]{1,64}$/;
const MAX_REASON = 1000;
const CHANGE_TYPES: readonly string[] = [
  'locked',
  'unlocked',
  'expired',
  'forced',
  'refreshed',
  'dropped',
  'moved',
];

const bad = (what: string) => new LockstepError('PEER_INVALID', `Peer lock message: ${what}`);

function obj(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw bad(`${what} must be an object`);
  return v as Record<string, unknown>;
}

function path(v: unknown): string {
  if (typeof v !== 'string') throw bad('path must be a string');
  const p = peerPathProblem(v);
  if (p !== undefined) throw bad(`path ${JSON.stringify(v.slice(0, 200))}: ${p}`);
  return v;
}

function user(v: unknown, what: string): string {
  if (typeof v !== 'string' || !USER_RE.test(v)) throw bad(`${what} must be a user name`);
  return v;
}

function device(v: unknown): string {
  if (typeof v !== 'string') throw bad('device must be a device ID');
  try {
    if (parseDeviceId(v) === v) return v;
  } catch {
    // below
  }
  throw bad('device must be a device ID');
}

function time(v: unknown, what: string): number {
  if (!Number.isSafeInteger(v) || (v as number) < 0) throw bad(`${what} must be a time in ms`);
  return v as number;
}

function reason(v: unknown): string {
  if (typeof v !== 'string' || v.length > MAX_REASON || /\p{Cc}/u.test(v)) {
    throw bad(`reason must be text of at most ${MAX_REASON} characters`);
  }
  return v;
}

function lockId(v: unknown): string {
  if (typeof v !== 'string' || !ID_RE.test(v)) throw bad('lock id is malformed');
  return v;
}

function ttl(v: unknown): number {
  if (!Number.isSafeInteger(v) || (v as number) < 1) {
    throw bad('ttlMs must be a positive whole number');
  }
  return v as number;
}

function scope(v: unknown): LockScope {
  if (v === undefined) return 'file'; // a Lockstep before directory locks
  if (v !== 'file' && v !== 'directory') throw bad('scope must be file or directory');
  return v;
}

/**
 * Checks a lock received from a peer. A lock from a Lockstep that had no
 * fencing tokens yet has none: it gets token 0, below every token granted.
 * One from before directory locks has no scope: it is a file lock.
 */
export function decodeLock(v: unknown): LockRow {
  const o = obj(v, 'lock');
  const id = lockId(o.id);
  if (o.token !== undefined && (!Number.isSafeInteger(o.token) || (o.token as number) < 0)) {
    throw bad('token must be a whole number');
  }
  return {
    path: path(o.path),
    id,
    owner: user(o.owner, 'owner'),
    device: device(o.device),
    createdMs: time(o.createdMs, 'createdMs'),
    expiresMs: o.expiresMs === null ? null : time(o.expiresMs, 'expiresMs'),
    reason: reason(o.reason),
    token: (o.token as number | undefined) ?? 0,
    scope: scope(o.scope),
  };
}

/** Checks a message of the lock stream. */
export function decodeLockStream(v: unknown): LockStreamMessage {
  const o = obj(v, 'message');
  if (o.type === 'locks') {
    if (!Array.isArray(o.locks) || o.locks.length > 1_000_000) throw bad('locks must be a list');
    return { type: 'locks', locks: o.locks.map(decodeLock) };
  }
  if (o.type === 'change') {
    const c = obj(o.change, 'change');
    if (typeof c.type !== 'string' || !CHANGE_TYPES.includes(c.type)) {
      throw bad('change type is unknown');
    }
    const change: LockChange = {
      type: c.type as LockChangeType,
      lock: decodeLock(c.lock),
      ...(c.by === undefined ? {} : { by: user(c.by, 'by') }),
      ...(c.from === undefined ? {} : { from: path(c.from) }),
    };
    return { type: 'change', change };
  }
  throw bad('unknown message type');
}

/** Checks a lock request forwarded by a peer. */
export function decodeLockRequest(v: unknown): LockRequest {
  const o = obj(v, 'request');
  if (o.op === 'lock') {
    return {
      op: 'lock',
      path: path(o.path),
      owner: user(o.owner, 'owner'),
      device: device(o.device),
      ...(o.ttlMs === undefined ? {} : { ttlMs: ttl(o.ttlMs) }),
      ...(o.reason === undefined ? {} : { reason: reason(o.reason) }),
    };
  }
  if (o.op === 'unlock') {
    if (typeof o.admin !== 'boolean' || typeof o.force !== 'boolean') {
      throw bad('admin and force must be true or false');
    }
    if (o.dropped !== undefined && o.dropped !== true) throw bad('dropped must be true if given');
    return {
      op: 'unlock',
      path: path(o.path),
      user: user(o.user, 'user'),
      admin: o.admin,
      force: o.force,
      ...(o.dropped === true ? { dropped: true } : {}),
    };
  }
  if (o.op === 'move') {
    return {
      op: 'move',
      path: path(o.path),
      to: path(o.to),
      id: lockId(o.id),
      user: user(o.user, 'user'),
    };
  }
  if (o.op === 'refresh') {
    return {
      op: 'refresh',
      path: path(o.path),
      id: lockId(o.id),
      user: user(o.user, 'user'),
      ttlMs: ttl(o.ttlMs),
    };
  }
  throw bad('op must be lock, unlock, refresh or move');
}

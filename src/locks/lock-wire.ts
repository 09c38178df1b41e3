/**
 * Lock messages between devices, checked at the wire like index records:
 * the lock stream (a snapshot, then changes) and forwarded lock requests.
 */
import { LockstepError } from '../base/errors.js';
import { parseDeviceId } from '../core/device-id.js';
import { peerPathProblem } from '../peer/wire.js';
import type { LockRow } from './lock-table.js';

/** A change to the lock table. */
export type LockChangeType = 'locked' | 'unlocked' | 'expired' | 'forced';

/** A change, as announced to peers and clients. */
export interface LockChange {
  readonly type: LockChangeType;
  readonly lock: LockRow;
  /** Who forced an unlock. */
  readonly by?: string;
}

/** Messages of the lock stream. */
export type LockStreamMessage =
  | { readonly type: 'locks'; readonly locks: readonly LockRow[] }
  | { readonly type: 'change'; readonly change: LockChange };

/** A lock or unlock forwarded to the authority. */
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
    };

const USER_RE = /^[A-Za-z0-9._-]{1,64}$/;
const ID_RE = /^[A-Za-z0-9_-]{1,64}$/;
const MAX_REASON = 1000;
const CHANGE_TYPES: readonly string[] = ['locked', 'unlocked', 'expired', 'forced'];

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

/** Checks a lock received from a peer. */
export function decodeLock(v: unknown): LockRow {
  const o = obj(v, 'lock');
  if (typeof o.id !== 'string' || !ID_RE.test(o.id)) throw bad('lock id is malformed');
  return {
    path: path(o.path),
    id: o.id,
    owner: user(o.owner, 'owner'),
    device: device(o.device),
    createdMs: time(o.createdMs, 'createdMs'),
    expiresMs: o.expiresMs === null ? null : time(o.expiresMs, 'expiresMs'),
    reason: reason(o.reason),
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
    };
    return { type: 'change', change };
  }
  throw bad('unknown message type');
}

/** Checks a lock request forwarded by a peer. */
export function decodeLockRequest(v: unknown): LockRequest {
  const o = obj(v, 'request');
  if (o.op === 'lock') {
    if (o.ttlMs !== undefined && (!Number.isSafeInteger(o.ttlMs) || (o.ttlMs as number) < 1)) {
      throw bad('ttlMs must be a positive whole number');
    }
    return {
      op: 'lock',
      path: path(o.path),
      owner: user(o.owner, 'owner'),
      device: device(o.device),
      ...(o.ttlMs === undefined ? {} : { ttlMs: o.ttlMs as number }),
      ...(o.reason === undefined ? {} : { reason: reason(o.reason) }),
    };
  }
  if (o.op === 'unlock') {
    if (typeof o.admin !== 'boolean' || typeof o.force !== 'boolean') {
      throw bad('admin and force must be true or false');
    }
    return {
      op: 'unlock',
      path: path(o.path),
      user: user(o.user, 'user'),
      admin: o.admin,
      force: o.force,
    };
  }
  throw bad('op must be lock or unlock');
}

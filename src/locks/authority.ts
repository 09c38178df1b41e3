/**
 * The lock authority: the one place that grants locks, so two clients can
 * never both hold one. Today it is a device of the cluster, reached either
 * here ({@link EmbeddedAuthority}, this device's SQLite table) or through
 * the peer link ({@link ForwardedAuthority}); an authority kept elsewhere
 * (etcd) is a third implementation of this interface and nothing else
 * changes: the replica follows its stream, enforcement follows the replica.
 */
import type { LockRow } from '../core/lock-rules.js';
import type { LockStreamMessage } from './lock-wire.js';

/** A request to lock `path` for `owner`, whose client is connected to `device`. */
export interface GrantRequest {
  readonly path: string;
  readonly owner: string;
  /** Full ID of the device the owner's client used. */
  readonly device: string;
  /** Expiry, from the grant; none if undefined. */
  readonly ttlMs?: number | undefined;
  readonly reason?: string | undefined;
}

/** A request to unlock `path` for `user`; an administrator may `force` another user's lock. */
export interface ReleaseRequest {
  readonly path: string;
  readonly user: string;
  readonly admin: boolean;
  readonly force: boolean;
  /** The holder deleted the file: the lock ends with it, announced as `dropped`. */
  readonly dropped?: boolean | undefined;
}

/** A request by a lock's holder to move its lock `id` on `path` to `to` (the file was renamed). */
export interface MoveRequest {
  readonly path: string;
  readonly to: string;
  readonly id: string;
  readonly user: string;
}

/** A request by a lock's holder to extend its expiry to `ttlMs` from now. */
export interface RefreshRequest {
  readonly path: string;
  /** The lock being extended: a lock granted again meanwhile is another one. */
  readonly id: string;
  readonly user: string;
  readonly ttlMs: number;
}

/** What a release did: the lock that ended, and whether it was forced by someone else. */
export interface Released {
  readonly lock: LockRow;
  readonly forced: boolean;
}

/**
 * One lock authority. Every grant carries a fencing token larger than any
 * before it. Failures are `LockstepError`s with the code clients see:
 * `LOCKED`, `NOT_FOUND`, `NOT_A_FILE`, `NOT_LOCK_OWNER`, and
 * `AUTHORITY_UNREACHABLE` when the authority cannot be asked.
 */
export interface LockAuthority {
  /** Grants a lock, or fails naming the holder. */
  grant(req: GrantRequest): Promise<LockRow>;
  /** Ends a lock: by its owner, or forced by an administrator. */
  release(req: ReleaseRequest): Promise<Released>;
  /** Extends a TTL lock's expiry, for its holder; the token stays. */
  refresh(req: RefreshRequest): Promise<LockRow>;
  /**
   * Moves a lock to the path its file was renamed to, for its holder; the
   * lock's ID and token stay. (An authority without it: the lock ends.)
   */
  move?(req: MoveRequest): Promise<LockRow>;
  /** Every lock the authority holds (as far as this device has heard, for a remote one). */
  list(): Promise<readonly LockRow[]>;
  /**
   * Follows the authority's table: `fn` gets a snapshot (`locks`) whenever
   * one is known or comes anew, and each change after it.
   *
   * @returns stops following
   */
  subscribe(fn: (message: LockStreamMessage) => void): () => void;
}

/**
 * The lock authority kept in this device's SQLite table: checks the rules
 * of granting, releasing and refreshing in one durable transaction each,
 * hands out fencing tokens, and releases expired locks on an injected clock.
 */
import { randomBytes } from 'node:crypto';
import type { Clock, Timer } from '../base/clock.js';
import { LockstepError, errorMessage } from '../base/errors.js';
import type { Logger } from '../base/log.js';
import { checkRelease, type LockRow, type LockScope } from '../core/lock-rules.js';
import { conflictMessage, conflictingLock, scopeOf } from '../core/lock-scope.js';
import type {
  GrantRequest,
  LockAuthority,
  MoveRequest,
  RefreshRequest,
  ReleaseRequest,
  Released,
} from './authority.js';
import type { LockChange, LockRequest, LockStreamMessage } from './lock-wire.js';

/**
 * What the embedded authority needs of the lock table (the store's
 * `LockTable` is one): reads, writes, and a durable transaction to run the
 * rules in.
 */
export interface LockTableStore {
  /** Runs `fn` in one durable transaction; if it throws, nothing of it stays. */
  durably<T>(fn: () => T): T;
  get(path: string): LockRow | undefined;
  all(): LockRow[];
  put(lock: LockRow): void;
  remove(path: string): void;
  /** Locks whose expiry is at or before `now`. */
  expiredBy(now: number): LockRow[];
  /** The earliest expiry, or undefined. */
  nextExpiry(): number | undefined;
  /** Takes the next fencing token (inside {@link durably}). */
  takeToken(): number;
}

/** Options of an {@link EmbeddedAuthority}. */
export interface EmbeddedAuthorityOptions {
  readonly table: LockTableStore;
  readonly clock: Clock;
  readonly log: Logger;
  /**
   * The scope a lock on `path` takes: a live file in the global view is
   * locked as a file, a live directory as a directory.
   *
   * @throws LockstepError NOT_FOUND, or NOT_A_FILE for anything else
   */
  checkLockable(path: string): LockScope;
  deviceName(id: string): string;
}

/** The lock table of this device, as the cluster's authority. */
export class EmbeddedAuthority implements LockAuthority {
  private readonly listeners = new Set<(m: LockStreamMessage) => void>();
  private expiryTimer: Timer | undefined;
  private expiring = false;
  /** The device the authority is being handed to: nothing is granted or released meanwhile. */
  private movingTo: string | undefined;

  constructor(private readonly o: EmbeddedAuthorityOptions) {}

  grant(req: GrantRequest): Promise<LockRow> {
    return settle(() => this.grantNow(req));
  }

  release(req: ReleaseRequest): Promise<Released> {
    return settle(() => this.releaseNow(req));
  }

  refresh(req: RefreshRequest): Promise<LockRow> {
    return settle(() => this.refreshNow(req));
  }

  list(): Promise<readonly LockRow[]> {
    return Promise.resolve(this.o.table.all());
  }

  subscribe(fn: (message: LockStreamMessage) => void): () => void {
    this.listeners.add(fn);
    fn({ type: 'locks', locks: this.o.table.all() });
    return () => this.listeners.delete(fn);
  }

  /** The lock on `path` in this table now, if any. */
  current(path: string): LockRow | undefined {
    return this.o.table.get(path);
  }

  /**
   * Executes a request at once (a peer's forwarded request, or a local
   * client's): the peer server answers with the lock it returns.
   *
   * @throws LockstepError with the code clients see
   */
  handle(req: LockRequest): LockRow {
    if (req.op === 'lock') return this.grantNow(req);
    if (req.op === 'refresh') return this.refreshNow(req);
    if (req.op === 'move') return this.moveNow(req);
    return this.releaseNow(req).lock;
  }

  /** Stops granting, releasing and refreshing while the table is handed to `to` (undefined: resumes). */
  pause(to: string | undefined): void {
    this.movingTo = to;
  }

  private checkNotMoving(): void {
    if (this.movingTo === undefined) return;
    throw new LockstepError(
      'AUTHORITY_UNREACHABLE',
      `The lock authority is moving to ${this.o.deviceName(this.movingTo)} right now; try again in a moment`,
    );
  }

  /** Starts releasing expired locks (while this device is the authority). */
  startExpiry(): void {
    this.expiring = true;
    this.armExpiry();
  }

  /** Stops releasing expired locks (this device is no longer the authority, or closes). */
  stopExpiry(): void {
    this.expiring = false;
    this.expiryTimer?.cancel();
    this.expiryTimer = undefined;
  }

  private grantNow(req: GrantRequest): LockRow {
    this.checkNotMoving();
    const scope = this.o.checkLockable(req.path);
    const now = this.o.clock.now();
    const { lock, expired } = this.o.table.durably(() => {
      const gone: LockRow[] = [];
      for (;;) {
        const held = conflictingLock({ path: req.path, scope }, this.o.table.all());
        if (held === undefined) break;
        if (held.expiresMs === null || held.expiresMs > now) {
          throw new LockstepError(
            'LOCKED',
            conflictMessage({ path: req.path, scope }, held, (id) => this.o.deviceName(id)),
          );
        }
        this.o.table.remove(held.path);
        gone.push(held);
      }
      const granted: LockRow = {
        path: req.path,
        id: randomBytes(12).toString('base64url'),
        owner: req.owner,
        device: req.device,
        createdMs: now,
        expiresMs: req.ttlMs === undefined ? null : now + req.ttlMs,
        reason: req.reason ?? '',
        token: this.o.table.takeToken(),
        scope,
      };
      this.o.table.put(granted);
      return { lock: granted, expired: gone };
    });
    for (const l of expired) this.announce({ type: 'expired', lock: l });
    this.announce({ type: 'locked', lock });
    this.armExpiry();
    return lock;
  }

  private releaseNow(req: ReleaseRequest): Released {
    this.checkNotMoving();
    const lock = this.o.table.durably(() => {
      const held = this.o.table.get(req.path);
      if (held === undefined) throw new LockstepError('NOT_FOUND', `${req.path} is not locked`);
      checkRelease(held, req);
      this.o.table.remove(req.path);
      return held;
    });
    const forced = lock.owner !== req.user;
    this.announce(
      forced
        ? { type: 'forced', lock, by: req.user }
        : { type: req.dropped === true ? 'dropped' : 'unlocked', lock },
    );
    this.armExpiry();
    return { lock, forced };
  }

  move(req: MoveRequest): Promise<LockRow> {
    return settle(() => this.moveNow(req));
  }

  private moveNow(req: MoveRequest): LockRow {
    this.checkNotMoving();
    const { moved, from } = this.o.table.durably(() => {
      const held = this.o.table.get(req.path);
      if (held?.id !== req.id) {
        throw new LockstepError('NOT_FOUND', `${req.path} is not locked by that lock any more`);
      }
      if (held.owner !== req.user) {
        throw new LockstepError(
          'NOT_LOCK_OWNER',
          `${req.path} is locked by ${held.owner}, not ${req.user}; only ${held.owner} can move it`,
        );
      }
      const others = this.o.table.all().filter((l) => l.id !== held.id);
      const want = { path: req.to, scope: scopeOf(held) };
      const inTheWay = conflictingLock(want, others);
      if (inTheWay !== undefined) {
        throw new LockstepError(
          'LOCKED',
          conflictMessage(want, inTheWay, (id) => this.o.deviceName(id)),
        );
      }
      this.o.table.remove(held.path);
      const next: LockRow = { ...held, path: req.to };
      this.o.table.put(next);
      return { moved: next, from: held.path };
    });
    this.announce({ type: 'moved', lock: moved, from });
    return moved;
  }

  private refreshNow(req: RefreshRequest): LockRow {
    this.checkNotMoving();
    const now = this.o.clock.now();
    const lock = this.o.table.durably(() => {
      const held = this.o.table.get(req.path);
      if (held?.id !== req.id || (held.expiresMs !== null && held.expiresMs <= now)) {
        throw new LockstepError('NOT_FOUND', `${req.path} is not locked by that lock any more`);
      }
      if (held.owner !== req.user) {
        throw new LockstepError(
          'NOT_LOCK_OWNER',
          `${req.path} is locked by ${held.owner}, not ${req.user}; only ${held.owner} can extend it`,
        );
      }
      if (held.expiresMs === null) return held;
      const longer: LockRow = { ...held, expiresMs: now + req.ttlMs };
      this.o.table.put(longer);
      return longer;
    });
    this.announce({ type: 'refreshed', lock });
    this.armExpiry();
    return lock;
  }

  private announce(change: LockChange): void {
    for (const fn of this.listeners) fn({ type: 'change', change });
  }

  /** Sets the timer for the next expiry; each expired lock is released and announced. */
  private armExpiry(): void {
    this.expiryTimer?.cancel();
    this.expiryTimer = undefined;
    if (!this.expiring) return;
    const next = this.o.table.nextExpiry();
    if (next === undefined) return;
    this.expiryTimer = this.o.clock.after(next - this.o.clock.now(), () => {
      this.expiryTimer = undefined;
      if (this.movingTo !== undefined) {
        // Expired locks go after the handover, by whichever device is the authority then.
        this.expiryTimer = this.o.clock.after(100, () => this.armExpiry());
        return;
      }
      try {
        const now = this.o.clock.now();
        const gone = this.o.table.durably(() => {
          const expired = this.o.table.expiredBy(now);
          for (const l of expired) this.o.table.remove(l.path);
          return expired;
        });
        for (const lock of gone) {
          this.o.log.info({ path: lock.path, owner: lock.owner }, `lock on ${lock.path} expired`);
          this.announce({ type: 'expired', lock });
        }
      } catch (err) {
        this.o.log.error({ err: errorMessage(err) }, 'expiring locks failed');
      }
      this.armExpiry();
    });
  }
}

/** Runs `fn` now and returns its result or failure as a promise. */
function settle<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (err) {
    return Promise.reject(err as Error);
  }
}

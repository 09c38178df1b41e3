/**
 * The lock table in the device's SQLite database: authoritative on the lock
 * authority, a replica everywhere else. Granting and releasing check the
 * rules in one transaction, so two requests can never both win.
 */
import { randomBytes } from 'node:crypto';
import type Database from 'better-sqlite3';
import { LockstepError } from '../base/errors.js';

/** One lock. */
export interface LockRow {
  readonly path: string;
  readonly id: string;
  readonly owner: string;
  /** Full ID of the device the owner's client used. */
  readonly device: string;
  readonly createdMs: number;
  readonly expiresMs: number | null;
  readonly reason: string;
}

/** A request to lock. */
export interface GrantRequest {
  readonly path: string;
  readonly owner: string;
  readonly device: string;
  readonly ttlMs?: number | undefined;
  readonly reason?: string | undefined;
}

interface Row {
  path: string;
  id: string;
  owner: string;
  device: string;
  created_ms: number;
  expires_ms: number | null;
  reason: string;
}

const fromRow = (r: Row): LockRow => ({
  path: r.path,
  id: r.id,
  owner: r.owner,
  device: r.device,
  createdMs: r.created_ms,
  expiresMs: r.expires_ms,
  reason: r.reason,
});

/** Says who holds a lock and since when, for error messages. */
export function describeHolder(l: LockRow, deviceName: (id: string) => string): string {
  return `${l.owner}@${deviceName(l.device)} since ${new Date(l.createdMs).toISOString()}`;
}

/**
 * The lock table. Reads come from a copy in memory (planning a sync asks
 * for the lock of every path it touches); this object is the table's only
 * writer, and every change goes to SQLite first. Its writes run in
 * transactions of its own, never inside a caller's: a caller's rollback
 * would leave the copy ahead of the file.
 */
export class LockTable {
  private readonly stmts;
  private readonly held = new Map<string, LockRow>();

  /**
   * Runs a change of the lock table durably: the index runs with
   * `synchronous = NORMAL` (a scan finds lost index changes again on disk),
   * but a granted lock that a power cut undid could be granted twice.
   */
  private durably<T>(fn: () => T): T {
    this.db.pragma('synchronous = FULL');
    try {
      return this.inTransaction(fn);
    } finally {
      this.db.pragma('synchronous = NORMAL');
    }
  }

  /** Runs `fn` in a transaction; if it rolls back, the copy in memory is read again. */
  private inTransaction<T>(fn: () => T): T {
    try {
      return this.db.transaction(fn)();
    } catch (err) {
      this.reload();
      throw err;
    }
  }

  private reload(): void {
    this.held.clear();
    for (const l of this.all()) this.held.set(l.path, l);
  }

  constructor(private readonly db: Database.Database) {
    this.stmts = {
      all: db.prepare('SELECT * FROM locks ORDER BY path'),
      put: db.prepare(
        `INSERT INTO locks (path, id, owner, device, created_ms, expires_ms, reason)
         VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (path) DO UPDATE SET id = excluded.id, owner = excluded.owner,
           device = excluded.device, created_ms = excluded.created_ms,
           expires_ms = excluded.expires_ms, reason = excluded.reason`,
      ),
      remove: db.prepare('DELETE FROM locks WHERE path = ?'),
    };
    this.reload();
  }

  /** Every lock, by path. */
  all(): LockRow[] {
    return (this.stmts.all.all() as Row[]).map(fromRow);
  }

  /** Number of locks (cheap: lets callers skip lookups when there are none). */
  get size(): number {
    return this.held.size;
  }

  get(path: string): LockRow | undefined {
    return this.held.get(path);
  }

  /**
   * Grants a lock (on the authority). An expired lock in the way is
   * released first and returned as `expired`.
   *
   * @throws LockstepError `LOCKED` naming the holder, if the path is locked
   */
  grant(
    req: GrantRequest,
    now: number,
    deviceName: (id: string) => string,
  ): { lock: LockRow; expired?: LockRow } {
    return this.durably(() => {
      let expired: LockRow | undefined;
      const held = this.get(req.path);
      if (held !== undefined) {
        if (held.expiresMs !== null && held.expiresMs <= now) {
          this.remove(held.path);
          expired = held;
        } else {
          throw new LockstepError(
            'LOCKED',
            `${req.path} is already locked by ${describeHolder(held, deviceName)}`,
          );
        }
      }
      const lock: LockRow = {
        path: req.path,
        id: randomBytes(12).toString('base64url'),
        owner: req.owner,
        device: req.device,
        createdMs: now,
        expiresMs: req.ttlMs === undefined ? null : now + req.ttlMs,
        reason: req.reason ?? '',
      };
      this.put(lock);
      return expired ? { lock, expired } : { lock };
    });
  }

  /**
   * Releases the lock on `path` (on the authority): by its owner, or by an
   * administrator with `force`.
   *
   * @throws LockstepError `NOT_FOUND` if it is not locked, `NOT_LOCK_OWNER`
   *   if `user` does not own it and does not force it
   */
  release(path: string, user: { name: string; admin: boolean }, force: boolean): LockRow {
    return this.durably(() => {
      const held = this.get(path);
      if (held === undefined) throw new LockstepError('NOT_FOUND', `${path} is not locked`);
      if (held.owner !== user.name) {
        if (!force) {
          throw new LockstepError(
            'NOT_LOCK_OWNER',
            `${path} is locked by ${held.owner}, not ${user.name}; only ${held.owner} can unlock it${user.admin ? ' (or force it with --force)' : ''}`,
          );
        }
        if (!user.admin) {
          throw new LockstepError(
            'NOT_LOCK_OWNER',
            `${path} is locked by ${held.owner}; only an administrator can force an unlock`,
          );
        }
      }
      this.remove(path);
      return held;
    });
  }

  /** Releases every lock whose expiry has passed; returns them. */
  expire(now: number): LockRow[] {
    return this.durably(() => {
      const gone = (
        this.db
          .prepare('SELECT * FROM locks WHERE expires_ms IS NOT NULL AND expires_ms <= ?')
          .all(now) as Row[]
      ).map(fromRow);
      for (const l of gone) this.remove(l.path);
      return gone;
    });
  }

  /** The earliest expiry, or undefined. */
  nextExpiry(): number | undefined {
    const r = this.db.prepare('SELECT min(expires_ms) AS t FROM locks').get() as {
      t: number | null;
    };
    return r.t ?? undefined;
  }

  /** Replaces the whole table (a replica receiving the authority's snapshot). */
  replace(rows: readonly LockRow[]): void {
    this.inTransaction(() => {
      this.db.prepare('DELETE FROM locks').run();
      this.held.clear();
      for (const r of rows) this.put(r);
    });
  }

  put(l: LockRow): void {
    this.stmts.put.run(l.path, l.id, l.owner, l.device, l.createdMs, l.expiresMs, l.reason);
    this.held.set(l.path, l);
  }

  remove(path: string): void {
    this.stmts.remove.run(path);
    this.held.delete(path);
  }
}

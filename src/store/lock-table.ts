/**
 * The lock table in the device's SQLite database: authoritative on the lock
 * authority, a replica everywhere else; and the fencing-token counter. Only
 * storage lives here: the rules of granting and releasing are the lock
 * authority's (src/locks), which runs them inside {@link LockTable.durably}
 * so that two requests can never both win.
 */
import type Database from 'better-sqlite3';
import type { LockRow, LockScope } from '../core/lock-rules.js';

interface Row {
  path: string;
  id: string;
  owner: string;
  device: string;
  created_ms: number;
  expires_ms: number | null;
  reason: string;
  token: number;
  scope: LockScope;
}

const fromRow = (r: Row): LockRow => ({
  path: r.path,
  id: r.id,
  owner: r.owner,
  device: r.device,
  createdMs: r.created_ms,
  expiresMs: r.expires_ms,
  reason: r.reason,
  token: r.token,
  scope: r.scope,
});

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

  constructor(private readonly db: Database.Database) {
    this.stmts = {
      all: db.prepare('SELECT * FROM locks ORDER BY path'),
      put: db.prepare(
        `INSERT INTO locks (path, id, owner, device, created_ms, expires_ms, reason, token, scope)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (path) DO UPDATE SET id = excluded.id, owner = excluded.owner,
           device = excluded.device, created_ms = excluded.created_ms,
           expires_ms = excluded.expires_ms, reason = excluded.reason, token = excluded.token,
           scope = excluded.scope`,
      ),
      remove: db.prepare('DELETE FROM locks WHERE path = ?'),
      removeAll: db.prepare('DELETE FROM locks'),
      expired: db.prepare('SELECT * FROM locks WHERE expires_ms IS NOT NULL AND expires_ms <= ?'),
      nextExpiry: db.prepare('SELECT min(expires_ms) AS t FROM locks'),
      takeToken: db.prepare('UPDATE lock_counter SET last = last + 1 WHERE id = 1 RETURNING last'),
      raiseToken: db.prepare('UPDATE lock_counter SET last = max(last, ?) WHERE id = 1'),
      lastToken: db.prepare('SELECT last FROM lock_counter WHERE id = 1'),
    };
    this.reload();
  }

  /**
   * Runs a change of the lock table durably, in one transaction: the index
   * runs with `synchronous = NORMAL` (a scan finds lost index changes again
   * on disk), but a granted lock that a power cut undid could be granted
   * twice, and a token handed out twice would fence nothing. If `fn` throws,
   * nothing of it stays, in the file or in memory.
   */
  durably<T>(fn: () => T): T {
    this.db.pragma('synchronous = FULL');
    try {
      return this.inTransaction(fn);
    } finally {
      this.db.pragma('synchronous = NORMAL');
    }
  }

  /** Every lock, by path. */
  all(): LockRow[] {
    return (this.stmts.all.all() as Row[]).map(fromRow);
  }

  /** Number of locks (cheap: lets callers skip lookups when there are none). */
  get size(): number {
    return this.held.size;
  }

  /** The lock on `path`, from memory. */
  get(path: string): LockRow | undefined {
    return this.held.get(path);
  }

  /** Locks whose expiry is at or before `now`. */
  expiredBy(now: number): LockRow[] {
    return (this.stmts.expired.all(now) as Row[]).map(fromRow);
  }

  /** The earliest expiry, or undefined. */
  nextExpiry(): number | undefined {
    return (this.stmts.nextExpiry.get() as { t: number | null }).t ?? undefined;
  }

  /**
   * Takes the next fencing token. Call it inside {@link durably} with the
   * grant it is for, so a token is never handed out without being kept.
   */
  takeToken(): number {
    return (this.stmts.takeToken.get() as { last: number }).last;
  }

  /** The largest token taken or seen so far. */
  lastToken(): number {
    return (this.stmts.lastToken.get() as { last: number }).last;
  }

  /** Raises the token counter to `token` (never lowers it): a table handed over keeps its tokens. */
  raiseTokenTo(token: number): void {
    this.stmts.raiseToken.run(token);
  }

  /** Replaces the whole table (a replica receiving the authority's snapshot). */
  replace(rows: readonly LockRow[]): void {
    this.inTransaction(() => {
      this.stmts.removeAll.run();
      this.held.clear();
      for (const r of rows) this.put(r);
    });
  }

  /** Adds or replaces the lock on `l.path`; the token counter rises to its token. */
  put(l: LockRow): void {
    this.stmts.put.run(
      l.path,
      l.id,
      l.owner,
      l.device,
      l.createdMs,
      l.expiresMs,
      l.reason,
      l.token,
      l.scope ?? 'file',
    );
    this.stmts.raiseToken.run(l.token);
    this.held.set(l.path, { ...l, scope: l.scope ?? 'file' });
  }

  /** Removes the lock on `path`, if any. */
  remove(path: string): void {
    this.stmts.remove.run(path);
    this.held.delete(path);
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
}

/**
 * Every device's copy of the lock table, kept from the authority's stream
 * (a snapshot, then changes) and kept across restarts, so listings and
 * enforcement work while the authority is away. On the authority device the
 * copy and the authority's table are the same SQLite rows: what the
 * authority wrote is already there, and the replica only passes it on.
 */
import { EventEmitter } from 'node:events';
import type { LockRow } from '../core/lock-rules.js';
import { coveringLock } from '../core/lock-scope.js';
import type { LockAuthority } from './authority.js';
import type { LockChange, LockStreamMessage } from './lock-wire.js';

/** What a replica needs of the lock table (the store's `LockTable` is one). */
export interface ReplicaStore {
  get(path: string): LockRow | undefined;
  all(): LockRow[];
  put(lock: LockRow): void;
  remove(path: string): void;
  /** Replaces every row at once. */
  replace(rows: readonly LockRow[]): void;
}

/** Events of a {@link LockReplica}. */
export interface LockReplicaEvents {
  /** A lock began, ended or changed here (each change once, however it arrived). */
  change: [change: LockChange];
}

/** This device's copy of the cluster's locks. */
export class LockReplica extends EventEmitter<LockReplicaEvents> {
  /** What this replica has announced, path by path: the table may be ahead of it. */
  private readonly view: Map<string, LockRow>;

  constructor(private readonly table: ReplicaStore) {
    super();
    this.view = new Map(table.all().map((l) => [l.path, l]));
  }

  /** The lock on `path`, if any. */
  get(path: string): LockRow | undefined {
    return this.view.get(path);
  }

  /** The lock that covers `path`: its own, or a directory lock above it ({@link coveringLock}). */
  covering(path: string): LockRow | undefined {
    return this.view.size === 0 ? undefined : coveringLock(path, (p) => this.view.get(p));
  }

  /** Every lock, by path. */
  all(): LockRow[] {
    return [...this.view.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  /** Number of locks. */
  get size(): number {
    return this.view.size;
  }

  /**
   * Follows `authority`'s stream.
   *
   * @returns stops following
   */
  follow(authority: LockAuthority): () => void {
    return authority.subscribe((m) => this.apply(m));
  }

  /** Adopts a message of the authority's stream, announcing what changed here. */
  apply(message: LockStreamMessage): void {
    if (message.type === 'locks') this.adoptSnapshot(message.locks);
    else this.adoptChange(message.change);
  }

  private adoptSnapshot(locks: readonly LockRow[]): void {
    const same =
      locks.length === this.table.all().length &&
      locks.every((l) => sameLock(this.table.get(l.path), l));
    if (!same) this.table.replace(locks);
    const before = new Map(this.view);
    this.view.clear();
    for (const l of locks) this.view.set(l.path, l);
    for (const l of locks) {
      const old = before.get(l.path);
      before.delete(l.path);
      if (old?.id !== l.id) this.emit('change', { type: 'locked', lock: l });
    }
    for (const l of before.values()) this.emit('change', { type: 'unlocked', lock: l });
  }

  private adoptChange(c: LockChange): void {
    const seen = this.view.get(c.lock.path);
    if (c.type === 'moved') {
      if (seen?.id === c.lock.id) return; // known (this device asked)
      const from = c.from ?? '';
      if (this.view.get(from)?.id === c.lock.id) {
        if (this.table.get(from)?.id === c.lock.id) this.table.remove(from);
        this.view.delete(from);
      }
      if (!sameLock(this.table.get(c.lock.path), c.lock)) this.table.put(c.lock);
      this.view.set(c.lock.path, c.lock);
    } else if (c.type === 'locked' || c.type === 'refreshed') {
      if (c.type === 'locked' && seen?.id === c.lock.id) return; // known (this device asked)
      if (c.type === 'refreshed' && sameLock(seen, c.lock)) return;
      if (!sameLock(this.table.get(c.lock.path), c.lock)) this.table.put(c.lock);
      this.view.set(c.lock.path, c.lock);
    } else {
      if (seen?.id !== c.lock.id) return;
      if (this.table.get(c.lock.path)?.id === c.lock.id) this.table.remove(c.lock.path);
      this.view.delete(c.lock.path);
    }
    this.emit('change', c);
  }
}

/** Whether two rows are the same lock in the same state. */
function sameLock(a: LockRow | undefined, b: LockRow): boolean {
  return a?.id === b.id && a.expiresMs === b.expiresMs && a.token === b.token;
}

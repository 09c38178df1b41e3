/**
 * Locks across the cluster. One device, the lock authority, grants and
 * releases locks in its SQLite table; every other device forwards lock and
 * unlock to it and keeps a replica from its lock stream. The authority is the
 * configured one, else the member with the smallest device ID; while devices
 * disagree, locking is refused rather than risk two authorities.
 */
import { EventEmitter } from 'node:events';
import { LockstepError, errorMessage } from '../base/errors.js';
import type { Logger } from '../base/log.js';
import { describeHolder, type LockRow, type LockTable } from './lock-table.js';
import { decodeLock, type LockChange, type LockRequest } from './lock-wire.js';

/** How long a forwarded request may take before the authority counts as unreachable. */
export const FORWARD_TIMEOUT_MS = 2000;

/** Options of a {@link LockService}. */
export interface LockServiceOptions {
  readonly table: LockTable;
  /** This device's full ID. */
  readonly self: string;
  readonly log: Logger;
  /** The authority this device chose. */
  authority(): string;
  /** Peers whose choice differs from ours, with their choice (connected peers only). */
  disagreements(): readonly { peer: string; choice: string }[];
  /** Sends a request to the authority; rejects if it cannot be reached. */
  forward(authority: string, req: LockRequest, timeoutMs: number): Promise<unknown>;
  /** Throws NOT_FOUND or NOT_A_FILE unless `path` is a live file in the global view. */
  checkFile(path: string): void;
  deviceName(id: string): string;
}

/** Events of a {@link LockService}. */
export interface LockServiceEvents {
  /** The lock table (authority or replica) changed. */
  change: [change: LockChange];
}

/** Locks for one device. */
export class LockService extends EventEmitter<LockServiceEvents> {
  private expiryTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly o: LockServiceOptions) {
    super();
  }

  /** Whether this device is the lock authority. */
  get isAuthority(): boolean {
    return this.o.authority() === this.o.self;
  }

  /** Every lock this device knows (on the authority: the table itself). */
  all(): LockRow[] {
    return this.o.table.all();
  }

  get(path: string): LockRow | undefined {
    return this.o.table.get(path);
  }

  /** Locks `path` for `owner`, whose client is connected to this device. */
  async lock(path: string, owner: string, opts: { ttlMs?: number; reason?: string }) {
    const req: LockRequest = {
      op: 'lock',
      path,
      owner,
      device: this.o.self,
      ...(opts.ttlMs === undefined ? {} : { ttlMs: opts.ttlMs }),
      ...(opts.reason === undefined ? {} : { reason: opts.reason }),
    };
    return this.request(req);
  }

  /** Unlocks `path` for `user` (an administrator may force). */
  async unlock(path: string, user: { name: string; admin: boolean }, force: boolean) {
    return this.request({ op: 'unlock', path, user: user.name, admin: user.admin, force });
  }

  /**
   * Executes a request on the authority (from a local client or a peer).
   *
   * @throws LockstepError with the code clients see
   */
  handle(req: LockRequest): LockRow {
    if (!this.isAuthority) {
      throw new LockstepError(
        'AUTHORITY_DISAGREE',
        `This device is not the lock authority; it uses ${this.o.deviceName(this.o.authority())}`,
      );
    }
    const now = Date.now();
    if (req.op === 'lock') {
      this.o.checkFile(req.path);
      const { lock, expired } = this.o.table.grant(
        {
          path: req.path,
          owner: req.owner,
          device: req.device,
          ttlMs: req.ttlMs,
          reason: req.reason,
        },
        now,
        (id) => this.o.deviceName(id),
      );
      if (expired) this.announce({ type: 'expired', lock: expired });
      this.announce({ type: 'locked', lock });
      this.armExpiry();
      return lock;
    }
    const lock = this.o.table.release(req.path, { name: req.user, admin: req.admin }, req.force);
    const forced = lock.owner !== req.user;
    this.announce(forced ? { type: 'forced', lock, by: req.user } : { type: 'unlocked', lock });
    return lock;
  }

  /** Replica: adopts the authority's snapshot, announcing what changed. */
  applySnapshot(locks: readonly LockRow[]): void {
    const before = new Map(this.o.table.all().map((l) => [l.path, l]));
    this.o.table.replace(locks);
    for (const l of locks) {
      const old = before.get(l.path);
      before.delete(l.path);
      if (old?.id !== l.id) this.emit('change', { type: 'locked', lock: l });
    }
    for (const l of before.values()) this.emit('change', { type: 'unlocked', lock: l });
  }

  /** Replica: adopts one change from the authority. */
  applyChange(c: LockChange): void {
    const held = this.o.table.get(c.lock.path);
    if (c.type === 'locked') {
      if (held?.id === c.lock.id) return; // already known (this device asked for it)
      this.o.table.put(c.lock);
    } else {
      if (held?.id !== c.lock.id) return;
      this.o.table.remove(c.lock.path);
    }
    this.emit('change', c);
  }

  /** Starts releasing expired locks (on the authority). */
  start(): void {
    this.armExpiry();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.expiryTimer);
  }

  private async request(req: LockRequest): Promise<{ lock: LockRow; forced: boolean }> {
    const mine = this.o.authority();
    const differ = this.o.disagreements();
    if (differ.length > 0) {
      const d = differ[0] as { peer: string; choice: string };
      throw new LockstepError(
        'AUTHORITY_DISAGREE',
        `Devices disagree on the lock authority: this device uses ${this.o.deviceName(mine)}, ${this.o.deviceName(d.peer)} uses ${this.o.deviceName(d.choice)}. Set the same "lockAuthority" in every device's config.json (or peer every device with every other); locking is refused until they agree`,
      );
    }
    const forced = req.op === 'unlock' && this.get(req.path)?.owner !== req.user;
    if (mine === this.o.self) return { lock: this.handle(req), forced };
    let reply: unknown;
    try {
      reply = await this.o.forward(mine, req, FORWARD_TIMEOUT_MS);
    } catch (err) {
      if (err instanceof LockstepError && err.code !== 'PEER_UNREACHABLE') throw err;
      throw new LockstepError(
        'AUTHORITY_UNREACHABLE',
        `The lock authority ${this.o.deviceName(mine)} cannot be reached (${errorMessage(err)}); locking and unlocking wait for it, listing and sync go on`,
        { cause: err },
      );
    }
    const lock = decodeLock(reply);
    // Adopt at once so this client sees its own lock without waiting for the stream.
    if (req.op === 'lock') this.applyChange({ type: 'locked', lock });
    else
      this.applyChange(
        forced ? { type: 'forced', lock, by: req.user } : { type: 'unlocked', lock },
      );
    return { lock, forced };
  }

  private announce(c: LockChange): void {
    this.emit('change', c);
  }

  private armExpiry(): void {
    clearTimeout(this.expiryTimer);
    if (this.closed || !this.isAuthority) return;
    const next = this.o.table.nextExpiry();
    if (next === undefined) return;
    const delay = Math.max(0, Math.min(next - Date.now(), 2 ** 31 - 1));
    this.expiryTimer = setTimeout(() => {
      try {
        for (const lock of this.o.table.expire(Date.now())) {
          this.o.log.info({ path: lock.path, owner: lock.owner }, `lock on ${lock.path} expired`);
          this.announce({ type: 'expired', lock });
        }
      } catch (err) {
        this.o.log.error({ err: errorMessage(err) }, 'expiring locks failed');
      }
      this.armExpiry();
    }, delay);
    this.expiryTimer.unref();
  }
}

export { describeHolder };

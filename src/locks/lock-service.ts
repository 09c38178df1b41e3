/**
 * Locks for one device, as its interfaces see them: requests go to the lock
 * authority in charge (this device's table, or forwarded to the authority
 * device), answers come from the replica. While devices disagree on the
 * authority, locking is refused rather than risk two authorities.
 */
import { EventEmitter } from 'node:events';
import { LockstepError } from '../base/errors.js';
import { peerRequestProblem, type LockRow } from '../core/lock-rules.js';
import type { LockAuthority, Released } from './authority.js';
import type { EmbeddedAuthority } from './embedded-authority.js';
import {
  HANDOVER_TIMEOUT_MS,
  decodeHandoverRequest,
  type Handover,
  type HandoverRequest,
  type Moved,
} from './handover.js';
import type { LockChange, LockRequest } from './lock-wire.js';
import type { LockReplica } from './replica.js';

/** Options of a {@link LockService}. */
export interface LockServiceOptions {
  /** This device's full ID. */
  readonly self: string;
  readonly replica: LockReplica;
  /** This device's table as an authority (used while this device is the authority). */
  readonly embedded: EmbeddedAuthority;
  /** The authority on another device (used while another device is). */
  readonly remote: LockAuthority;
  /** The lock table in etcd, when configured: every request goes there, no device is the authority. */
  readonly etcd?: LockAuthority | undefined;
  /** The authority device this device chose. */
  authority(): string;
  /** Peers whose choice differs from ours, with their choice (connected peers only). */
  disagreements(): readonly { peer: string; choice: string }[];
  /**
   * Makes sure a choice of authority is recorded before a request is made
   * (a device alone records itself); throws `AUTHORITY_UNKNOWN` while it
   * cannot be known yet.
   */
  ensureDecided?(): void;
  deviceName(id: string): string;
  /** Moves of the authority, on this device. */
  readonly handover?: Handover;
  /** Sends a handover request to a device (the peer link). */
  sendHandover?(device: string, req: HandoverRequest, timeoutMs: number): Promise<unknown>;
  /**
   * Why a peer's request names a user the cluster's user table does not
   * allow (unknown, or claiming administrator rights it lacks), or undefined.
   */
  userProblem?(req: LockRequest, from: string): string | undefined;
}

/** Events of a {@link LockService}. */
export interface LockServiceEvents {
  /** The lock table (authority or replica) changed. */
  change: [change: LockChange];
}

/** Locks for one device. */
export class LockService extends EventEmitter<LockServiceEvents> {
  private readonly unfollow: (() => void)[] = [];
  private readonly relay = (c: LockChange) => this.emit('change', c);

  constructor(private readonly o: LockServiceOptions) {
    super();
    o.replica.on('change', this.relay);
    // Only the authority in charge emits; the replica follows both.
    this.unfollow.push(o.replica.follow(o.embedded), o.replica.follow(o.remote));
    if (o.etcd) this.unfollow.push(o.replica.follow(o.etcd));
  }

  /** Whether this device is the lock authority. */
  get isAuthority(): boolean {
    return this.o.authority() === this.o.self;
  }

  /** Every lock this device knows. */
  all(): LockRow[] {
    return this.o.replica.all();
  }

  /** The lock on `path`, as this device knows it. */
  get(path: string): LockRow | undefined {
    return this.o.replica.get(path);
  }

  /** The lock that covers `path` (its own, or a directory lock above it), as this device knows it. */
  covering(path: string): LockRow | undefined {
    return this.o.replica.covering(path);
  }

  /** Locks `path` for `owner`, whose client is connected to this device. */
  async lock(
    path: string,
    owner: string,
    opts: { ttlMs?: number; reason?: string },
  ): Promise<Released> {
    const lock = await this.inCharge().grant({
      path,
      owner,
      device: this.o.self,
      ttlMs: opts.ttlMs,
      reason: opts.reason,
    });
    return { lock, forced: false };
  }

  /** Unlocks `path` for `user` (an administrator may force). */
  async unlock(
    path: string,
    user: { name: string; admin: boolean },
    force: boolean,
  ): Promise<Released> {
    return this.inCharge().release({ path, user: user.name, admin: user.admin, force });
  }

  /**
   * Ends `lock` (held at this device) because its holder deleted the file:
   * announced as `dropped`, never silently.
   */
  async dropDeleted(lock: LockRow): Promise<Released> {
    return this.inCharge().release({
      path: lock.path,
      user: lock.owner,
      admin: false,
      force: false,
      dropped: true,
    });
  }

  /**
   * Moves `lock` (held at this device) to `to`, where its holder renamed the
   * file. An authority that cannot move locks ends it as `dropped` instead.
   */
  async moveLock(lock: LockRow, to: string): Promise<LockRow | undefined> {
    const authority = this.inCharge();
    if (authority.move === undefined) {
      await this.dropDeleted(lock);
      return undefined;
    }
    return authority.move({ path: lock.path, to, id: lock.id, user: lock.owner });
  }

  /** Extends the expiry of `user`'s TTL lock `id` on `path` to `ttlMs` from now. */
  async refresh(path: string, id: string, user: string, ttlMs: number): Promise<LockRow> {
    return this.inCharge().refresh({ path, id, user, ttlMs });
  }

  /**
   * Executes a request forwarded by peer `from` (its full device ID, known
   * from its certificate; this device must be the authority). The request
   * is held to what that peer may ask ({@link peerRequestProblem}): locks
   * at itself, and unlocks or extends only locks held at itself.
   *
   * @throws LockstepError with the code to answer (`FORBIDDEN` for what the peer may not ask)
   */
  handle(req: LockRequest, from: string): LockRow {
    if (!this.isAuthority) {
      throw new LockstepError(
        'AUTHORITY_DISAGREE',
        `This device is not the lock authority; it uses ${this.o.deviceName(this.o.authority())}`,
      );
    }
    // The first grant of a cluster records this device as its authority.
    if (req.op === 'lock') this.o.ensureDecided?.();
    const problem = peerRequestProblem(req, this.o.embedded.current(req.path), from, (id) =>
      this.o.deviceName(id),
    );
    if (problem !== undefined) throw new LockstepError('FORBIDDEN', problem);
    const claim = this.o.userProblem?.(req, from);
    if (claim !== undefined) throw new LockstepError('FORBIDDEN', claim);
    return this.o.embedded.handle(req);
  }

  /**
   * Moves the lock authority to device `to`, handing its table over (asked
   * through this device; the authority does it).
   *
   * @throws LockstepError `USAGE`, `AUTHORITY_UNREACHABLE`, `AUTHORITY_DISAGREE`
   */
  async moveAuthority(to: string): Promise<Moved> {
    if (this.o.etcd !== undefined) {
      throw new LockstepError(
        'USAGE',
        'The locks of this cluster are in etcd: no device is the lock authority, there is nothing to move',
      );
    }
    this.inCharge();
    if (this.isAuthority) return this.handoverPart().moveTo(to);
    const send = this.o.sendHandover;
    if (send === undefined) throw new LockstepError('USAGE', 'This device cannot reach peers');
    const answer = await send(this.o.authority(), { op: 'move', to }, HANDOVER_TIMEOUT_MS + 5000);
    return answer as Moved;
  }

  /**
   * Executes a handover request of peer `from`: a device asking this one
   * (the authority) to move, or the authority handing its table to this one.
   *
   * @throws LockstepError with the code to answer
   */
  async handover(body: unknown, from: string): Promise<Moved> {
    const req = decodeHandoverRequest(body);
    if (req.op === 'adopt') return this.handoverPart().adopt(req, from);
    if (!this.isAuthority) {
      throw new LockstepError(
        'AUTHORITY_DISAGREE',
        `This device is not the lock authority; it uses ${this.o.deviceName(this.o.authority())}`,
      );
    }
    return this.handoverPart().moveTo(req.to);
  }

  private handoverPart(): Handover {
    if (this.o.handover === undefined) {
      throw new LockstepError('USAGE', 'This device cannot move the lock authority');
    }
    return this.o.handover;
  }

  /**
   * Starts or stops releasing expired locks here, as this device is or is
   * not the authority; call it at start and whenever the peers change.
   */
  authorityMayHaveChanged(): void {
    if (this.isAuthority) this.o.embedded.startExpiry();
    else this.o.embedded.stopExpiry();
  }

  /** Stops expiring and following. */
  close(): void {
    this.o.embedded.stopExpiry();
    for (const off of this.unfollow.splice(0)) off();
    this.o.replica.off('change', this.relay);
  }

  /** The authority to ask now; refuses while devices disagree on it. */
  private inCharge(): LockAuthority {
    this.o.ensureDecided?.();
    const mine = this.o.authority();
    const differ = this.o.disagreements();
    if (differ.length > 0) {
      const d = differ[0] as { peer: string; choice: string };
      throw new LockstepError(
        'AUTHORITY_DISAGREE',
        `Devices disagree on the lock authority: this device uses ${this.o.deviceName(mine)}, ${this.o.deviceName(d.peer)} uses ${this.o.deviceName(d.choice)}. Set the same "lockAuthority" in every device's config.json (it is read again at once, no restart needed); locking is refused until they agree`,
      );
    }
    if (this.o.etcd) return this.o.etcd;
    return mine === this.o.self ? this.o.embedded : this.o.remote;
  }
}

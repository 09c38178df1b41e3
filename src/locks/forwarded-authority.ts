/**
 * The lock authority on another device, reached through an injected
 * "send this request to device X" function (the peer link, in a running
 * device; a direct call, in tests). Its table comes back as the authority's
 * lock stream, which the transport hands to {@link ForwardedAuthority.deliver}.
 */
import { LockstepError, errorMessage } from '../base/errors.js';
import type { LockRow } from '../core/lock-rules.js';
import type {
  GrantRequest,
  LockAuthority,
  MoveRequest,
  RefreshRequest,
  ReleaseRequest,
  Released,
} from './authority.js';
import {
  decodeLock,
  decodeLockStream,
  type LockChange,
  type LockRequest,
  type LockStreamMessage,
} from './lock-wire.js';

/** How long a forwarded request may take before the authority counts as unreachable. */
export const FORWARD_TIMEOUT_MS = 2000;

/**
 * Sends `req` to the device `device` and resolves with its answer (the JSON
 * of a lock); rejects with the authority's `LockstepError`, or with
 * `PEER_UNREACHABLE` when it cannot be reached in `timeoutMs`.
 */
export type SendLockRequest = (
  device: string,
  req: LockRequest,
  timeoutMs: number,
) => Promise<unknown>;

/** Options of a {@link ForwardedAuthority}. */
export interface ForwardedAuthorityOptions {
  /** The authority device's full ID (it may change while the cluster changes). */
  device(): string;
  readonly send: SendLockRequest;
  deviceName(id: string): string;
}

/** A lock authority on another device of the cluster. */
export class ForwardedAuthority implements LockAuthority {
  private readonly listeners = new Set<(m: LockStreamMessage) => void>();
  /** The authority's table as last heard (its snapshot, then its changes). */
  private known: Map<string, LockRow> | undefined;
  private knownFrom: string | undefined;

  constructor(private readonly o: ForwardedAuthorityOptions) {}

  async grant(req: GrantRequest): Promise<LockRow> {
    const lock = decodeLock(
      await this.send({
        op: 'lock',
        path: req.path,
        owner: req.owner,
        device: req.device,
        ...(req.ttlMs === undefined ? {} : { ttlMs: req.ttlMs }),
        ...(req.reason === undefined ? {} : { reason: req.reason }),
      }),
    );
    // Adopted at once, so this client sees its own lock without waiting for the stream.
    this.adopt({ type: 'locked', lock });
    return lock;
  }

  async release(req: ReleaseRequest): Promise<Released> {
    const { dropped, ...rest } = req;
    const lock = decodeLock(
      await this.send({ op: 'unlock', ...rest, ...(dropped === true ? { dropped } : {}) }),
    );
    const forced = lock.owner !== req.user;
    this.adopt(
      forced
        ? { type: 'forced', lock, by: req.user }
        : { type: dropped === true ? 'dropped' : 'unlocked', lock },
    );
    return { lock, forced };
  }

  async move(req: MoveRequest): Promise<LockRow> {
    const lock = decodeLock(await this.send({ op: 'move', ...req }));
    this.adopt({ type: 'moved', lock, from: req.path });
    return lock;
  }

  async refresh(req: RefreshRequest): Promise<LockRow> {
    const lock = decodeLock(await this.send({ op: 'refresh', ...req }));
    this.adopt({ type: 'refreshed', lock });
    return lock;
  }

  list(): Promise<readonly LockRow[]> {
    return Promise.resolve([...(this.known?.values() ?? [])]);
  }

  subscribe(fn: (message: LockStreamMessage) => void): () => void {
    this.listeners.add(fn);
    if (this.known !== undefined) fn({ type: 'locks', locks: [...this.known.values()] });
    return () => this.listeners.delete(fn);
  }

  /**
   * Takes a message of a device's lock stream, unchecked: only the current
   * authority's stream counts (one followed before the authority changed is
   * dropped).
   *
   * @throws LockstepError `PEER_INVALID` if the message is malformed
   */
  deliver(from: string, value: unknown): void {
    if (from !== this.o.device()) return;
    const msg = decodeLockStream(value);
    if (msg.type === 'locks') {
      this.known = new Map(msg.locks.map((l) => [l.path, l]));
      this.knownFrom = from;
      for (const fn of this.listeners) fn(msg);
    } else {
      this.adopt(msg.change);
    }
  }

  /** Records a change of the authority's table and passes it on. */
  private adopt(change: LockChange): void {
    if (this.knownFrom === this.o.device() && this.known !== undefined) {
      if (change.type === 'moved' && change.from !== undefined) {
        if (this.known.get(change.from)?.id === change.lock.id) this.known.delete(change.from);
        this.known.set(change.lock.path, change.lock);
      } else if (change.type === 'locked' || change.type === 'refreshed') {
        this.known.set(change.lock.path, change.lock);
      } else if (this.known.get(change.lock.path)?.id === change.lock.id) {
        this.known.delete(change.lock.path);
      }
    }
    for (const fn of this.listeners) fn({ type: 'change', change });
  }

  private async send(req: LockRequest): Promise<unknown> {
    const device = this.o.device();
    try {
      return await this.o.send(device, req, FORWARD_TIMEOUT_MS);
    } catch (err) {
      if (err instanceof LockstepError && err.code !== 'PEER_UNREACHABLE') throw err;
      throw new LockstepError(
        'AUTHORITY_UNREACHABLE',
        `The lock authority ${this.o.deviceName(device)} cannot be reached (${errorMessage(err)}); locking and unlocking wait for it, listing and sync go on`,
        { cause: err },
      );
    }
  }
}

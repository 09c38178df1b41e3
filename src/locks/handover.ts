/**
 * Moving the embedded lock authority to another device on purpose
 * (`lockstep locks move-authority DEVICE`), with nothing lost: the authority
 * stops granting, hands its whole table and its last fencing token to the
 * new device, which keeps them durably and records itself (one more move:
 * the epoch grows by one) before the old authority records the new one and
 * tells its peers. Until the new device has the table, the old one still
 * holds it; if the handover fails, nothing moved.
 *
 * Requests between devices (`/v1/locks/authority`):
 * - `move`: a device asks the authority to move to `to` (for its client).
 * - `adopt`: the authority hands its table to the new device.
 */
import { LockstepError } from '../base/errors.js';
import { parseDeviceId } from '../core/device-id.js';
import type { AuthorityChoice, LockRow } from '../core/lock-rules.js';
import { decodeLock } from './lock-wire.js';

/** A request of the handover, between devices. */
export type HandoverRequest =
  | { readonly op: 'move'; readonly to: string }
  | {
      readonly op: 'adopt';
      readonly locks: readonly LockRow[];
      readonly lastToken: number;
      readonly epoch: number;
    };

/** What a move did. */
export interface Moved {
  readonly from: string;
  readonly to: string;
  /** Locks handed over. */
  readonly locks: number;
  readonly epoch: number;
}

/** What the handover needs of the device. */
export interface HandoverOptions {
  /** This device's full ID. */
  readonly self: string;
  /** This device's recorded choice of authority. */
  choice(): AuthorityChoice;
  /** Records a new choice (in the configuration); false if it could not be written. */
  record(choice: AuthorityChoice, why: string): boolean;
  /** The lock table of this device, as authority or as a replica. */
  readonly table: {
    durably<T>(fn: () => T): T;
    all(): LockRow[];
    replace(rows: readonly LockRow[]): void;
    lastToken(): number;
    raiseTokenTo(token: number): void;
  };
  /** Stops (with the new device's ID) or resumes (undefined) granting here. */
  pause(movingTo: string | undefined): void;
  /** Whether `id` is a configured peer. */
  isPeer(id: string): boolean;
  /** Sends a handover request to a device; resolves to its JSON answer. */
  send(device: string, req: HandoverRequest, timeoutMs: number): Promise<unknown>;
  deviceName(id: string): string;
}

/** How long the new device may take to keep the table. */
export const HANDOVER_TIMEOUT_MS = 30_000;

/** Moves of the lock authority, on one device. */
export class Handover {
  constructor(private readonly o: HandoverOptions) {}

  /**
   * Moves the authority from this device (it must be the authority) to `to`.
   *
   * @throws LockstepError `USAGE` for a device that cannot take it,
   *   `AUTHORITY_UNREACHABLE` when it did not take it (nothing moved)
   */
  async moveTo(to: string): Promise<Moved> {
    const { o } = this;
    const choice = o.choice();
    if (choice.device !== o.self) {
      throw new LockstepError('USAGE', 'This device is not the lock authority');
    }
    if (to === o.self) {
      throw new LockstepError('USAGE', `${o.deviceName(to)} is already the lock authority`);
    }
    if (!o.isPeer(to)) {
      throw new LockstepError(
        'USAGE',
        `${o.deviceName(to)} is not a peer of ${o.deviceName(o.self)}; add it with \`lockstep peer add\` first`,
      );
    }
    o.pause(to);
    try {
      const locks = o.table.all();
      const epoch = choice.epoch + 1;
      const req: HandoverRequest = { op: 'adopt', locks, lastToken: o.table.lastToken(), epoch };
      try {
        await o.send(to, req, HANDOVER_TIMEOUT_MS);
      } catch (err) {
        throw new LockstepError(
          'AUTHORITY_UNREACHABLE',
          `${o.deviceName(to)} did not take the lock table (${err instanceof Error ? err.message : String(err)}); the authority stays ${o.deviceName(o.self)}, with every lock`,
          { cause: err },
        );
      }
      const why = `moved on purpose to ${o.deviceName(to)}, ${locks.length} lock(s) handed over`;
      if (!o.record({ device: to, epoch }, why)) {
        // The new device has the table and records itself; this one still
        // says otherwise in its configuration: its peers follow the larger epoch.
        throw new LockstepError(
          'REQUEST_FAILED',
          `${o.deviceName(to)} took the lock table, but this device could not record it in config.json (see its log); set "lockAuthority" there to ${to}`,
        );
      }
      return { from: o.self, to, locks: locks.length, epoch };
    } finally {
      o.pause(undefined);
    }
  }

  /**
   * The new device keeps the table handed over by `from`, which must be its
   * authority now, then records itself.
   */
  adopt(req: Extract<HandoverRequest, { op: 'adopt' }>, from: string): Moved {
    const { o } = this;
    const choice = o.choice();
    if (choice.device !== from) {
      throw new LockstepError(
        'FORBIDDEN',
        `${o.deviceName(from)} is not the lock authority this device follows (${choice.device === undefined ? 'none decided yet' : o.deviceName(choice.device)}); it cannot hand over the lock table`,
      );
    }
    if (req.epoch <= choice.epoch) {
      throw new LockstepError('FORBIDDEN', `a handover must move on from epoch ${choice.epoch}`);
    }
    o.table.durably(() => {
      o.table.replace(req.locks);
      o.table.raiseTokenTo(req.lastToken);
    });
    const why = `handed over by ${o.deviceName(from)} on purpose, ${req.locks.length} lock(s)`;
    if (!o.record({ device: o.self, epoch: req.epoch }, why)) {
      throw new LockstepError(
        'REQUEST_FAILED',
        `${o.deviceName(o.self)} could not record itself as lock authority in config.json (see its log)`,
      );
    }
    return { from, to: o.self, locks: req.locks.length, epoch: req.epoch };
  }
}

/**
 * Checks a handover request received from a peer.
 *
 * @throws LockstepError `PEER_INVALID` when it is malformed
 */
export function decodeHandoverRequest(v: unknown): HandoverRequest {
  const bad = (what: string) => new LockstepError('PEER_INVALID', `Peer handover: ${what}`);
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad('must be an object');
  const o = v as Record<string, unknown>;
  if (o.op === 'move') {
    if (typeof o.to !== 'string' || !canonicalId(o.to)) {
      throw bad('to must be a device ID');
    }
    return { op: 'move', to: o.to };
  }
  if (o.op === 'adopt') {
    const whole = (x: unknown) => Number.isSafeInteger(x) && (x as number) >= 0;
    if (!whole(o.lastToken) || !whole(o.epoch))
      throw bad('lastToken and epoch must be whole numbers');
    if (!Array.isArray(o.locks)) throw bad('locks must be a list');
    return {
      op: 'adopt',
      locks: o.locks.map(decodeLock),
      lastToken: o.lastToken as number,
      epoch: o.epoch as number,
    };
  }
  throw bad('op must be move or adopt');
}

/** Whether `s` is a device ID in its canonical form. */
function canonicalId(s: string): boolean {
  try {
    return parseDeviceId(s) === s;
  } catch {
    return false;
  }
}

/**
 * Locks as data, and the rules about them that need no I/O: what a lock is,
 * who is the lock authority, and what happens to a change of a locked path.
 * The lock modules (src/locks), the puller and the store use these; none of
 * them decides on its own.
 */

import { LockstepError } from '../base/errors.js';

/**
 * One lock, as every device keeps it. `token` is the grant's fencing token:
 * it only grows, across releases and restarts of the authority, so a larger
 * token always names a later grant (0: granted by a Lockstep that had no
 * tokens yet).
 */
export interface LockRow {
  readonly path: string;
  /** The lock's ID, random: names this grant in requests and changes. */
  readonly id: string;
  /** The user who holds it. */
  readonly owner: string;
  /** Full ID of the device the owner's client used. */
  readonly device: string;
  readonly createdMs: number;
  readonly expiresMs: number | null;
  readonly reason: string;
  /** The fencing token of this grant. */
  readonly token: number;
  /**
   * What the lock is on: one file, or a directory and everything below it
   * (see lock-scope.ts). Absent: a file (rows of Lockstep before directory locks).
   */
  readonly scope?: LockScope;
}

/** A lock's scope: one file, or a directory with everything below it. */
export type LockScope = 'file' | 'directory';

/** Says who holds a lock and since when, for error messages. */
export function describeHolder(l: LockRow, deviceName: (id: string) => string): string {
  return `${l.owner}@${deviceName(l.device)} since ${new Date(l.createdMs).toISOString()}`;
}

/**
 * Which device grants locks, as one device records it. `device` undefined:
 * not decided yet (a device made by `lockstep init` without
 * `--lock-authority` that has not met its cluster). `epoch` counts the
 * explicit moves (`lockstep locks move-authority`): a later move wins over an
 * earlier record, so a device that was away while the authority moved
 * follows it.
 */
export interface AuthorityChoice {
  readonly device: string | undefined;
  readonly epoch: number;
}

/**
 * The authority a configuration made before choices were recorded implied:
 * the member with the smallest device ID (this device or a configured peer).
 * On upgrade it becomes the recorded choice, so nothing moves.
 */
export function impliedAuthority(self: string, peers: Iterable<string>): string {
  let min = self;
  for (const id of peers) if (id < min) min = id;
  return min;
}

/**
 * What this device records on meeting peer `peer`, whose choice is
 * `theirs`; undefined to keep its own. A decided choice is never changed by
 * a device that joins: an undecided device adopts a decided peer's choice,
 * and a decided device follows only an explicit later move (a larger
 * epoch). Two undecided devices record nothing: until a lock is granted,
 * the authority is the smallest ID of a device and its configured peers
 * ({@link impliedAuthority}), and the device that grants the first lock
 * records itself, which the others then adopt. (Recording the smaller of
 * each pair on meeting would split a cluster whose pairs meet at once.)
 * Two decided choices with the same epoch that differ stay apart: see
 * {@link choicesDisagree}.
 */
export function meetAuthority(
  mine: AuthorityChoice,
  theirs: AuthorityChoice,
): AuthorityChoice | undefined {
  if (theirs.device === undefined) return undefined;
  if (mine.device === undefined) return theirs;
  if (theirs.epoch > mine.epoch && theirs.device !== mine.device) return theirs;
  return undefined;
}

/**
 * Whether two devices' recorded choices conflict so that locking must be
 * refused: both decided, on different devices, at the same epoch (a lower
 * epoch is about to follow the higher one; an undecided device adopts).
 */
export function choicesDisagree(mine: AuthorityChoice, theirs: AuthorityChoice): boolean {
  return (
    mine.device !== undefined &&
    theirs.device !== undefined &&
    mine.device !== theirs.device &&
    mine.epoch === theirs.epoch
  );
}

/** Where a path's lock is held, seen from the device deciding: none, here, or elsewhere. */
export type LockPlace = 'none' | 'here' | 'elsewhere';

/**
 * A change of a path, described by what the lock rules look at.
 *
 * - `local`: this device's scanner found the change on disk (someone wrote
 *   the file here, root ignoring its read-only mode, or deleted it).
 * - `remote`: a version made on a peer that the puller would apply here.
 *   `lock` is where the holder works, seen from here.
 */
export type LockedChange =
  | { readonly origin: 'local'; readonly lock: LockPlace }
  | {
      readonly origin: 'remote';
      readonly lock: LockPlace;
      /** The action only merges version vectors; the content stays. */
      readonly versionOnly: boolean;
      /** The version was made on the holder's device. */
      readonly madeByHolder: boolean;
      /** As far as this device knows, the holder's device has seen the version. */
      readonly holderHasSeen: boolean;
      /** The fencing token the version was written under (0: none). */
      readonly token: number;
      /** The token of the path's lock, as this device knows it. */
      readonly lockToken: number;
    };

/**
 * What happens to a change of a path, under its lock.
 *
 * - `accept`: it is synced like any change.
 * - `restore`: a local change on a device other than the holder's: it is
 *   moved aside as a conflict copy and the holder's version comes back.
 * - `refuse-keep-copy`: a remote version the holder's device (this one) has
 *   not seen: not applied; it is kept as a conflict copy and this device's
 *   content is recorded again with a version that dominates it.
 * - `refuse-wait`: the same on any other device: not applied; the holder's
 *   device will send the version that wins.
 */
export type LockVerdict = 'accept' | 'restore' | 'refuse-keep-copy' | 'refuse-wait';

/**
 * Decides what happens to a change of a path under its lock. The holder's
 * own changes, and versions the holder's device has already seen (they are
 * the holder's to keep, whoever made them), go through; any other change of
 * a locked path is kept aside, never dropped and never applied.
 *
 * Fencing: a remote version written under the lock's current token, or
 * under a later one (this device has not heard of that grant yet: its
 * replica is behind, and the version is the new holder's), goes through;
 * which content wins is then the plan's choice, where the later token
 * wins. A version under an older token (or none) is a stale holder's, or
 * was made without the lock: it is refused unless it is the holder's
 * device's own (that device never refuses itself, so it would never send a
 * version that replaces it) or one the holder's device has seen.
 */
export function lockVerdict(c: LockedChange): LockVerdict {
  if (c.lock === 'none') return 'accept';
  if (c.origin === 'local') return c.lock === 'here' ? 'accept' : 'restore';
  if (c.versionOnly) return 'accept';
  if (c.token > 0 && c.token >= c.lockToken) return 'accept';
  if (c.madeByHolder || c.holderHasSeen) return 'accept';
  return c.lock === 'here' ? 'refuse-keep-copy' : 'refuse-wait';
}

/** The fields of a request forwarded by a peer that the authority must not take on trust. */
export type PeerLockAsk =
  | { readonly op: 'lock'; readonly path: string; readonly device: string }
  | { readonly op: 'unlock' | 'refresh' | 'move'; readonly path: string; readonly user: string };

/**
 * Why the lock authority refuses a request that peer `from` forwarded, or
 * undefined to go on. A peer speaks only for the clients connected to it:
 * it may lock at itself (never at another device), and unlock or refresh
 * only locks held at itself. Which of its users asks, and whether that user
 * is an administrator, is the peer's word about its own users; it never
 * reaches a lock held at another device, whatever user, admin or force it
 * claims. (The authority's own clients are not forwarded and not limited.)
 *
 * @param held - the lock on the path now, if any
 */
export function peerRequestProblem(
  ask: PeerLockAsk,
  held: LockRow | undefined,
  from: string,
  deviceName: (id: string) => string,
): string | undefined {
  if (ask.op === 'lock') {
    return ask.device === from
      ? undefined
      : `device ${deviceName(from)} asked for a lock held at ${deviceName(ask.device)}; a device locks only for its own clients`;
  }
  if (held === undefined || held.device === from) return undefined;
  const verb = ask.op === 'unlock' ? 'unlock' : ask.op === 'move' ? 'move' : 'extend';
  return `${ask.path} is locked by ${held.owner} at ${deviceName(held.device)}; ${deviceName(from)} cannot ${verb} a lock held at another device (do it through ${deviceName(held.device)}, or through the lock authority)`;
}

/**
 * Throws unless `req` may end `held`: its owner, or an administrator forcing.
 * Both authorities (embedded and etcd) apply this one rule.
 *
 * @throws LockstepError `NOT_LOCK_OWNER` saying who may
 */
export function checkRelease(
  held: LockRow,
  req: {
    readonly path: string;
    readonly user: string;
    readonly admin: boolean;
    readonly force: boolean;
  },
): void {
  if (held.owner === req.user) return;
  if (!req.force) {
    throw new LockstepError(
      'NOT_LOCK_OWNER',
      `${req.path} is locked by ${held.owner}, not ${req.user}; only ${held.owner} can unlock it${req.admin ? ' (or force it with --force)' : ''}`,
    );
  }
  if (!req.admin) {
    throw new LockstepError(
      'NOT_LOCK_OWNER',
      `${req.path} is locked by ${held.owner}; only an administrator can force an unlock`,
    );
  }
}

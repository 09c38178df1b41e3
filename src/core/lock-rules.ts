/**
 * Locks as data, and the rules about them that need no I/O: what a lock is,
 * who is the lock authority, and what happens to a change of a locked path.
 * The lock modules (src/locks), the puller and the store use these; none of
 * them decides on its own.
 */

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
 * The device that grants locks: the configured one, else the member of the
 * cluster with the smallest device ID (this device or a configured peer).
 * This is the only place that rule is written.
 */
export function electAuthority(
  configured: string | undefined,
  self: string,
  peers: Iterable<string>,
): string {
  if (configured !== undefined) return configured;
  let min = self;
  for (const id of peers) if (id < min) min = id;
  return min;
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
 */
export function lockVerdict(c: LockedChange): LockVerdict {
  if (c.lock === 'none') return 'accept';
  if (c.origin === 'local') return c.lock === 'here' ? 'accept' : 'restore';
  if (c.versionOnly || c.madeByHolder || c.holderHasSeen) return 'accept';
  return c.lock === 'here' ? 'refuse-keep-copy' : 'refuse-wait';
}

/** The fields of a request forwarded by a peer that the authority must not take on trust. */
export type PeerLockAsk =
  | { readonly op: 'lock'; readonly path: string; readonly device: string }
  | { readonly op: 'unlock' | 'refresh'; readonly path: string; readonly user: string };

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
  const verb = ask.op === 'unlock' ? 'unlock' : 'extend';
  return `${ask.path} is locked by ${held.owner} at ${deviceName(held.device)}; ${deviceName(from)} cannot ${verb} a lock held at another device (do it through ${deviceName(held.device)}, or through the lock authority)`;
}

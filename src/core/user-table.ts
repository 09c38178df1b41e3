/**
 * The cluster's users, one table for every device: pure rules for names,
 * for changing the table (add, remove, the last administrator) and for what
 * a peer may claim about a user, and the checked wire format of the users
 * stream (a snapshot, then changes) and of user requests. The lock
 * authority's device holds the table; the others follow it.
 */
import { LockstepError } from '../base/errors.js';
import { shortId } from './device-id.js';

/** A user as the cluster's table keeps it: never the token, only its SHA-256. */
export interface UserEntry {
  readonly name: string;
  readonly admin: boolean;
  /** SHA-256 of the token, hex. */
  readonly tokenSha256: string;
  /** ISO 8601. */
  readonly created: string;
}

/** A change to the table. */
export type UserChange =
  | { readonly type: 'put'; readonly user: UserEntry }
  | { readonly type: 'removed'; readonly name: string };

/** Messages of the users stream. */
export type UserStreamMessage =
  | { readonly type: 'users'; readonly users: readonly UserEntry[] }
  | { readonly type: 'change'; readonly change: UserChange };

/**
 * A request to the table's holder: `add` (a new user, or a new token with
 * `replace`), `remove`, asked by user `by`; `register` is a device entering
 * its own administrator (named after the device, see {@link adminNameOf}).
 */
export type UserRequest =
  | {
      readonly op: 'add';
      readonly by: string;
      readonly user: UserEntry;
      readonly replace: boolean;
    }
  | { readonly op: 'remove'; readonly by: string; readonly name: string }
  | { readonly op: 'register'; readonly user: UserEntry };

/** A user name: 1 to 64 of `A-Z a-z 0-9 . _ -`. */
export const USER_NAME = /^[A-Za-z0-9._-]{1,64}$/;
/** The name of a home's administrator before names were per device. */
export const OLD_ADMIN_NAME = 'admin';
const ADMIN_PREFIX = 'admin.';

/**
 * The name of a device's administrator (made by `lockstep init`, its token
 * the home's `token` file): `admin.` and the device's short ID, e.g.
 * `admin.MFZWI3D`. The short ID is unique in a cluster and never changes
 * (a device's name may do both), and it fits the user name rules.
 */
export function adminNameOf(deviceId: string): string {
  return `${ADMIN_PREFIX}${shortId(deviceId)}`;
}

/** Whether `name` is reserved for devices' administrators (`admin`, `admin.*`). */
export function isDeviceAdminName(name: string): boolean {
  return name === OLD_ADMIN_NAME || name.startsWith(ADMIN_PREFIX);
}

/**
 * Why `name` cannot be a user's name, or undefined.
 */
export function userNameProblem(name: string): string | undefined {
  if (!USER_NAME.test(name)) {
    return `Invalid user name ${JSON.stringify(name)}: use 1 to 64 letters, digits, '.', '_' or '-'`;
  }
  return undefined;
}

/** The table after `change` (a new array; the input is not changed). */
export function applyUserChange(table: readonly UserEntry[], change: UserChange): UserEntry[] {
  const name = change.type === 'put' ? change.user.name : change.name;
  const rest = table.filter((u) => u.name !== name);
  if (change.type === 'put') rest.push(change.user);
  return rest.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The changes that turn `before` into `after` (for announcing a snapshot's difference). */
export function tableDiff(before: readonly UserEntry[], after: readonly UserEntry[]): UserChange[] {
  const old = new Map(before.map((u) => [u.name, u]));
  const out: UserChange[] = [];
  for (const u of after) {
    if (!sameUser(old.get(u.name), u)) out.push({ type: 'put', user: u });
    old.delete(u.name);
  }
  for (const name of old.keys()) out.push({ type: 'removed', name });
  return out;
}

/** Whether two entries are the same user with the same token and rights. */
export function sameUser(a: UserEntry | undefined, b: UserEntry): boolean {
  return (
    a?.name === b.name &&
    a.admin === b.admin &&
    a.tokenSha256 === b.tokenSha256 &&
    a.created === b.created
  );
}

/**
 * What the table's holder does with `req`, asked through device `from`
 * (its full ID: the certificate's, or this device's own for its clients).
 * Only an administrator of the table adds or removes users; a device may
 * always register its own administrator; the last administrator is never
 * removed, nor the administrator of a device among `members` (the full
 * IDs of the cluster's devices, as the table's holder knows them); names
 * of devices' administrators are not given to others.
 *
 * @returns the change to make (none when the table already says so)
 * @throws LockstepError `FORBIDDEN`, `USER_EXISTS`, `NOT_FOUND`, `USAGE`
 */
export function decideUserRequest(
  table: readonly UserEntry[],
  req: UserRequest,
  from: string,
  members: readonly string[] = [],
): UserChange | undefined {
  const find = (name: string) => table.find((u) => u.name === name);
  if (req.op === 'register') {
    const own = adminNameOf(from);
    if (req.user.name !== own || !req.user.admin) {
      throw new LockstepError(
        'FORBIDDEN',
        `A device registers only its own administrator (${own}); ${req.user.name} refused`,
      );
    }
    return sameUser(find(own), req.user) ? undefined : { type: 'put', user: req.user };
  }
  const by = find(req.by);
  const byAdmin = by?.admin === true || req.by === adminNameOf(from);
  if (!byAdmin) {
    throw new LockstepError(
      'FORBIDDEN',
      `Only an administrator can manage users; ${req.by} ${by === undefined ? 'is not a user of this cluster' : 'is not one'}`,
    );
  }
  if (req.op === 'add') {
    const problem = userNameProblem(req.user.name);
    if (problem !== undefined) throw new LockstepError('USAGE', problem);
    if (isDeviceAdminName(req.user.name)) {
      throw new LockstepError(
        'USER_EXISTS',
        `The names admin and admin.* belong to the devices' administrators (each device's is admin.<its short ID>); choose another name`,
      );
    }
    if (find(req.user.name) !== undefined && !req.replace) {
      throw new LockstepError(
        'USER_EXISTS',
        `The user ${req.user.name} already exists in the cluster; give --replace to give it a new token (the old one stops working on every device)`,
      );
    }
    return { type: 'put', user: req.user };
  }
  const victim = find(req.name);
  if (victim === undefined) {
    throw new LockstepError(
      'NOT_FOUND',
      `No user ${req.name} in the cluster; see \`lockstep user list\``,
    );
  }
  const device = members.find((id) => adminNameOf(id) === victim.name);
  if (device !== undefined) {
    throw new LockstepError(
      'USAGE',
      `${victim.name} is the administrator of a device of the cluster (${shortId(device)}), whose token is that device's home's token file; it stays while the device is a peer (remove the device first with \`lockstep peer remove\`)`,
    );
  }
  if (victim.admin && !table.some((u) => u.admin && u.name !== victim.name)) {
    throw new LockstepError(
      'USAGE',
      `${victim.name} is the last administrator of the cluster; make another one first (\`lockstep user add NAME --admin\`)`,
    );
  }
  return { type: 'removed', name: victim.name };
}

/**
 * Why a peer's word about a user is refused, or undefined: the user must be
 * in the cluster's table, and an administrator there when `admin` is
 * claimed. A device's own administrator (named by its certificate) is
 * always known to it, registered yet or not.
 */
export function userClaimProblem(
  table: readonly UserEntry[],
  name: string,
  admin: boolean,
  from: string,
  deviceName: string,
): string | undefined {
  if (name === adminNameOf(from)) return undefined;
  const u = table.find((e) => e.name === name);
  if (u === undefined) {
    return `device ${deviceName} asked for user ${name}, who is not a user of this cluster`;
  }
  if (admin && !u.admin) {
    return `device ${deviceName} claimed ${name} is an administrator; the cluster's table says not`;
  }
  return undefined;
}

const bad = (what: string) => new LockstepError('PEER_INVALID', `Peer user message: ${what}`);

function obj(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw bad(`${what} must be an object`);
  }
  return v as Record<string, unknown>;
}

function name(v: unknown, what: string): string {
  if (typeof v !== 'string' || !USER_NAME.test(v)) throw bad(`${what} must be a user name`);
  return v;
}

/** Checks a user entry received from a peer or read from a file. */
export function decodeUserEntry(v: unknown): UserEntry {
  const o = obj(v, 'user');
  if (typeof o.admin !== 'boolean') throw bad('admin must be true or false');
  if (typeof o.tokenSha256 !== 'string' || !/^[0-9a-f]{64}$/.test(o.tokenSha256)) {
    throw bad('tokenSha256 must be 64 hex digits');
  }
  if (typeof o.created !== 'string' || o.created.length > 64 || /\p{Cc}/u.test(o.created)) {
    throw bad('created must be a time');
  }
  return {
    name: name(o.name, 'name'),
    admin: o.admin,
    tokenSha256: o.tokenSha256,
    created: o.created,
  };
}

/** Checks a message of the users stream. */
export function decodeUserStream(v: unknown): UserStreamMessage {
  const o = obj(v, 'message');
  if (o.type === 'users') {
    if (!Array.isArray(o.users) || o.users.length > 100_000) throw bad('users must be a list');
    return { type: 'users', users: o.users.map(decodeUserEntry) };
  }
  if (o.type === 'change') {
    const c = obj(o.change, 'change');
    if (c.type === 'put')
      return { type: 'change', change: { type: 'put', user: decodeUserEntry(c.user) } };
    if (c.type === 'removed') {
      return { type: 'change', change: { type: 'removed', name: name(c.name, 'name') } };
    }
    throw bad('change type is unknown');
  }
  throw bad('unknown message type');
}

/** Checks a user request forwarded by a peer. */
export function decodeUserRequest(v: unknown): UserRequest {
  const o = obj(v, 'request');
  if (o.op === 'add') {
    if (typeof o.replace !== 'boolean') throw bad('replace must be true or false');
    return { op: 'add', by: name(o.by, 'by'), user: decodeUserEntry(o.user), replace: o.replace };
  }
  if (o.op === 'remove') return { op: 'remove', by: name(o.by, 'by'), name: name(o.name, 'name') };
  if (o.op === 'register') return { op: 'register', user: decodeUserEntry(o.user) };
  throw bad('op must be add, remove or register');
}

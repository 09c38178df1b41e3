/**
 * The users of a device's client API, each known by a bearer token. The
 * device's administrator's token is the home's `token` file (written by
 * `lockstep init`); the cluster's users live in `users.json`, which keeps
 * only a SHA-256 of each token: on the lock authority's device it is the
 * cluster's table, on the others the copy they follow (version 2). A
 * version 1 file is a device's own users from before users were shared.
 * A running device sees the file change without a restart.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { errorCode, errorMessage, LockstepError } from '../base/errors.js';
import { OLD_ADMIN_NAME, isDeviceAdminName, type UserEntry } from '../core/user-table.js';
import type { User } from '../core/user.js';
import { writeFileAtomic } from './config.js';
import { homePaths, readToken } from './home.js';

/** The users file's name in the home. */
export const USERS_FILE = 'users.json';
/** The version of `users.json` that holds the cluster's table. */
export const USERS_VERSION = 2;

const NAME = /^[A-Za-z0-9._-]{1,64}$/;

const usersFileSchema = z.strictObject({
  version: z.union([z.literal(1), z.literal(2)]),
  users: z.array(
    z.strictObject({
      name: z.string().regex(NAME),
      admin: z.boolean(),
      /** SHA-256 of the token, hex. */
      tokenSha256: z.string().regex(/^[0-9a-f]{64}$/),
      created: z.string(),
    }),
  ),
});

export type { User };

type UsersFile = z.output<typeof usersFileSchema>;

/** Finds the user of a bearer token. */
export interface UserStore {
  /** The user whose token this is, or undefined. */
  authenticate(token: string): User | undefined;
  /**
   * The user whose token has this SHA-256, or undefined (web sessions keep
   * the digest of the token they were made with and check it on every use).
   */
  userOfDigest(sha256: Buffer): User | undefined;
}

/** SHA-256 of a token. */
export function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/**
 * Checks a user name: 1 to 64 of `A-Z a-z 0-9 . _ -`.
 *
 * @throws LockstepError `USAGE` naming the problem
 */
function checkUserName(name: string): void {
  if (!NAME.test(name)) {
    throw new LockstepError(
      'USAGE',
      `Invalid user name ${JSON.stringify(name)}: use 1 to 64 letters, digits, '.', '_' or '-'`,
    );
  }
}

/** Reads `users.json`; a missing file is no users (a version 2 table: nothing to carry over). */
function readUsersFile(file: string): UsersFile {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return { version: USERS_VERSION, users: [] };
    throw new LockstepError('HOME_INVALID', `Cannot read ${file}: ${errorMessage(err)}`, {
      cause: err,
    });
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new LockstepError('HOME_INVALID', `Invalid JSON in ${file}: ${errorMessage(err)}`, {
      cause: err,
    });
  }
  const parsed = usersFileSchema.safeParse(data);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    const where = first && first.path.length > 0 ? `${first.path.join('.')}: ` : '';
    throw new LockstepError(
      'HOME_INVALID',
      `Invalid users file ${file}: ${where}${first?.message ?? 'unexpected content'}`,
    );
  }
  return parsed.data;
}

/** A file's identity and change stamp, to notice that it was replaced. */
function stamp(file: string): string {
  try {
    const st = fs.statSync(file);
    return `${st.ino}:${st.size}:${st.mtimeMs}`;
  } catch {
    return 'none';
  }
}

/**
 * Creates a user with a new random token and records it in the home's
 * `users.json` (mode 0600, written atomically).
 *
 * @param opts.replace - give an existing user a new token instead of failing
 * @param opts.admin - make the user an administrator (may force unlocks)
 * @returns the user and its token (shown once: only its hash is kept)
 * @throws LockstepError `USAGE` for a bad name, `USER_EXISTS` for a name in
 *   use (without `replace`) or `admin`, `CONFIG_MISSING` if `home` is not a home
 */
export function addUser(
  home: string,
  name: string,
  opts: { replace?: boolean; admin?: boolean } = {},
): { user: User; token: string } {
  checkUserName(name);
  const paths = homePaths(home);
  // Refuse a home that is not one (and read its token, so `admin` is known).
  readToken(home);
  if (isDeviceAdminName(name)) {
    throw new LockstepError(
      'USER_EXISTS',
      `The names admin and admin.* belong to the devices' administrators; this device's token is ${paths.token}. ` +
        'Choose another name',
    );
  }
  const file = join(paths.home, USERS_FILE);
  const data = readUsersFile(file);
  const i = data.users.findIndex((u) => u.name === name);
  if (i >= 0 && opts.replace !== true) {
    throw new LockstepError(
      'USER_EXISTS',
      `The user ${name} already exists; give --replace to give it a new token (the old one stops working)`,
    );
  }
  const token = randomBytes(32).toString('base64url');
  const entry = {
    name,
    admin: opts.admin === true,
    tokenSha256: digest(token).toString('hex'),
    created: new Date().toISOString(),
  };
  const users = [...data.users];
  if (i >= 0) users[i] = entry;
  else users.push(entry);
  writeFileAtomic(file, `${JSON.stringify({ version: data.version, users }, null, 2)}\n`, 0o600);
  return { user: { name, admin: entry.admin }, token };
}

/** A new random token and its SHA-256 (hex). */
export function newToken(): { token: string; tokenSha256: string } {
  const token = randomBytes(32).toString('base64url');
  return { token, tokenSha256: digest(token).toString('hex') };
}

/**
 * The users of the home's `users.json`, and whether it is the cluster's
 * table (version 2) or a device's own users from before (version 1).
 *
 * @throws LockstepError `HOME_INVALID` if it cannot be read or is invalid
 */
export function readUsersTable(home: string): { version: 1 | 2; users: UserEntry[] } {
  return readUsersFile(join(homePaths(home).home, USERS_FILE));
}

/** Writes the cluster's user table to the home's `users.json` (version 2, mode 0600, atomically). */
export function writeUsersTable(home: string, users: readonly UserEntry[]): void {
  const file = join(homePaths(home).home, USERS_FILE);
  const body = { version: USERS_VERSION, users };
  writeFileAtomic(file, `${JSON.stringify(body, null, 2)}\n`, 0o600);
}

/** One known token: its hash and its user. */
interface Known {
  readonly hash: Buffer;
  readonly user: User;
}

/**
 * The users of the home `home`: the device's administrator (the `token`
 * file, named `adminName`: `admin.<short ID>` for a running device, see
 * `adminNameOf`) and those of `users.json`. Tokens are compared by their SHA-256 in constant
 * time. On every check the files are read again if they changed, so users
 * added, removed or given new tokens while the device runs are seen at once.
 *
 * @throws LockstepError if the token file cannot be read or `users.json` is invalid
 */
export function openUserStore(home: string, adminName: string = OLD_ADMIN_NAME): UserStore {
  const paths = homePaths(home);
  const usersFile = join(paths.home, USERS_FILE);
  let known: Known[] = [];
  let seen = '';
  const load = () => {
    const now = `${stamp(paths.token)}|${stamp(usersFile)}`;
    if (now === seen) return false;
    const next: Known[] = [
      { hash: digest(readToken(home)), user: { name: adminName, admin: true } },
    ];
    for (const u of readUsersFile(usersFile).users) {
      next.push({
        hash: Buffer.from(u.tokenSha256, 'hex'),
        user: { name: u.name, admin: u.admin },
      });
    }
    known = next;
    seen = now;
    return true;
  };
  load();
  const find = (hash: Buffer): User | undefined => {
    // Every entry is compared, so the time taken says nothing about which matched.
    let found: User | undefined;
    for (const k of known) if (timingSafeEqual(k.hash, hash) && found === undefined) found = k.user;
    return found;
  };
  /** The user of a token digest, after reading the files again if they changed. */
  const current = (hash: Buffer): User | undefined => {
    try {
      load();
    } catch {
      // A half-edited or broken file: keep the users we had.
    }
    return find(hash);
  };
  return {
    authenticate(token: string): User | undefined {
      if (token === '') return undefined;
      return current(digest(token));
    },
    userOfDigest(sha256: Buffer): User | undefined {
      return current(sha256);
    },
  };
}

/** A user store over a fixed token table (for tests and embedding). */
export function staticUserStore(tokens: Readonly<Record<string, User>>): UserStore {
  const known: Known[] = Object.entries(tokens).map(([t, user]) => ({ hash: digest(t), user }));
  const find = (hash: Buffer): User | undefined => {
    let found: User | undefined;
    for (const k of known) if (timingSafeEqual(k.hash, hash) && found === undefined) found = k.user;
    return found;
  };
  return {
    authenticate: (token: string) => find(digest(token)),
    userOfDigest: (sha256: Buffer) => find(sha256),
  };
}

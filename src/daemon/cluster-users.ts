/**
 * One identity per person across the cluster: the users' table lives with
 * the lock authority (like the locks), every other device follows its
 * stream (a snapshot, then changes) and keeps a copy in its `users.json`,
 * so a device restarted while the authority is away still knows everyone.
 * Adding or removing a user on a device that is not the authority is sent
 * there, like a lock request. Where the table lives is a
 * {@link UserTableSource}: this device's file, or the authority device over
 * the peer link (an etcd authority would be a third).
 */
import { errorMessage, LockstepError } from '../base/errors.js';
import type { Logger } from '../base/log.js';
import { digest, newToken, readUsersTable, writeUsersTable } from '../config/users.js';
import { readToken } from '../config/home.js';
import {
  adminNameOf,
  applyUserChange,
  decideUserRequest,
  decodeUserEntry,
  decodeUserRequest,
  decodeUserStream,
  isDeviceAdminName,
  tableDiff,
  userClaimProblem,
  userNameProblem,
  type UserChange,
  type UserEntry,
  type UserRequest,
  type UserStreamMessage,
} from '../core/user-table.js';
import type { User } from '../core/user.js';
import type { UserInfo } from '../api/backend.js';

/** How long a user request may take before the authority counts as unreachable. */
export const USER_REQUEST_TIMEOUT_MS = 2000;

/**
 * Where the cluster's user table lives. `request` applies a request there
 * (held to `decideUserRequest`) and resolves with the user it concerns;
 * `subscribe` follows the table.
 */
export interface UserTableSource {
  request(req: UserRequest): Promise<UserEntry>;
  subscribe(fn: (message: UserStreamMessage) => void): () => void;
}

/** Options of {@link ClusterUsers}. */
export interface ClusterUsersOptions {
  readonly home: string;
  /** This device's full ID. */
  readonly self: string;
  readonly log: Logger;
  /** The lock authority device, which holds the table. */
  authority(): string;
  /** Sends a user request to a device (the peer link's `POST /v1/users`). */
  send(device: string, req: UserRequest, timeoutMs: number): Promise<unknown>;
  deviceName(id: string): string;
  /**
   * Whether the authority is recorded. While it is not (no lock was ever
   * granted), a device may have kept users as its own authority: the
   * cluster's authority, once followed, is offered them instead of dropping them.
   */
  decided?(): boolean;
  /** The full IDs of this device and its configured peers (their administrators stay). */
  members?(): Iterable<string>;
}

/** The cluster's users, as this device knows them. */
export class ClusterUsers {
  /** The table, or this device's copy of it (the contents of `users.json`). */
  private table: UserEntry[];
  /** Users of a `users.json` from before users were shared, offered to the authority once. */
  private legacy: UserEntry[] | undefined;
  private readonly listeners = new Set<(m: UserStreamMessage) => void>();
  private registering = false;
  /** The table on this device, when it is the authority. */
  readonly embedded: UserTableSource;
  /** The table on the authority device, when another device is. */
  readonly forwarded: UserTableSource;

  constructor(private readonly o: ClusterUsersOptions) {
    const file = readUsersTable(o.home);
    this.table = file.users;
    this.legacy = file.version === 1 && file.users.length > 0 ? file.users : undefined;
    this.embedded = {
      request: (req) => Promise.resolve(this.handleHere(req, o.self)),
      subscribe: (fn) => {
        this.listeners.add(fn);
        fn({ type: 'users', users: this.table });
        return () => this.listeners.delete(fn);
      },
    };
    this.forwarded = {
      request: async (req) => decodeUserEntry(await this.sendToAuthority(req)),
      // The authority's stream arrives through deliver().
      subscribe: () => () => undefined,
    };
  }

  /** The name of this device's administrator. */
  get adminName(): string {
    return adminNameOf(this.o.self);
  }

  private get isAuthority(): boolean {
    return this.o.authority() === this.o.self;
  }

  /** Every user, by name. */
  list(): readonly UserEntry[] {
    return this.table;
  }

  /** The source in charge now. */
  private source(): UserTableSource {
    return this.isAuthority ? this.embedded : this.forwarded;
  }

  /**
   * This device is the authority now (at start, or after a move): the
   * table is its own copy, with this device's administrator in it.
   */
  authorityMayHaveChanged(): void {
    if (!this.isAuthority) return;
    if (this.legacy !== undefined) {
      this.legacy = undefined;
      this.save(this.table); // the users of before are the cluster's table now
    }
    const own = this.ownAdmin();
    if (own === undefined) return;
    try {
      this.handleHere({ op: 'register', user: own }, this.o.self);
    } catch (err) {
      this.o.log.warn({ err: errorMessage(err) }, 'cannot record this device administrator');
    }
  }

  /** For clients: adds a user (or gives it a new token) through the authority. */
  async add(
    name: string,
    opts: { admin: boolean; replace: boolean },
    by: User,
  ): Promise<UserInfo & { token: string }> {
    const problem = userNameProblem(name);
    if (problem !== undefined) throw new LockstepError('USAGE', problem);
    this.needAdmin(by, 'add users');
    const { token, tokenSha256 } = newToken();
    const user = { name, admin: opts.admin, tokenSha256, created: new Date().toISOString() };
    const done = await this.source().request({
      op: 'add',
      by: by.name,
      user,
      replace: opts.replace,
    });
    this.adopt({ type: 'put', user: done });
    return { ...info(done), token };
  }

  /** For clients: removes a user through the authority (its token stops working everywhere). */
  async remove(name: string, by: User): Promise<UserInfo> {
    this.needAdmin(by, 'remove users');
    const gone = await this.source().request({ op: 'remove', by: by.name, name });
    this.adopt({ type: 'removed', name: gone.name });
    return info(gone);
  }

  /**
   * Executes a user request forwarded by peer `from` (its full device ID,
   * from its certificate); this device must be the authority.
   *
   * @throws LockstepError with the code to answer
   */
  handle(body: unknown, from: string): UserEntry {
    if (!this.isAuthority) {
      throw new LockstepError(
        'AUTHORITY_DISAGREE',
        `This device is not the lock authority, which keeps the users; it uses ${this.o.deviceName(this.o.authority())}`,
      );
    }
    return this.handleHere(decodeUserRequest(body), from);
  }

  /** The users stream this device serves (as the authority): a snapshot, then changes. */
  subscribe(fn: (message: UserStreamMessage) => void): () => void {
    return this.embedded.subscribe(fn);
  }

  /**
   * Takes a message of `from`'s users stream; only the authority's counts.
   *
   * @throws LockstepError `PEER_INVALID` if it is malformed
   */
  deliver(from: string, value: unknown): void {
    if (from !== this.o.authority() || from === this.o.self) return;
    const msg = decodeUserStream(value);
    if (msg.type === 'change') {
      this.adopt(msg.change);
      return;
    }
    const undecided = this.o.decided?.() === false;
    const own = undecided ? this.table.filter((u) => !isDeviceAdminName(u.name)) : [];
    const legacy = [...(this.legacy ?? []), ...own];
    this.legacy = undefined;
    if (tableDiff(this.table, msg.users).length > 0) this.save([...msg.users]);
    this.registerWithAuthority(legacy);
  }

  /**
   * Why a peer's lock request names a user the table does not allow
   * (unknown, or claiming an administrator's rights it lacks), or undefined.
   */
  claimProblem(name: string, admin: boolean, from: string): string | undefined {
    return userClaimProblem(this.table, name, admin, from, this.o.deviceName(from));
  }

  /** Applies a request to this device's table (it is the authority) and announces the change. */
  private handleHere(req: UserRequest, from: string): UserEntry {
    const members = [this.o.self, ...(this.o.members?.() ?? [])];
    const change = decideUserRequest(this.table, req, from, members);
    const name = req.op === 'remove' ? req.name : req.user.name;
    const before = this.table.find((u) => u.name === name);
    if (change !== undefined) this.adopt(change);
    const after = this.table.find((u) => u.name === name);
    const entry = after ?? before;
    if (entry === undefined) throw new LockstepError('NOT_FOUND', `No user ${name}`);
    return entry;
  }

  /** Records a change in the table (or the copy), and passes it on to followers. */
  private adopt(change: UserChange): void {
    const next = applyUserChange(this.table, change);
    if (tableDiff(this.table, next).length === 0) return;
    this.save(next);
    for (const fn of this.listeners) fn({ type: 'change', change });
  }

  private save(users: UserEntry[]): void {
    this.table = users;
    try {
      writeUsersTable(this.o.home, users);
    } catch (err) {
      this.o.log.error({ err: errorMessage(err) }, 'cannot write users.json');
    }
  }

  /**
   * Enters this device's administrator in the authority's table, and the
   * users this device had before users were shared (one name, one token:
   * a name the cluster already has keeps the cluster's token).
   */
  private registerWithAuthority(legacy: UserEntry[] | undefined): void {
    const own = this.ownAdmin();
    const needed = own !== undefined && !this.table.some((u) => sameToken(u, own));
    const offer = (legacy ?? []).filter((u) => !this.table.some((t) => t.name === u.name));
    if ((!needed && offer.length === 0) || this.registering) return;
    this.registering = true;
    void (async () => {
      try {
        if (needed) {
          const entry = await this.sendToAuthority({ op: 'register', user: own });
          this.adopt({ type: 'put', user: decodeUserEntry(entry) });
        }
        for (const u of offer) await this.offer(u);
      } catch (err) {
        this.o.log.warn(
          { err: errorMessage(err) },
          `cannot enter this device's users in the cluster's table: ${errorMessage(err)}`,
        );
      } finally {
        this.registering = false;
      }
    })();
  }

  /** Offers a user this device kept to the authority; a name the cluster has keeps the cluster's. */
  private async offer(u: UserEntry): Promise<void> {
    try {
      await this.sendToAuthority({ op: 'add', by: this.adminName, user: u, replace: false });
      this.o.log.info({ user: u.name }, `user ${u.name} of this device is now the cluster's`);
    } catch (err) {
      if (!(err instanceof LockstepError) || err.code !== 'USER_EXISTS') throw err;
      this.o.log.warn(
        { user: u.name },
        `the cluster already has a user ${u.name}: its token is the cluster's; give this device's ${u.name} that token, or a new one with \`lockstep user add ${u.name} --replace\``,
      );
    }
  }

  /** This device's administrator, as the table keeps it (undefined if its token cannot be read). */
  private ownAdmin(): UserEntry | undefined {
    try {
      const tokenSha256 = digest(readToken(this.o.home)).toString('hex');
      const known = this.table.find((u) => u.name === this.adminName);
      const created = known?.created ?? new Date().toISOString();
      return { name: this.adminName, admin: true, tokenSha256, created };
    } catch (err) {
      this.o.log.warn({ err: errorMessage(err) }, 'cannot read the administrator token');
      return undefined;
    }
  }

  private needAdmin(by: User, what: string): void {
    if (!by.admin) {
      throw new LockstepError(
        'FORBIDDEN',
        `Only an administrator can ${what}; ${by.name} is not one`,
      );
    }
  }

  private async sendToAuthority(req: UserRequest): Promise<unknown> {
    const device = this.o.authority();
    try {
      return await this.o.send(device, req, USER_REQUEST_TIMEOUT_MS);
    } catch (err) {
      if (err instanceof LockstepError && err.code !== 'PEER_UNREACHABLE') throw err;
      throw new LockstepError(
        'AUTHORITY_UNREACHABLE',
        `The lock authority ${this.o.deviceName(device)}, which keeps the cluster's users, cannot be reached (${errorMessage(err)}); adding and removing users wait for it, and every known user still signs in`,
        { cause: err },
      );
    }
  }
}

/** Whether `a` is `b`'s name with `b`'s token and rights. */
function sameToken(a: UserEntry, b: UserEntry): boolean {
  return a.name === b.name && a.tokenSha256 === b.tokenSha256 && a.admin === b.admin;
}

/** A user as clients see it. */
function info(u: UserEntry): UserInfo {
  return { name: u.name, admin: u.admin, created: u.created };
}

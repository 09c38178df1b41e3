/**
 * The contract between the client API (HTTP, the CLI, the web page) and the
 * running device: what a client can ask and what it gets back, as plain
 * JSON-ready data. The device implements {@link ClientBackend}; the API
 * server only translates HTTP to these calls.
 */
import type { EventEmitter } from 'node:events';
import type { User } from '../core/user.js';
import type { EntryType } from '../core/record.js';

export type { User };

/** A device of the cluster, as clients see it. */
export interface DeviceRef {
  /** Full device ID. */
  readonly id: string;
  /** First 7 characters of the ID. */
  readonly short: string;
  /** Human name ("A"). */
  readonly name: string;
}

/** A lock, as clients see it. */
export interface LockInfo {
  /** Lock ID (an opaque token). */
  readonly id: string;
  readonly path: string;
  /** The user who holds it. */
  readonly owner: string;
  /** The device the owner's client was connected to. */
  readonly device: DeviceRef;
  /** ISO 8601 time it was granted. */
  readonly created: string;
  /** ISO 8601 expiry, or null for none. */
  readonly expires: string | null;
  /** Why, as the owner said; '' for none. */
  readonly reason: string;
  /** What it is on: one file, or a directory and everything below it. */
  readonly scope: 'file' | 'directory';
}

/** One entry of the merged listing (the global view of one path). */
export interface ListEntry {
  /** Last path segment. */
  readonly name: string;
  /** Folder-relative path. */
  readonly path: string;
  readonly type: EntryType;
  /** Bytes (0 for directories). */
  readonly size: number;
  /** ISO 8601 modification time of the winning version. */
  readonly modified: string;
  /**
   * The lock that covers this path, if any: its own, or a directory lock
   * above it (then `lock.path` is that directory's, and `lock.scope` is
   * `directory`).
   */
  readonly lock: LockInfo | null;
  /** Devices that hold the winning version. */
  readonly devices: readonly DeviceRef[];
  /** This device's progress towards the winning version, when it does not hold it yet. */
  readonly syncing: { readonly done: number; readonly total: number } | null;
  /** True for a conflict copy (`NAME.conflict-YYYYMMDD-HHMMSS-ID.EXT`). */
  readonly conflict: boolean;
}

/** How to list. */
export interface ListQuery {
  /** Directory to list ('' for the folder root); only its direct entries. */
  readonly dir: string;
  readonly sort: 'name' | 'size' | 'modified';
  readonly order: 'asc' | 'desc';
  readonly offset: number;
  readonly limit: number;
  /** Everything below `dir`, not only its direct entries (by path when sorted by name). */
  readonly recursive?: boolean;
}

/** One page of the listing. */
export interface ListPage {
  readonly dir: string;
  /** Entries in the directory (not deleted) in all. */
  readonly total: number;
  readonly entries: readonly ListEntry[];
}

/** A peer's connection state. */
export interface PeerStatus extends DeviceRef {
  readonly address: string;
  readonly connected: boolean;
  /** ISO 8601, or null if never. */
  readonly lastSeen: string | null;
  /** Why the last connection attempt failed, if it did. */
  readonly error: string | null;
}

/** A file being received: bytes `done` of `total`. */
export interface Transfer {
  readonly path: string;
  readonly done: number;
  readonly total: number;
}

/** The device and the cluster, for `lockstep status`. */
export interface Status {
  readonly device: DeviceRef & { readonly folder: string; readonly version: string };
  readonly peers: readonly PeerStatus[];
  /** The lock authority this device uses, or null when devices disagree. */
  readonly lockAuthority: DeviceRef | null;
  /** Files and bytes this device still needs. */
  readonly toSync: { readonly files: number; readonly bytes: number };
  /** Files this device is receiving now, with bytes received of the total. */
  readonly transfers: readonly Transfer[];
  /** Local totals. */
  readonly local: { readonly files: number; readonly bytes: number };
  /** Why the folder is stopped, or null. */
  readonly stopped: string | null;
  /** Per-path problems (unreadable, cannot sync, …). */
  readonly problems: readonly { readonly path: string; readonly message: string }[];
}

/** Live notifications (Server-Sent Events, `lockstep watch`). */
export type ClientEvent =
  | {
      readonly type: 'added' | 'modified' | 'deleted';
      readonly path: string;
      readonly device: DeviceRef;
      readonly size: number;
      /** Size before a modification. */
      readonly oldSize?: number;
      readonly time: string;
    }
  | {
      readonly type: 'synced';
      readonly path: string;
      /** The device that now holds it (this one). */
      readonly device: DeviceRef;
      readonly deleted: boolean;
      /** Milliseconds from noticing the change to holding it, when known. */
      readonly durationMs?: number;
      readonly time: string;
    }
  | {
      readonly type: 'conflict';
      readonly path: string;
      /** Where the losing version is kept. */
      readonly copy: string;
      readonly device: DeviceRef;
      readonly time: string;
    }
  | {
      /**
       * `dropped`: the holder deleted the file and the lock ended with it;
       * `moved`: the holder renamed the file and the lock followed (`from`).
       */
      readonly type: 'locked' | 'unlocked' | 'expired' | 'forced' | 'dropped' | 'moved';
      readonly lock: LockInfo;
      /** Who forced an unlock. */
      readonly by?: string;
      /** Where a moved lock was. */
      readonly from?: string;
      readonly time: string;
    }
  | {
      readonly type: 'connected' | 'disconnected';
      readonly device: DeviceRef;
      readonly reason?: string;
      readonly time: string;
    }
  | {
      /** This device's lock authority changed: `device` grants locks now. */
      readonly type: 'authority';
      readonly device: DeviceRef;
      /** How it changed (adopted on joining, moved on purpose, configuration edited). */
      readonly reason: string;
      readonly time: string;
    };

/** What `lockstep locks move-authority` did. */
export interface AuthorityMove {
  readonly from: DeviceRef;
  readonly to: DeviceRef;
  /** Locks handed over. */
  readonly locks: number;
}

/** A one-time code that signs the web page in as `user` (`POST /signin-codes`). */
export interface SignInCode {
  readonly code: string;
  /** ISO 8601; the code also stops working once used. */
  readonly expires: string;
  readonly user: User;
}

/**
 * A web session, exchanged for a sign-in code (`POST /signin`) or made for a
 * user token (`POST /sessions`): its bearer token.
 */
export interface WebSession {
  readonly token: string;
  readonly user: User;
  /** ISO 8601. */
  readonly expires: string;
}

/**
 * What the device offers clients. Failures are `LockstepError`s whose codes
 * the API maps to HTTP statuses: NOT_FOUND 404, NOT_A_FILE 409, LOCKED 423
 * (message names the holder and since when), NOT_LOCK_OWNER 403,
 * AUTHORITY_UNREACHABLE 503, AUTHORITY_DISAGREE 503, USAGE 400.
 */
export interface ClientBackend {
  list(q: ListQuery): ListPage;
  /**
   * The same page as {@link list}, as JSON text built entry by entry: for a
   * large recursive listing by name (ascending) it never holds all entries
   * at once. Optional; undefined when it cannot serve `q` this way.
   */
  listText?(q: ListQuery): { text: string; count: number; total: number } | undefined;
  /** The global view of one path, or undefined. */
  file(path: string): ListEntry | undefined;
  status(): Status;
  locks(): readonly LockInfo[];
  lock(path: string, user: User, opts: { ttlMs?: number; reason?: string }): Promise<LockInfo>;
  unlock(path: string, user: User, opts: { force?: boolean }): Promise<LockInfo>;
  /**
   * Moves the lock authority to `device` (an ID, short ID or name),
   * handing its table over; administrators only (FORBIDDEN otherwise).
   */
  moveAuthority(device: string, user: User): Promise<AuthorityMove>;
  /**
   * Writes a file into the folder (atomically: temp file, fsync, rename).
   * Refused with LOCKED (423) when someone else holds its lock, or when the
   * holder writes through another device than the lock's.
   */
  write(
    path: string,
    user: User,
    data: AsyncIterable<Uint8Array>,
  ): Promise<{ path: string; size: number }>;
  /** Deletes a file, link or empty directory; LOCKED (423) as for {@link write}. */
  remove(path: string, user: User): Promise<{ path: string }>;
  /** Emits 'event' for every {@link ClientEvent}. */
  readonly events: EventEmitter<{ event: [ClientEvent] }>;
  /** The cluster's users (a device without peers may not offer them: the routes then answer 404). */
  readonly users?: UserDirectoryApi;
}

/** A user of the cluster, as clients see it (never a token or its hash). */
export interface UserInfo {
  readonly name: string;
  readonly admin: boolean;
  /** ISO 8601. */
  readonly created: string;
}

/**
 * The cluster's users, for clients: every request is made by `user`;
 * adding and removing are for administrators (FORBIDDEN otherwise), and go
 * to the lock authority's device (AUTHORITY_UNREACHABLE when it cannot be
 * reached).
 */
export interface UserDirectoryApi {
  list(): readonly UserInfo[];
  /** Makes a user with a new token (shown only now), or a new token for one (`replace`). */
  add(
    name: string,
    opts: { admin: boolean; replace: boolean },
    user: User,
  ): Promise<UserInfo & { token: string }>;
  /** Removes a user: its token and web sessions stop working on every device. */
  remove(name: string, user: User): Promise<UserInfo>;
}

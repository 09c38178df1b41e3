/**
 * An in-memory {@link ClientBackend} for tests of the HTTP layer and the CLI:
 * a fixed global view, a lock table with the contract's errors, and events
 * on demand. It knows nothing of sync or of a lock authority.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type {
  AuthorityMove,
  ClientBackend,
  ClientEvent,
  DeviceRef,
  ListEntry,
  ListPage,
  ListQuery,
  LockInfo,
  Status,
  User,
} from '../api/backend.js';
import { LockstepError } from '../base/errors.js';
import type { EntryType } from '../core/record.js';

export const DEV_A: DeviceRef = { id: 'AAAAAAA-BBBBBBB', short: 'AAAAAAA', name: 'A' };
export const DEV_B: DeviceRef = { id: 'BBBBBBB-CCCCCCC', short: 'BBBBBBB', name: 'B' };

/** A path of the fake global view. */
export interface FakeFile {
  readonly path: string;
  readonly type?: EntryType;
  readonly size?: number;
  readonly modified?: string;
  readonly devices?: readonly DeviceRef[];
  readonly syncing?: { done: number; total: number } | null;
}

/** An in-memory backend; `calls` records what the API asked. */
export class FakeBackend implements ClientBackend {
  readonly events = new EventEmitter<{ event: [ClientEvent] }>();
  readonly calls: { method: string; args: unknown[] }[] = [];
  readonly files = new Map<string, FakeFile>();
  readonly lockTable = new Map<string, LockInfo>();
  /** Thrown by the next call, when set. */
  failNext: Error | undefined;

  constructor(
    files: readonly FakeFile[] = [],
    readonly device: DeviceRef = DEV_A,
  ) {
    for (const f of files) this.files.set(f.path, f);
  }

  private check(method: string, args: unknown[]): void {
    this.calls.push({ method, args });
    const err = this.failNext;
    if (err !== undefined) {
      this.failNext = undefined;
      throw err;
    }
  }

  private entry(f: FakeFile): ListEntry {
    const type = f.type ?? 'file';
    return {
      name: f.path.split('/').at(-1) as string,
      path: f.path,
      type,
      size: type === 'directory' ? 0 : (f.size ?? 0),
      modified: f.modified ?? '2021-09-26T11:00:06.000Z',
      lock: this.lockTable.get(f.path) ?? null,
      devices: f.devices ?? [DEV_A, DEV_B],
      syncing: f.syncing ?? null,
      conflict: /\.conflict-\d{8}-\d{6}-[A-Z2-7]+/.test(f.path),
    };
  }

  list(q: ListQuery): ListPage {
    this.check('list', [q]);
    if (q.dir !== '') {
      const d = this.files.get(q.dir);
      if (d === undefined) throw new LockstepError('NOT_FOUND', `No such directory: ${q.dir}`);
    }
    const prefix = q.dir === '' ? '' : `${q.dir}/`;
    const all = [...this.files.values()]
      .filter((f) => f.path.startsWith(prefix) && !f.path.slice(prefix.length).includes('/'))
      .map((f) => this.entry(f));
    const key = (e: ListEntry): string | number =>
      q.sort === 'size' ? e.size : q.sort === 'modified' ? e.modified : e.name;
    all.sort((x, y) => {
      const a = key(x);
      const b = key(y);
      const c = a < b ? -1 : a > b ? 1 : x.name < y.name ? -1 : 1;
      return q.order === 'desc' ? -c : c;
    });
    return { dir: q.dir, total: all.length, entries: all.slice(q.offset, q.offset + q.limit) };
  }

  file(path: string): ListEntry | undefined {
    this.check('file', [path]);
    const f = this.files.get(path);
    return f === undefined ? undefined : this.entry(f);
  }

  status(): Status {
    this.check('status', []);
    return {
      device: { ...this.device, folder: '/srv/shared', version: '0.1.0' },
      peers: [
        {
          ...DEV_B,
          address: '127.0.0.1:7710',
          connected: true,
          lastSeen: '2021-09-27T18:51:43.000Z',
          error: null,
        },
      ],
      lockAuthority: DEV_A,
      toSync: { files: 1, bytes: 8_600_000 },
      transfers: [{ path: 'c.pdf', done: 3_440_000, total: 8_600_000 }],
      local: { files: this.files.size, bytes: 9_000_000 },
      stopped: null,
      problems: [],
    };
  }

  locks(): readonly LockInfo[] {
    this.check('locks', []);
    return [...this.lockTable.values()];
  }

  async lock(path: string, user: User, opts: { ttlMs?: number; reason?: string }) {
    this.check('lock', [path, user, opts]);
    const f = this.files.get(path);
    if (f === undefined) throw new LockstepError('NOT_FOUND', `No such file: ${path}`);
    if ((f.type ?? 'file') !== 'file') {
      throw new LockstepError('NOT_A_FILE', `${path} is a ${f.type}; only files can be locked`);
    }
    const held = this.lockTable.get(path);
    if (held !== undefined) {
      throw new LockstepError(
        'LOCKED',
        `${path} is already locked by ${held.owner}@${held.device.name} since ${held.created}`,
      );
    }
    const now = Date.now();
    const lock: LockInfo = {
      id: randomBytes(8).toString('hex'),
      path,
      owner: user.name,
      device: this.device,
      created: new Date(now).toISOString(),
      expires: opts.ttlMs === undefined ? null : new Date(now + opts.ttlMs).toISOString(),
      reason: opts.reason ?? '',
      scope: 'file',
    };
    this.lockTable.set(path, lock);
    this.emit({ type: 'locked', lock, time: lock.created });
    return lock;
  }

  async write(path: string, user: User, data: AsyncIterable<Uint8Array>) {
    this.check('write', [path, user]);
    const held = this.lockTable.get(path);
    if (held && held.owner !== user.name) {
      throw new LockstepError('LOCKED', `${path} is locked by ${held.owner}`);
    }
    let size = 0;
    for await (const piece of data) size += piece.length;
    return { path, size };
  }

  async remove(path: string, user: User) {
    this.check('remove', [path, user]);
    const held = this.lockTable.get(path);
    if (held && held.owner !== user.name) {
      throw new LockstepError('LOCKED', `${path} is locked by ${held.owner}`);
    }
    return Promise.resolve({ path });
  }

  async unlock(path: string, user: User, opts: { force?: boolean }) {
    this.check('unlock', [path, user, opts]);
    const held = this.lockTable.get(path);
    if (held === undefined) throw new LockstepError('NOT_FOUND', `${path} is not locked`);
    const forced = held.owner !== user.name;
    if (forced && !(opts.force === true && user.admin)) {
      throw new LockstepError(
        'NOT_LOCK_OWNER',
        `${path} is locked by ${held.owner}, not ${user.name}` +
          (user.admin ? '; give --force to unlock it anyway' : ''),
      );
    }
    this.lockTable.delete(path);
    this.emit({
      type: forced ? 'forced' : 'unlocked',
      lock: held,
      ...(forced ? { by: user.name } : {}),
      time: new Date().toISOString(),
    });
    return held;
  }

  async moveAuthority(device: string, user: User): Promise<AuthorityMove> {
    this.check('moveAuthority', [device, user]);
    if (!user.admin) throw new LockstepError('FORBIDDEN', `${user.name} is not an administrator`);
    const to = [DEV_A, DEV_B].find(
      (d) => d.id === device || d.short === device || d.name === device,
    );
    if (to === undefined) throw new LockstepError('NOT_FOUND', `No device ${device}`);
    return { from: this.device, to, locks: this.lockTable.size };
  }

  /** Announces `ev` to every listener. */
  emit(ev: ClientEvent): void {
    this.events.emit('event', ev);
  }
}

/** The prototype's four files, on A and B. */
export const SAMPLE_FILES: readonly FakeFile[] = [
  { path: 'a.jpg', size: 46_592, modified: '2021-09-26T11:00:06.000Z' },
  { path: 'b.txt', size: 661, modified: '2021-09-27T18:51:43.000Z' },
  {
    path: 'c.pdf',
    size: 8_600_000,
    modified: '2021-07-08T23:50:38.000Z',
    syncing: { done: 40, total: 100 },
  },
  { path: 'd.gif', size: 131_994, modified: '2021-09-26T11:00:06.000Z', devices: [DEV_B] },
  { path: 'docs', type: 'directory', modified: '2021-09-20T10:00:00.000Z' },
  { path: 'docs/plan.md', size: 1200, modified: '2021-09-21T10:00:00.000Z' },
  { path: 'e.conflict-20261124-180340-B7XKQ2M.txt', size: 10, devices: [DEV_B] },
];

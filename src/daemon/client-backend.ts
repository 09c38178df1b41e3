/**
 * The device's answers to clients (the API, the CLI, the web page): the
 * global view as a listing, status, locks and live events, built from the
 * index, the cluster and the lock service.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { LockstepError } from '../base/errors.js';
import { isInternalPath, pathProblem } from '../core/path.js';
import { ensureParents, tempPath } from '../sync/temp-files.js';
import type {
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
import type { LockRow } from '../core/lock-rules.js';
import { winner } from '../core/plan.js';
import type { FileRecord } from '../core/record.js';
import { compare, type Vector } from '../core/vector.js';
import { checkVector } from '../core/vector.js';
import type { Cluster } from './cluster.js';
import type { Device } from './device.js';

const TYPES = ['file', 'directory', 'symlink'] as const;
/** A conflict copy's name: `NAME.conflict-YYYYMMDD-HHMMSS-ID[.EXT]`. */
const CONFLICT_RE = /\.conflict-\d{8}-\d{6}-[A-Z2-7]{7}(\.[^./]*)?$/;

interface ViewRow {
  path: string;
  short: string;
  id: string;
  type: number;
  size: number;
  mtime_s: number;
  mtime_ns: number;
  version: string;
  deleted: number;
  modified_by: string;
}

/** Options of {@link createClientBackend}. */
export interface ClientBackendOptions {
  readonly device: Device;
  readonly cluster: Cluster;
  readonly deviceId: string;
  readonly name: string;
  readonly folder: string;
  readonly version: string;
}

/** Builds the client backend of a running device. */
export function createClientBackend(o: ClientBackendOptions): ClientBackend {
  const { device, cluster } = o;
  const store = device.store;
  const events = new EventEmitter<{ event: [ClientEvent] }>();
  const now = () => new Date().toISOString();
  const ref = (id: string): DeviceRef => ({
    id,
    short: id.slice(0, 7),
    name: cluster.deviceName(id),
  });
  const self = ref(o.deviceId);
  // Listings decode the same few version texts and device refs over and
  // over (most files are at version {X: 1}): decode each once.
  const vectors = new Map<string, Vector>();
  const vectorOf = (text: string): Vector => {
    let v = vectors.get(text);
    if (v === undefined) {
      v = checkVector(JSON.parse(text));
      if (vectors.size > 10_000) vectors.clear();
      vectors.set(text, v);
    }
    return v;
  };
  const refs = new Map<string, DeviceRef>();
  const refOf = (id: string): DeviceRef => {
    let r = refs.get(id);
    if (r === undefined || r.name !== cluster.deviceName(id)) {
      r = ref(id);
      refs.set(id, r);
    }
    return r;
  };
  const lockInfo = (l: LockRow): LockInfo => ({
    id: l.id,
    path: l.path,
    owner: l.owner,
    device: ref(l.device),
    created: new Date(l.createdMs).toISOString(),
    expires: l.expiresMs === null ? null : new Date(l.expiresMs).toISOString(),
    reason: l.reason,
  });

  const view = `
    SELECT f.path, d.short_id AS short, d.id, f.type, f.size, f.mtime_s, f.mtime_ns, f.version,
           f.deleted, f.modified_by
    FROM files f JOIN devices d ON d.idx = f.device`;
  const rowsOf = store.db.prepare(`${view}
    WHERE f.path >= @from AND f.path < @to AND instr(substr(f.path, @skip), '/') = 0
    ORDER BY f.path`);
  const rowsBelow = store.db.prepare(`${view}
    WHERE f.path >= @from AND f.path < @to ORDER BY f.path`);
  const rowsOfPath = store.db.prepare(`${view} WHERE f.path = ?`);

  /** The global view of one path from all devices' rows of it. */
  const entryOf = (
    rows: ViewRow[],
    lockOf: (path: string) => LockRow | undefined = (p) => cluster.locks.get(p),
  ): ListEntry | undefined => {
    const recs = rows.map((r) => {
      const rec: FileRecord = {
        path: r.path,
        type: TYPES[r.type] ?? 'file',
        size: r.size,
        mtimeNs: BigInt(r.mtime_s) * 1_000_000_000n + BigInt(r.mtime_ns),
        mode: 0,
        chunks: [],
        target: '',
        version: vectorOf(r.version),
        deleted: r.deleted !== 0,
        sequence: 0,
        inode: 0,
        modifiedBy: r.modified_by,
      };
      return { row: r, rec };
    });
    const w = winner(recs.map((x) => x.rec));
    if (w === undefined || w.deleted) return undefined;
    const holders = recs.filter((x) => {
      if (x.rec.deleted) return false;
      if (x.rec.version === w.version) return true; // the same decoded text
      const o = compare(x.rec.version, w.version);
      return o === 'equal' || o === 'greater';
    });
    const path = w.path;
    const lock = lockOf(path);
    const p = cluster.puller.progress.get(path);
    return {
      name: path.slice(path.lastIndexOf('/') + 1),
      path,
      type: w.type,
      size: w.type === 'directory' ? 0 : w.size,
      modified: new Date(Number(w.mtimeNs / 1_000_000n)).toISOString(),
      lock: lock ? lockInfo(lock) : null,
      devices: holders.map((x) => refOf(x.row.id)),
      syncing: p ? { done: p.done, total: p.total } : null,
      conflict: CONFLICT_RE.test(path),
    };
  };

  /**
   * The global view of a directory's entries (or, recursively, of everything
   * below it) in path order, streamed from SQLite one path at a time.
   */
  function* viewEntries(q: ListQuery): Generator<ListEntry> {
    const dir = q.dir.replace(/\/+$/, '');
    const prefix = dir === '' ? '' : `${dir}/`;
    const range = { from: prefix, to: dir === '' ? '\u{10ffff}' : `${dir}0` };
    const rows = (
      q.recursive === true
        ? rowsBelow.iterate(range)
        : rowsOf.iterate({ ...range, skip: prefix.length + 1 })
    ) as Iterable<ViewRow>;
    // Locks are few: one read for the whole listing.
    const locks = new Map(cluster.locks.all().map((l) => [l.path, l]));
    const lockOf = (p: string) => locks.get(p);
    let group: ViewRow[] = [];
    for (const r of rows) {
      if (group.length > 0 && (group[0] as ViewRow).path !== r.path) {
        const e = entryOf(group, lockOf);
        if (e) yield e;
        group = [];
      }
      group.push(r);
    }
    const e = group.length > 0 ? entryOf(group, lockOf) : undefined;
    if (e) yield e;
  }

  const list = (q: ListQuery): ListPage => {
    const dir = q.dir.replace(/\/+$/, '');
    const entries = [...viewEntries(q)];
    if (q.recursive === true && q.sort === 'name') {
      // Already in path order: a tree, each directory before what it holds.
      if (q.order === 'desc') entries.reverse();
      return { dir, total: entries.length, entries: entries.slice(q.offset, q.offset + q.limit) };
    }
    const dirFirst = (a: ListEntry, b: ListEntry) =>
      Number(b.type === 'directory') - Number(a.type === 'directory');
    const key = {
      name: (a: ListEntry, b: ListEntry) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
      size: (a: ListEntry, b: ListEntry) => a.size - b.size,
      modified: (a: ListEntry, b: ListEntry) =>
        a.modified < b.modified ? -1 : a.modified > b.modified ? 1 : 0,
    }[q.sort];
    const sign = q.order === 'desc' ? -1 : 1;
    entries.sort((a, b) => dirFirst(a, b) || sign * key(a, b) || (a.path < b.path ? -1 : 1));
    return { dir, total: entries.length, entries: entries.slice(q.offset, q.offset + q.limit) };
  };

  /**
   * A recursive listing by name, as JSON text built entry by entry: the
   * entries turn into text at once and die young, instead of all living
   * until the page is serialized.
   */
  const listText = (q: ListQuery): { text: string; count: number; total: number } | undefined => {
    if (q.recursive !== true || q.sort !== 'name' || q.order !== 'asc') return undefined;
    const parts: string[] = [];
    let total = 0;
    for (const e of viewEntries(q)) {
      if (total >= q.offset && parts.length < q.limit) parts.push(JSON.stringify(e));
      total++;
    }
    const dir = q.dir.replace(/\/+$/, '');
    const text = `{"dir":${JSON.stringify(dir)},"total":${total},"entries":[${parts.join(',')}]}`;
    return { text, count: parts.length, total };
  };

  /**
   * Checks that `user` may change `path` through this device; returns its
   * absolute path. The lock holder writes through the device the lock was
   * taken at (elsewhere the file is guarded and a change would be undone).
   */
  const writable = (path: string, user: User): string => {
    const problem =
      pathProblem(path) ?? (isInternalPath(path) ? "it is Lockstep's own file" : undefined);
    if (problem !== undefined)
      throw new LockstepError('PATH_INVALID', `Cannot write ${path}: ${problem}`);
    if (device.stoppedReason !== undefined) {
      throw new LockstepError('FOLDER_STOPPED', `The folder is stopped: ${device.stoppedReason}`);
    }
    const lock = cluster.locks.get(path);
    if (lock !== undefined && (lock.owner !== user.name || lock.device !== o.deviceId)) {
      const holder = `${lock.owner}@${cluster.deviceName(lock.device)}`;
      throw new LockstepError(
        'LOCKED',
        lock.owner === user.name
          ? `${path} is locked by you at ${cluster.deviceName(lock.device)}; change it through that device`
          : `${path} is locked by ${holder} since ${new Date(lock.createdMs).toISOString()}; only ${lock.owner} can change it`,
      );
    }
    return join(o.folder, path);
  };

  // Live events.
  device.on('indexed', (records) => {
    for (const r of records) {
      const counters = Object.values(r.version).reduce((a, b) => a + b, 0);
      events.emit('event', {
        type: r.deleted ? 'deleted' : counters === 1 ? 'added' : 'modified',
        path: r.path,
        device: self,
        size: r.size,
        time: now(),
      });
    }
  });
  cluster.on('applied', (r, kind, copy, ms) => {
    if (kind === 'version' || kind === 'tombstone') return;
    if (copy !== undefined) {
      events.emit('event', { type: 'conflict', path: r.path, copy, device: self, time: now() });
    }
    events.emit('event', {
      type: 'synced',
      path: r.path,
      device: self,
      deleted: r.deleted,
      durationMs: Math.round(ms),
      time: now(),
    });
  });
  cluster.on('lockedChange', (path, copy) => {
    if (copy !== undefined) {
      events.emit('event', { type: 'conflict', path, copy, device: self, time: now() });
    }
  });
  cluster.locks.on('change', (c) => {
    if (c.type === 'refreshed') return; // the API has no event for a longer expiry yet
    events.emit('event', {
      type: c.type,
      lock: lockInfo(c.lock),
      ...(c.by === undefined ? {} : { by: c.by }),
      time: now(),
    });
  });
  cluster.on('peerConnected', (p) =>
    events.emit('event', { type: 'connected', device: ref(p.id), time: now() }),
  );
  cluster.on('peerDisconnected', (p, reason) =>
    events.emit('event', { type: 'disconnected', device: ref(p.id), reason, time: now() }),
  );

  return {
    events,
    list,
    listText,
    file(path) {
      return entryOf(rowsOfPath.all(path) as ViewRow[]);
    },
    status(): Status {
      const peers = [...cluster.links.values()].map((l) => ({
        ...ref(l.peer.id),
        address: l.peer.address,
        connected: l.connected,
        lastSeen: l.lastSeen?.toISOString() ?? null,
        error: l.lastError ?? null,
      }));
      const differ = [...cluster.links.values()].some(
        (l) =>
          l.connected && l.peerAuthority !== undefined && l.peerAuthority !== cluster.authority(),
      );
      let bytes = 0;
      const transfers: { path: string; done: number; total: number }[] = [];
      for (const [path, p] of cluster.puller.progress) {
        bytes += p.total - p.done;
        transfers.push({ path, done: Math.min(p.done, p.total), total: p.total });
      }
      const t = store.totals();
      return {
        device: { ...self, folder: o.folder, version: o.version },
        peers,
        lockAuthority: differ ? null : ref(cluster.authority()),
        toSync: { files: cluster.puller.pendingCount(), bytes },
        transfers: transfers.slice(0, 100),
        local: { files: t.files, bytes: t.bytes },
        stopped: device.stoppedReason ?? null,
        problems: [
          ...[...device.problems.values()].map((p) => ({ path: p.path, message: p.message })),
          ...[...cluster.puller.problems].map(([path, message]) => ({ path, message })),
        ],
      };
    },
    locks() {
      return cluster.locks.all().map(lockInfo);
    },
    async lock(path: string, user: User, opts) {
      const { lock } = await cluster.locks.lock(path, user.name, opts);
      return lockInfo(lock);
    },
    async write(path: string, user: User, data: AsyncIterable<Uint8Array>) {
      const abs = writable(path, user);
      ensureParents(o.folder, path);
      // A temp name of its own (not the puller's), created exclusively.
      const tmp = `${tempPath(abs)}.${randomBytes(6).toString('hex')}`;
      const fh = await fsp.open(tmp, 'wx', 0o644);
      let size = 0;
      try {
        for await (const piece of data) {
          await fh.write(piece);
          size += piece.length;
        }
        // Keep the permission bits (the executable bit) of what it replaces.
        const old = await fsp.lstat(abs).catch(() => undefined);
        if (old?.isFile() === true) await fh.chmod(old.mode & 0o7777);
        await fh.sync();
      } catch (err) {
        await fh.close();
        await fsp.rm(tmp, { force: true });
        throw err;
      }
      await fh.close();
      // The rename runs on the folder's queue, after any pull finishing there;
      // the lock may have been taken while the data came in.
      await device.queue.run(async () => {
        try {
          writable(path, user);
          await fsp.rename(tmp, abs);
        } catch (err) {
          await fsp.rm(tmp, { force: true });
          throw err;
        }
      });
      return { path, size };
    },
    async remove(path: string, user: User) {
      const abs = writable(path, user);
      ensureParents(o.folder, path, false);
      const st = await fsp.lstat(abs).catch(() => undefined);
      if (st === undefined) throw new LockstepError('NOT_FOUND', `No such path: ${path}`);
      if (st.isDirectory()) await fsp.rmdir(abs);
      else await fsp.unlink(abs);
      return { path };
    },
    async unlock(path: string, user: User, opts) {
      const { lock } = await cluster.locks.unlock(path, user, opts.force === true);
      return lockInfo(lock);
    },
  };
}

/**
 * The index: a device's SQLite record of every path it has ever seen, for
 * itself and (from the peer sync issue on) for its peers.
 */
import { shortId } from '../core/device-id.js';
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import { LockTable } from './lock-table.js';
import { withToken, type Chunk, type FileRecord } from '../core/record.js';
import { classify, nextRecord, type Observed } from '../core/local.js';
import { isWithin } from '../core/path.js';
import type { Candidate } from '../core/plan.js';
import type { Vector } from '../core/vector.js';
import { ChildKeys, type StatKey } from './child-keys.js';
import { GlobalView } from './global-view.js';
import { migrate } from './migrate.js';
import { makeDatabasePrivate } from './private-file.js';
import { recordToParams, rowToRecord, type FileRow } from './codec.js';

/** Row index of this device in the `devices` table. */
const LOCAL = 1;

/** One observation to record: `seen` is null when the path is gone. */
export interface LocalChange {
  readonly path: string;
  readonly seen: Observed | null;
}

/** Where a chunk can be found on the local disk. */
export interface ChunkLocation {
  readonly path: string;
  readonly offset: number;
  readonly length: number;
}

export type { StatKey } from './child-keys.js';

/** Opens (creating and migrating as needed) the index database of a device. */
export class IndexStore {
  /** The database handle: it never leaves the store (the lock table is made here too). */
  private readonly db: Database.Database;
  /** This device's short ID: its key in version vectors. */
  readonly localShort: string;
  /**
   * Paths whose local changes must not become versions (a file locked by a
   * user on another device); such changes are left out of the commit and
   * handed to {@link onVeto} after it.
   */
  guard: ((path: string) => boolean) | undefined;
  onVeto: ((paths: string[]) => void) | undefined;
  /**
   * The fencing token a new local version of `path` is written under: the
   * token of the path's lock when it is held at this device, else 0 (no
   * hook: 0). Asked once per change, inside the commit.
   */
  fence: ((path: string) => number) | undefined;
  private readonly stmts;

  constructor(file: string, localDeviceId: string) {
    makeDatabasePrivate(file); // 0600 before SQLite opens it: its -wal and -shm take its mode
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    // NORMAL in WAL mode never corrupts; a power cut may lose the newest
    // commits, which the next scan finds again on disk.
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('foreign_keys = ON');
    // A 4 MiB page cache (better-sqlite3's default is 16 MiB): the index is
    // mostly written in path order and read one directory at a time, and
    // missed pages come from the OS cache. Measured on a first index of
    // 100,000 files: 6 to 11 MB lower peak RSS, no slower.
    this.db.pragma('cache_size = -4000');
    migrate(this.db);
    this.localShort = shortId(localDeviceId);
    const existing = this.db.prepare('SELECT id FROM devices WHERE idx = ?').get(LOCAL) as
      { id: string } | undefined;
    if (existing === undefined) {
      this.db
        .prepare('INSERT INTO devices (idx, id, short_id) VALUES (?, ?, ?)')
        .run(LOCAL, localDeviceId, this.localShort);
    } else if (existing.id !== localDeviceId) {
      throw new Error(`Index ${file} belongs to device ${existing.id}, not ${localDeviceId}`);
    }
    this.stmts = {
      get: this.db.prepare('SELECT * FROM files WHERE device = 1 AND path = ?'),
      peerGet: this.db.prepare('SELECT * FROM files WHERE device = ? AND path = ?'),
      upsert: this.db.prepare(`
        INSERT INTO files (device, path, type, size, mtime_s, mtime_ns, mode, inode, target, chunks, version, deleted, sequence, modified_by, token)
        VALUES (1, @path, @type, @size, @mtime_s, @mtime_ns, @mode, @inode, @target, @chunks, @version, @deleted, @sequence, @modified_by, @token)
        ON CONFLICT (device, path) DO UPDATE SET
          type = excluded.type, size = excluded.size, mtime_s = excluded.mtime_s, mtime_ns = excluded.mtime_ns,
          mode = excluded.mode, inode = excluded.inode, target = excluded.target, chunks = excluded.chunks,
          version = excluded.version, deleted = excluded.deleted, sequence = excluded.sequence,
          modified_by = excluded.modified_by, token = excluded.token
        RETURNING id`),
      upsertAny: this.db.prepare(`
        INSERT INTO files (device, path, type, size, mtime_s, mtime_ns, mode, inode, target, chunks, version, deleted, sequence, modified_by, token)
        VALUES (@device, @path, @type, @size, @mtime_s, @mtime_ns, @mode, @inode, @target, @chunks, @version, @deleted, @sequence, @modified_by, @token)
        ON CONFLICT (device, path) DO UPDATE SET
          type = excluded.type, size = excluded.size, mtime_s = excluded.mtime_s, mtime_ns = excluded.mtime_ns,
          mode = excluded.mode, inode = excluded.inode, target = excluded.target, chunks = excluded.chunks,
          version = excluded.version, deleted = excluded.deleted, sequence = excluded.sequence,
          modified_by = excluded.modified_by, token = excluded.token`),
      localVersion: this.db.prepare('SELECT version FROM files WHERE device = 1 AND path = ?'),
      byPath: this.db.prepare(
        'SELECT f.*, d.short_id AS short FROM files f JOIN devices d ON d.idx = f.device WHERE f.path = ?',
      ),
      deleteChunks: this.db.prepare('DELETE FROM chunks WHERE file = ?'),
      insertChunk: this.db.prepare(
        'INSERT INTO chunks (hash, file, offset, length) VALUES (?, ?, ?, ?)',
      ),
      maxSeq: this.db.prepare('SELECT max_sequence AS s FROM devices WHERE idx = 1'),
      setMaxSeq: this.db.prepare('UPDATE devices SET max_sequence = ? WHERE idx = 1'),
      liveAll: this.db.prepare('SELECT path FROM files WHERE device = 1 AND deleted = 0'),
      liveWithin: this.db.prepare(
        'SELECT path FROM files WHERE device = 1 AND deleted = 0 AND (path = ? OR (path >= ? AND path < ?))',
      ),
      since: this.db.prepare(
        'SELECT * FROM files WHERE device = 1 AND sequence > ? ORDER BY sequence',
      ),
      all: this.db.prepare('SELECT * FROM files WHERE device = 1 ORDER BY path'),
      sinceLimit: this.db.prepare(
        'SELECT * FROM files WHERE device = 1 AND sequence > ? ORDER BY sequence LIMIT ?',
      ),
      chunk: this.db.prepare(
        'SELECT f.path, c.offset, c.length FROM chunks c JOIN files f ON f.id = c.file WHERE c.hash = ? LIMIT ?',
      ),
      // Up to ? places per distinct hash: a chunk of zeros can be in thousands of files.
      chunkPlaces: this.db.prepare(
        `WITH want(h) AS (SELECT DISTINCT unhex(value) FROM json_each(?))
         SELECT lower(hex(c.hash)) AS hash, f.path AS path, c.offset AS offset, c.length AS length
         FROM want w
         JOIN chunks c ON c.rowid IN (SELECT rowid FROM chunks WHERE hash = w.h LIMIT ?)
         JOIN files f ON f.id = c.file`,
      ),
      count: this.db.prepare(
        'SELECT count(*) AS n, coalesce(sum(size), 0) AS bytes FROM files WHERE device = 1 AND deleted = 0',
      ),
      floor: this.db.prepare('SELECT counter FROM counter_floors WHERE path = ?'),
      raiseFloor: this.db.prepare(
        `INSERT INTO counter_floors (path, counter) VALUES (?, ?)
         ON CONFLICT (path) DO UPDATE SET counter = max(counter, excluded.counter)`,
      ),
      deleteLocal: this.db.prepare('DELETE FROM files WHERE device = 1 AND path = ?'),
    };
    this.hasFloors = this.db.prepare('SELECT 1 FROM counter_floors LIMIT 1').get() !== undefined;
    this.commitSyncedTx = this.db.transaction((out: FileRecord) => this.writeSynced(out));
  }

  /** Whether any path has a counter floor (most indexes have none: no lookup then). */
  private hasFloors: boolean;

  /** The local record of `path`, tombstones included. */
  get(path: string): FileRecord | undefined {
    const row = this.stmts.get.get(path) as FileRow | undefined;
    return row && rowToRecord(row);
  }

  /** The last sequence number this device issued. */
  get sequence(): number {
    return (this.stmts.maxSeq.get() as { s: number }).s;
  }

  /** Live (not deleted) local paths at or below `dir` ('' for all). */
  livePathsWithin(dir: string): string[] {
    if (dir === '') return (this.stmts.liveAll.all() as { path: string }[]).map((r) => r.path);
    // Paths below `dir` sort between `dir/` and `dir0` ('0' follows '/').
    const rows = this.stmts.liveWithin.all(dir, `${dir}/`, `${dir}0`) as { path: string }[];
    return rows.map((r) => r.path).filter((p) => isWithin(p, dir));
  }

  /**
   * Records observations in one transaction. Each real change increments
   * this device's counter in the path's version and takes the next sequence
   * number; the chunk table follows the new content.
   *
   * @returns the records that got a new version, in sequence order.
   */
  commit(changes: readonly LocalChange[]): FileRecord[] {
    const changed: FileRecord[] = [];
    const vetoed: string[] = [];
    this.db.transaction(() => {
      let seq = this.sequence;
      for (const { path, seen } of changes) {
        const old = this.get(path);
        const outcome = classify(old, seen);
        if (outcome === 'none') continue;
        if (outcome === 'bump' && this.guard?.(path) === true) {
          vetoed.push(path);
          continue;
        }
        if (outcome === 'bump') seq++;
        const next = nextRecord(path, old, seen, outcome, this.localShort, seq);
        // A new version is written under this device's lock, if it holds
        // one; a local-only update keeps the version, and its token.
        const rec =
          outcome === 'bump'
            ? withToken(this.aboveFloor(next), this.fence?.(path) ?? 0)
            : withToken(next, old?.token ?? 0);
        const { id } = this.stmts.upsert.get(recordToParams(rec)) as { id: number };
        this.stmts.deleteChunks.run(id);
        if (!rec.deleted) {
          for (const c of rec.chunks)
            this.stmts.insertChunk.run(Buffer.from(c.hash, 'hex'), id, c.offset, c.length);
        }
        if (outcome === 'bump') changed.push(rec);
      }
      this.stmts.setMaxSeq.run(seq);
    })();
    if (vetoed.length > 0) this.onVeto?.(vetoed);
    return changed;
  }

  /**
   * Drops this device's record of `path` (its content is to be fetched
   * again), keeping its counter in the path's version as a floor: the next
   * local change of the path takes a higher counter, never one that a peer
   * may already have seen with other content.
   */
  forgetLocal(path: string): void {
    this.db.transaction(() => {
      const n = this.get(path)?.version[this.localShort];
      if (n !== undefined) {
        this.stmts.raiseFloor.run(path, n);
        this.hasFloors = true;
      }
      this.stmts.deleteLocal.run(path);
    })();
  }

  /** A new local version `rec` with this device's counter raised above the path's floor. */
  private aboveFloor(rec: FileRecord): FileRecord {
    if (!this.hasFloors) return rec;
    const floor = this.stmts.floor.get(rec.path) as { counter: number } | undefined;
    const mine = rec.version[this.localShort] ?? 0;
    if (floor === undefined || mine > floor.counter) return rec;
    return { ...rec, version: { ...rec.version, [this.localShort]: floor.counter + 1 } };
  }

  /** Local records changed after sequence `after`, in sequence order. */
  *changedSince(after: number): Generator<FileRecord> {
    for (const row of this.stmts.since.iterate(after) as Iterable<FileRow>) yield rowToRecord(row);
  }

  /** At most `limit` local records changed after sequence `after`, in sequence order. */
  changedBatch(after: number, limit: number): FileRecord[] {
    return (this.stmts.sinceLimit.all(after, limit) as FileRow[]).map(rowToRecord);
  }

  /** Every local record, sorted by path. */
  *all(): Generator<FileRecord> {
    for (const row of this.stmts.all.iterate() as Iterable<FileRow>) yield rowToRecord(row);
  }

  /** Where this device holds chunk `hash` (hex) on disk, at most `limit` places. */
  findChunk(hash: string, limit = 8): ChunkLocation[] {
    return this.stmts.chunk.all(Buffer.from(hash, 'hex'), limit) as ChunkLocation[];
  }

  /**
   * Where this device holds each of `hashes` (hex) on disk, as far as the
   * index knows, at most `limit` places per hash; hashes held nowhere are
   * absent. One query for many, where {@link findChunk} would take one each
   * (a pull of many files asks for all of their chunks).
   */
  chunkPlaces(hashes: readonly string[], limit = 4): Map<string, ChunkLocation[]> {
    const out = new Map<string, ChunkLocation[]>();
    for (let i = 0; i < hashes.length; i += 8192) {
      const part = JSON.stringify(hashes.slice(i, i + 8192));
      const rows = this.stmts.chunkPlaces.all(part, limit) as (ChunkLocation & { hash: string })[];
      for (const { hash, path, offset, length } of rows) {
        const at = out.get(hash);
        if (at) at.push({ path, offset, length });
        else out.set(hash, [{ path, offset, length }]);
      }
    }
    return out;
  }

  /**
   * This index's identity, sent to peers: a new database starts sequence
   * numbers again, and a peer that sees a new index ID asks for everything.
   */
  get indexId(): string {
    const row = this.db.prepare("SELECT value FROM meta WHERE key = 'index_id'").get() as
      { value: string } | undefined;
    if (row) return row.value;
    const id = randomBytes(12).toString('base64url');
    this.db.prepare("INSERT INTO meta (key, value) VALUES ('index_id', ?)").run(id);
    return id;
  }

  /** What this index holds of peer `deviceId`'s index: its ID and the last sequence received. */
  peerState(deviceId: string): { indexId: string; sequence: number } {
    const row = this.db
      .prepare('SELECT index_id AS indexId, max_sequence AS sequence FROM devices WHERE id = ?')
      .get(deviceId) as { indexId: string; sequence: number } | undefined;
    return row ?? { indexId: '', sequence: 0 };
  }

  /**
   * Forgets everything received from `deviceId` (its index was replaced) and
   * records its new index ID.
   */
  resetPeer(deviceId: string, indexId: string): void {
    this.db.transaction(() => {
      const idx = this.deviceIdx(deviceId);
      this.db.prepare('DELETE FROM files WHERE device = ?').run(idx);
      this.db
        .prepare('UPDATE devices SET max_sequence = 0, index_id = ? WHERE idx = ?')
        .run(indexId, idx);
    })();
  }

  /**
   * Stores records received from peer `deviceId` (already validated), and
   * raises the last sequence received from it.
   *
   * @returns the paths whose received version differs from this device's
   *   (the only ones that can need planning)
   */
  applyRemote(deviceId: string, records: readonly FileRecord[], sequence?: number): string[] {
    const differ: string[] = [];
    this.db.transaction(() => {
      const idx = this.deviceIdx(deviceId);
      let max = (
        this.db.prepare('SELECT max_sequence AS s FROM devices WHERE idx = ?').get(idx) as {
          s: number;
        }
      ).s;
      for (const r of records) {
        const params = { ...recordToParams({ ...r, inode: 0 }), device: idx };
        this.stmts.upsertAny.run(params);
        if (r.sequence > max) max = r.sequence;
        const mine = this.stmts.localVersion.get(r.path) as { version: string } | undefined;
        if (mine?.version !== JSON.stringify(r.version)) differ.push(r.path);
      }
      if (sequence !== undefined && sequence > max) max = sequence;
      this.db.prepare('UPDATE devices SET max_sequence = ? WHERE idx = ?').run(max, idx);
    })();
    return differ;
  }

  /**
   * The chunk lists of `path` at exactly `version` in peer `deviceId`'s
   * record (as last received) and in this device's, where live files: the
   * only places a delta's base from that peer may be.
   */
  baseCandidates(deviceId: string, path: string, version: Vector): (readonly Chunk[])[] {
    const text = JSON.stringify(version);
    const out: (readonly Chunk[])[] = [];
    for (const device of [this.deviceIdx(deviceId), LOCAL]) {
      const row = this.stmts.peerGet.get(device, path) as FileRow | undefined;
      if (row !== undefined && row.version === text && row.deleted === 0 && row.type === 0) {
        out.push(rowToRecord(row).chunks);
      }
    }
    return out;
  }

  /** Peer `deviceId`'s record of `path` as last received, if any. */
  peerRecord(deviceId: string, path: string): FileRecord | undefined {
    const row = this.stmts.peerGet.get(this.deviceIdx(deviceId), path) as FileRow | undefined;
    return row && rowToRecord(row);
  }

  /** This device's record of `path` and every peer's, for planning. */
  candidates(path: string): { local: FileRecord | undefined; remotes: Candidate[] } {
    let local: FileRecord | undefined;
    const remotes: Candidate[] = [];
    for (const row of this.stmts.byPath.iterate(path) as Iterable<FileRow & { short: string }>) {
      const rec = rowToRecord(row);
      if (row.device === LOCAL) local = rec;
      else remotes.push({ device: row.short, record: rec });
    }
    return { local, remotes };
  }

  /**
   * Paths where some peer's record has another version than this device's
   * (or this device has none): the only ones planning can act on.
   */
  pathsToPlan(): string[] {
    return (
      this.db
        .prepare(
          `SELECT DISTINCT r.path FROM files r
           LEFT JOIN files l ON l.device = 1 AND l.path = r.path
           WHERE r.device != 1 AND (l.version IS NULL OR l.version != r.version)
           ORDER BY r.path`,
        )
        .all() as { path: string }[]
    ).map((r) => r.path);
  }

  /**
   * Records content that sync put on disk: `rec`'s content with `version`
   * (no new version: the change was made elsewhere), the file's local stat
   * (`seen`), and the next local sequence so peers learn this device has it.
   */
  commitSynced(
    rec: FileRecord,
    version: Vector,
    seen: { inode: number; mtimeNs: bigint; mode: number } | null,
  ): FileRecord {
    const seq = this.sequence + 1;
    const out: FileRecord = {
      ...rec,
      version,
      sequence: seq,
      inode: seen?.inode ?? 0,
      mtimeNs: seen?.mtimeNs ?? rec.mtimeNs,
      mode: seen?.mode ?? rec.mode,
    };
    this.commitSyncedTx(out);
    return out;
  }

  /** The writes of {@link commitSynced}, one transaction (a savepoint inside another), made once. */
  private readonly commitSyncedTx: (out: FileRecord) => void;

  private writeSynced(out: FileRecord): void {
    const { id } = this.stmts.upsert.get(recordToParams(out)) as { id: number };
    this.stmts.deleteChunks.run(id);
    if (!out.deleted) {
      for (const c of out.chunks)
        this.stmts.insertChunk.run(Buffer.from(c.hash, 'hex'), id, c.offset, c.length);
    }
    this.stmts.setMaxSeq.run(out.sequence);
  }

  /** The row index of a device in this database, adding the device if new. */
  private deviceIdx(deviceId: string): number {
    const row = this.db.prepare('SELECT idx FROM devices WHERE id = ?').get(deviceId) as
      { idx: number } | undefined;
    if (row) return row.idx;
    return Number(
      this.db
        .prepare('INSERT INTO devices (id, short_id) VALUES (?, ?)')
        .run(deviceId, shortId(deviceId)).lastInsertRowid,
    );
  }

  /** Count and total size of live local records. */
  totals(): { files: number; bytes: number } {
    const r = this.stmts.count.get() as { n: number; bytes: number };
    return { files: r.n, bytes: r.bytes };
  }

  /**
   * Wraps `fn` in one transaction (a savepoint inside another), like
   * better-sqlite3's `db.transaction`: call the result to run it. Lets a
   * caller make several of this store's writes all or nothing.
   */
  /** The lock table kept in this index's database (each call opens a view of the same table). */
  lockTable(): LockTable {
    return new LockTable(this.db);
  }

  transaction<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R {
    return this.db.transaction(fn);
  }

  /** The global view's reads (all devices' records of a path), prepared on first use. */
  get view(): GlobalView {
    return (this.globalView ??= new GlobalView(this.db));
  }

  private globalView: GlobalView | undefined;

  /** The scanner's per-directory read: see {@link ChildKeys.of}. */
  childKeys(dir: string): { keys: Map<string, StatKey>; nested: string[] } {
    return (this.children ??= new ChildKeys(this.db)).of(dir);
  }

  private children: ChildKeys | undefined;

  /** Folds the write-ahead log into the database file and closes it (again: nothing). */
  close(): void {
    if (this.db.open) {
      this.db.pragma('wal_checkpoint(TRUNCATE)');
      this.db.close();
    }
  }
}

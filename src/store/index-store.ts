/**
 * The index: a device's SQLite record of every path it has ever seen, for
 * itself and (from the peer sync issue on) for its peers.
 */
import Database from 'better-sqlite3';
import type { FileRecord } from '../core/record.js';
import { classify, nextRecord, type Observed } from '../core/local.js';
import { isWithin } from '../core/path.js';
import { migrate } from './migrate.js';
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

/** The fields the scanner compares to decide whether to re-hash a path. */
export interface StatKey {
  readonly type: FileRecord['type'];
  readonly size: number;
  readonly mtimeNs: bigint;
  readonly inode: number;
  readonly mode: number;
  readonly deleted: boolean;
}

/** Opens (creating and migrating as needed) the index database of a device. */
export class IndexStore {
  readonly db: Database.Database;
  /** This device's short ID: its key in version vectors. */
  readonly localShort: string;
  private readonly stmts;

  constructor(file: string, localDeviceId: string) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    // NORMAL in WAL mode never corrupts; a power cut may lose the newest
    // commits, which the next scan finds again on disk.
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('foreign_keys = ON');
    migrate(this.db);
    this.localShort = localDeviceId.slice(0, 7);
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
      upsert: this.db.prepare(`
        INSERT INTO files (device, path, type, size, mtime_s, mtime_ns, mode, inode, target, chunks, version, deleted, sequence, modified_by)
        VALUES (1, @path, @type, @size, @mtime_s, @mtime_ns, @mode, @inode, @target, @chunks, @version, @deleted, @sequence, @modified_by)
        ON CONFLICT (device, path) DO UPDATE SET
          type = excluded.type, size = excluded.size, mtime_s = excluded.mtime_s, mtime_ns = excluded.mtime_ns,
          mode = excluded.mode, inode = excluded.inode, target = excluded.target, chunks = excluded.chunks,
          version = excluded.version, deleted = excluded.deleted, sequence = excluded.sequence,
          modified_by = excluded.modified_by
        RETURNING id`),
      deleteChunks: this.db.prepare('DELETE FROM chunks WHERE file = ?'),
      insertChunk: this.db.prepare(
        'INSERT INTO chunks (hash, file, offset, length) VALUES (?, ?, ?, ?)',
      ),
      maxSeq: this.db.prepare('SELECT max_sequence AS s FROM devices WHERE idx = 1'),
      setMaxSeq: this.db.prepare('UPDATE devices SET max_sequence = ? WHERE idx = 1'),
      statKeys: this.db.prepare(
        'SELECT path, type, size, mtime_s, mtime_ns, inode, mode, deleted FROM files WHERE device = 1',
      ),
      liveAll: this.db.prepare('SELECT path FROM files WHERE device = 1 AND deleted = 0'),
      liveWithin: this.db.prepare(
        'SELECT path FROM files WHERE device = 1 AND deleted = 0 AND (path = ? OR (path >= ? AND path < ?))',
      ),
      since: this.db.prepare(
        'SELECT * FROM files WHERE device = 1 AND sequence > ? ORDER BY sequence',
      ),
      all: this.db.prepare('SELECT * FROM files WHERE device = 1 ORDER BY path'),
      chunk: this.db.prepare(
        'SELECT f.path, c.offset, c.length FROM chunks c JOIN files f ON f.id = c.file WHERE c.hash = ? LIMIT ?',
      ),
      count: this.db.prepare(
        'SELECT count(*) AS n, coalesce(sum(size), 0) AS bytes FROM files WHERE device = 1 AND deleted = 0',
      ),
    };
  }

  /** The local record of `path`, tombstones included. */
  get(path: string): FileRecord | undefined {
    const row = this.stmts.get.get(path) as FileRow | undefined;
    return row && rowToRecord(row);
  }

  /** The last sequence number this device issued. */
  get sequence(): number {
    return (this.stmts.maxSeq.get() as { s: number }).s;
  }

  /**
   * The comparison keys of every local record, for a scan to decide which
   * paths need re-hashing without loading whole records.
   */
  statKeys(): Map<string, StatKey> {
    const out = new Map<string, StatKey>();
    for (const r of this.stmts.statKeys.iterate() as Iterable<
      Omit<FileRow, 'chunks' | 'version' | 'sequence' | 'target' | 'id' | 'device'>
    >) {
      out.set(r.path, {
        type: (['file', 'directory', 'symlink'] as const)[r.type] ?? 'file',
        size: r.size,
        mtimeNs: BigInt(r.mtime_s) * 1_000_000_000n + BigInt(r.mtime_ns),
        inode: r.inode,
        mode: r.mode,
        deleted: r.deleted !== 0,
      });
    }
    return out;
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
    this.db.transaction(() => {
      let seq = this.sequence;
      for (const { path, seen } of changes) {
        const old = this.get(path);
        const outcome = classify(old, seen);
        if (outcome === 'none') continue;
        if (outcome === 'bump') seq++;
        const rec = nextRecord(path, old, seen, outcome, this.localShort, seq);
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
    return changed;
  }

  /** Local records changed after sequence `after`, in sequence order. */
  *changedSince(after: number): Generator<FileRecord> {
    for (const row of this.stmts.since.iterate(after) as Iterable<FileRow>) yield rowToRecord(row);
  }

  /** Every local record, sorted by path. */
  *all(): Generator<FileRecord> {
    for (const row of this.stmts.all.iterate() as Iterable<FileRow>) yield rowToRecord(row);
  }

  /** Where this device holds chunk `hash` (hex) on disk, at most `limit` places. */
  findChunk(hash: string, limit = 8): ChunkLocation[] {
    return this.stmts.chunk.all(Buffer.from(hash, 'hex'), limit) as ChunkLocation[];
  }

  /** Count and total size of live local records. */
  totals(): { files: number; bytes: number } {
    const r = this.stmts.count.get() as { n: number; bytes: number };
    return { files: r.n, bytes: r.bytes };
  }

  close(): void {
    if (this.db.open) {
      this.db.pragma('wal_checkpoint(TRUNCATE)');
      this.db.close();
    }
  }
}

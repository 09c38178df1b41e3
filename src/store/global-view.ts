/**
 * The global view's reads of the index: every device's record of the paths
 * in a directory, below it, or at one path, grouped by path. The listing
 * decides what to show from them (see core/global-view.ts).
 */
import type Database from 'better-sqlite3';
import type { HeldRecord } from '../core/global-view.js';
import type { EntryType, FileRecord } from '../core/record.js';
import { checkVector, type Vector } from '../core/vector.js';

/**
 * What the listing reads of the index: all devices' records of each path,
 * one group per path, streamed from SQLite in path order (a listing of the
 * whole folder never holds all of its rows at once). Records carry only what
 * the view shows: no chunks, target, mode, inode or sequence.
 */
export interface GlobalViewReader {
  /** The paths directly inside `dir` ('' for the folder root, no trailing slash). */
  inside(dir: string): Iterable<HeldRecord[]>;
  /** Every path below `dir` ('' for the whole folder), each directory before what it holds. */
  below(dir: string): Iterable<HeldRecord[]>;
  /** All devices' records of `path` (none if no device has one). */
  at(path: string): HeldRecord[];
}

/** One row of the view's queries, as better-sqlite3 returns it. */
interface ViewRow {
  path: string;
  id: string;
  type: number;
  size: number;
  mtime_s: number;
  mtime_ns: number;
  version: string;
  deleted: number;
  modified_by: string;
  token: number;
}

const TYPES: readonly EntryType[] = ['file', 'directory', 'symlink'];

const VIEW = `
    SELECT f.path, d.id, f.type, f.size, f.mtime_s, f.mtime_ns, f.version, f.deleted, f.modified_by, f.token
    FROM files f JOIN devices d ON d.idx = f.device`;

/** The index's global-view queries, prepared once per database. */
export class GlobalView implements GlobalViewReader {
  private readonly stmts;
  /**
   * Listings decode the same few version texts over and over (most files
   * are at version {X: 1}): each is decoded once, and records at the same
   * version share one object.
   */
  private readonly vectors = new Map<string, Vector>();

  constructor(db: Database.Database) {
    // Paths below `dir` sort between `dir/` and `dir0` ('0' follows '/');
    // `skip` is where a path's part below `dir` starts (1-based).
    this.stmts = {
      inside: db.prepare(`${VIEW}
        WHERE f.path >= @from AND f.path < @to AND instr(substr(f.path, @skip), '/') = 0
        ORDER BY f.path`),
      below: db.prepare(`${VIEW}
        WHERE f.path >= @from AND f.path < @to ORDER BY f.path`),
      at: db.prepare(`${VIEW} WHERE f.path = ?`),
    };
  }

  inside(dir: string): Iterable<HeldRecord[]> {
    const range = rangeBelow(dir);
    return this.grouped(
      this.stmts.inside.iterate({ ...range, skip: range.from.length + 1 }) as Iterable<ViewRow>,
    );
  }

  below(dir: string): Iterable<HeldRecord[]> {
    return this.grouped(this.stmts.below.iterate(rangeBelow(dir)) as Iterable<ViewRow>);
  }

  at(path: string): HeldRecord[] {
    return (this.stmts.at.all(path) as ViewRow[]).map((r) => this.held(r));
  }

  /** Rows in path order, as one group of records per path. */
  private *grouped(rows: Iterable<ViewRow>): Generator<HeldRecord[]> {
    let group: HeldRecord[] = [];
    for (const r of rows) {
      if (group.length > 0 && (group[0] as HeldRecord).record.path !== r.path) {
        yield group;
        group = [];
      }
      group.push(this.held(r));
    }
    if (group.length > 0) yield group;
  }

  /** A row as a device's record, with only the fields the view reads filled in. */
  private held(r: ViewRow): HeldRecord {
    const record: FileRecord = {
      path: r.path,
      type: TYPES[r.type] ?? 'file',
      size: r.size,
      mtimeNs: BigInt(r.mtime_s) * 1_000_000_000n + BigInt(r.mtime_ns),
      mode: 0,
      chunks: [],
      target: '',
      version: this.vectorOf(r.version),
      deleted: r.deleted !== 0,
      sequence: 0,
      inode: 0,
      modifiedBy: r.modified_by,
      // The winner is chosen as sync chooses it: the later lock grant first.
      ...(r.token !== 0 ? { token: r.token } : {}),
    };
    return { device: r.id, record };
  }

  private vectorOf(text: string): Vector {
    let v = this.vectors.get(text);
    if (v === undefined) {
      v = checkVector(JSON.parse(text));
      if (this.vectors.size > 10_000) this.vectors.clear();
      this.vectors.set(text, v);
    }
    return v;
  }
}

/** The path range below `dir`: from `dir/` up to `dir0`, or everything for the root. */
function rangeBelow(dir: string): { from: string; to: string } {
  return dir === '' ? { from: '', to: '\u{10ffff}' } : { from: `${dir}/`, to: `${dir}0` };
}

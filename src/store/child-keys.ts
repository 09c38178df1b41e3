/**
 * The scanner's read of the index: the comparison keys of one directory's
 * local records at a time (see {@link ChildKeys.of}).
 */
import type Database from 'better-sqlite3';
import type { FileRecord } from '../core/record.js';
import type { FileRow } from './codec.js';

/** The fields the scanner compares to decide whether to re-hash a path. */
export interface StatKey {
  readonly type: FileRecord['type'];
  readonly size: number;
  readonly mtimeNs: bigint;
  readonly inode: number;
  readonly mode: number;
  readonly deleted: boolean;
}

/** The columns of {@link StatKey} as the queries return them. */
type KeyRow = Omit<FileRow, 'chunks' | 'version' | 'sequence' | 'target' | 'id' | 'device'>;

const COLS = 'path, type, size, mtime_s, mtime_ns, inode, mode, deleted';

/** The statements of {@link ChildKeys.of}, prepared once per database. */
export class ChildKeys {
  private readonly after: Database.Statement;
  private readonly between: Database.Statement;

  constructor(db: Database.Database) {
    this.after = db.prepare(
      `SELECT ${COLS} FROM files WHERE device = 1 AND path >= ? ORDER BY path`,
    );
    this.between = db.prepare(
      `SELECT ${COLS} FROM files WHERE device = 1 AND path >= ? AND path < ? ORDER BY path`,
    );
  }

  /**
   * The comparison keys of the local records directly inside `dir` ('' for
   * the folder root), tombstones included, by path; and, in path order, those
   * children that have records below them. Lets a scan compare one directory
   * at a time: it reads only the children's rows, skipping over each child's
   * subtree in the path index, instead of loading every key at once.
   */
  of(dir: string): { keys: Map<string, StatKey>; nested: string[] } {
    // Paths below `dir` sort between `dir/` and `dir0` ('0' follows '/').
    const prefix = dir === '' ? '' : `${dir}/`;
    const keys = new Map<string, StatKey>();
    const nested: string[] = [];
    let from: string | undefined = prefix;
    while (from !== undefined) {
      const rows = (
        dir === '' ? this.after.iterate(from) : this.between.iterate(from, `${dir}0`)
      ) as Iterable<KeyRow>;
      let next: string | undefined;
      for (const r of rows) {
        const slash = r.path.indexOf('/', prefix.length);
        if (slash >= 0) {
          // A row deeper down: note its child, then jump past that child's subtree.
          const child = r.path.slice(0, slash);
          nested.push(child);
          next = `${child}0`;
          break;
        }
        keys.set(r.path, {
          type: (['file', 'directory', 'symlink'] as const)[r.type] ?? 'file',
          size: r.size,
          mtimeNs: BigInt(r.mtime_s) * 1_000_000_000n + BigInt(r.mtime_ns),
          inode: r.inode,
          mode: r.mode,
          deleted: r.deleted !== 0,
        });
      }
      from = next;
    }
    return { keys, nested };
  }
}

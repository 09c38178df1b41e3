/**
 * Checks for model-based and fault tests: a device's index against its disk,
 * and quiescence (every device holds the same tree, and nothing is left to do).
 */
import { blake3 } from '@napi-rs/blake-hash';
import {
  closeSync,
  constants,
  fstatSync,
  ftruncateSync,
  lstatSync,
  openSync,
  readFileSync,
  readSync,
  readlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { unpackChunks } from '../src/store/codec.js';
import { converged, tempFiles, treeOf, type Entry, type TestDevice } from './cluster.js';
import { waitUntil } from './helpers.js';

/**
 * The differences between `d`'s index (its live local records) and its
 * folder: every path on disk is recorded with its type, size, exec bit,
 * link target and chunk hashes, and every live record is on disk. Empty when
 * they match, i.e. a rescan would find no change.
 */
export async function indexVersusDisk(d: TestDevice): Promise<string[]> {
  const tree = await treeOf(d.folder);
  const db = new Database(d.db, { readonly: true, fileMustExist: true });
  let rows: {
    path: string;
    type: number;
    size: number;
    mode: number;
    target: string;
    chunks: Buffer;
  }[];
  try {
    rows = db
      .prepare(
        'SELECT path, type, size, mode, target, chunks FROM files WHERE device = 1 AND deleted = 0',
      )
      .all() as typeof rows;
  } finally {
    db.close();
  }
  const problems: string[] = [];
  const recorded = new Set<string>();
  for (const r of rows) {
    recorded.add(r.path);
    const e: Entry | undefined = tree[r.path];
    const type = (['file', 'dir', 'symlink'] as const)[r.type];
    if (e === undefined) {
      problems.push(`${r.path}: recorded as a ${type}, not on disk`);
      continue;
    }
    if (e.type !== type) {
      problems.push(`${r.path}: recorded as a ${type}, a ${e.type} on disk`);
      continue;
    }
    const abs = join(d.folder, r.path);
    if (e.type === 'symlink') {
      if (readlinkSync(abs) !== r.target) problems.push(`${r.path}: another link target`);
    } else if (e.type === 'file') {
      if (e.size !== r.size)
        problems.push(`${r.path}: ${r.size} bytes recorded, ${e.size} on disk`);
      if (e.exec !== ((r.mode & 0o111) !== 0)) problems.push(`${r.path}: another exec bit`);
      let data: Buffer;
      try {
        data = readFileSync(abs);
      } catch (err) {
        problems.push(`${r.path}: unreadable (${(err as Error).message})`);
        continue;
      }
      for (const c of unpackChunks(r.chunks)) {
        if (blake3(data.subarray(c.offset, c.offset + c.length)).toString('hex') !== c.hash) {
          problems.push(`${r.path}: chunk at ${c.offset} differs from the index`);
          break;
        }
      }
    }
  }
  for (const [p, e] of Object.entries(tree)) {
    if (recorded.has(p)) continue;
    // A file that Lockstep ignores (its own temp files) is not recorded.
    if (p.split('/').some((s) => s.startsWith('.lockstep-'))) continue;
    // Still being written by the test? lstat once more: gone means it moved.
    if (lstatSync(join(d.folder, p), { throwIfNoEntry: false }) === undefined) continue;
    problems.push(`${p}: a ${e.type} on disk, not in the index`);
  }
  return problems;
}

/** What {@link saveInPlace} replaced and wrote. */
export interface Saved {
  /** The content read (and replaced). */
  readonly prev: Buffer;
  /** The content written. */
  readonly next: Buffer;
  /**
   * The file had no name left once written: a sync had replaced it since it
   * was opened (its new version renamed over it, or a delete). The write
   * went to a file no longer in the folder, as it would for any program
   * holding a replaced file open, and no device can know of it: a model
   * must not count it as written. (The folder writer looks at a file it
   * replaces once more after the rename and puts it back if it changed, so
   * a save that changed a byte before that still has its name. Checked
   * after the write, not before it: the test process can be descheduled
   * between a check and its truncate, and the whole replace fits there.)
   */
  readonly overtaken: boolean;
}

/**
 * Saves the file at `abs` in place, as an editor that keeps the file open
 * does: opened (created if missing, never truncated on open, so the content
 * replaced is the one read), read, truncated, written with `make(prev)`.
 * Undefined if it cannot be opened.
 */
export function saveInPlace(abs: string, make: (prev: Buffer) => Buffer): Saved | undefined {
  let fd: number;
  try {
    fd = openSync(abs, constants.O_RDWR | constants.O_CREAT, 0o644);
  } catch {
    return undefined;
  }
  try {
    const size = fstatSync(fd).size;
    const buf = Buffer.alloc(size);
    let done = 0;
    while (done < size) {
      const n = readSync(fd, buf, done, size - done, done);
      if (n === 0) break;
      done += n;
    }
    const prev = buf.subarray(0, done);
    const next = make(prev);
    ftruncateSync(fd, 0);
    writeSync(fd, next, 0, next.length, 0);
    return { prev, next, overtaken: fstatSync(fd).nlink === 0 };
  } finally {
    closeSync(fd);
  }
}

/**
 * Waits until the devices are quiescent: the same tree everywhere, the same
 * tree again a moment later, no temp files, and each index equal to its disk.
 * Resolves with the tree.
 */
export async function quiescent(
  devices: readonly TestDevice[],
  what: string,
  ms = 120_000,
): Promise<Record<string, Entry>> {
  const deadline = Date.now() + ms;
  let last: string[] = [];
  for (;;) {
    const left = Math.max(1000, deadline - Date.now());
    const tree = await converged(devices, what, () => true, left);
    await new Promise((r) => setTimeout(r, 300));
    const again = await Promise.all(devices.map((d) => treeOf(d.folder)));
    const same = again.every((t) => JSON.stringify(t) === JSON.stringify(tree));
    const temps = (await Promise.all(devices.map((d) => tempFiles(d.folder)))).flat();
    last = (
      await Promise.all(
        devices.map(async (d) => (await indexVersusDisk(d)).map((p) => `${d.name} ${p}`)),
      )
    ).flat();
    if (same && temps.length === 0 && last.length === 0) return tree;
    if (Date.now() > deadline) {
      throw new Error(
        `${what}: not quiescent after ${ms} ms: ${same ? '' : 'trees still changing; '}temp files ${JSON.stringify(temps)}; index versus disk: ${JSON.stringify(last)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Waits until `d` answers on its API and says nothing is left to sync. */
export async function idle(d: TestDevice, api: { url: string; token: string }, ms = 60_000) {
  await waitUntil(
    `${d.name} to have nothing left to sync`,
    async () => {
      try {
        const r = await fetch(`${api.url}/api/v1/status`, {
          headers: { authorization: `Bearer ${api.token}` },
        });
        const s = (await r.json()) as { toSync?: { files?: number } };
        return s.toSync?.files === 0;
      } catch {
        return false;
      }
    },
    ms,
    100,
  );
}

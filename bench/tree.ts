/**
 * Folder trees for the peer-sync benchmarks: writing test data, listing a
 * tree (type, size, mtime), telling cheaply and repeatedly whether one folder
 * has caught up with another, and comparing contents by SHA-256.
 */
import { createHash, randomFillSync } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';

/** One entry of a listed tree. */
export interface Entry {
  readonly type: 'file' | 'directory' | 'symlink';
  readonly size: number;
  readonly mtimeNs: bigint;
}

/** A listed tree: folder-relative path (`/`-separated) to entry. */
export type Tree = Map<string, Entry>;

/** Which names a comparison leaves out or waits for. */
export interface TreeRules {
  /** The tool's own files in the folder (its marker, its database): not compared. */
  readonly own: (rel: string) => boolean;
  /** A transfer in progress (the tool's temp files): the folder is not done while any is there. */
  readonly partial: (rel: string) => boolean;
}

const PIECE = 16 * 2 ** 20;

/** Writes `size` random bytes to `path`, in pieces (any size, little memory). */
export function writeRandomFile(path: string, size: number): void {
  const buf = Buffer.allocUnsafe(Math.min(PIECE, Math.max(size, 1)));
  const fd = fs.openSync(path, 'w');
  try {
    for (let done = 0; done < size;) {
      const n = Math.min(buf.length, size - done);
      randomFillSync(buf, 0, n);
      fs.writeSync(fd, buf, 0, n, done);
      done += n;
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** Writes `files` random files of `size` bytes, spread evenly over `dirs` directories `dNNNN`. */
export function writeSmallFiles(root: string, files: number, dirs: number, size: number): void {
  const per = 4096;
  const buf = Buffer.allocUnsafe(size * per);
  for (let d = 0; d < dirs; d++) fs.mkdirSync(join(root, dirName(d)), { recursive: true });
  for (let f = 0; f < files; f++) {
    if (f % per === 0) randomFillSync(buf);
    const at = (f % per) * size;
    fs.writeFileSync(join(root, dirName(f % dirs), `f${f}.bin`), buf.subarray(at, at + size));
  }
}

function dirName(d: number): string {
  return `d${String(d).padStart(4, '0')}`;
}

/** Lists every entry under `root` (symlinks not followed), leaving out own and partial names. */
export function listTree(root: string, rules: TreeRules): Tree {
  const out: Tree = new Map();
  const walk = (abs: string, rel: string) => {
    for (const d of fs.readdirSync(abs, { withFileTypes: true })) {
      const r = rel === '' ? d.name : `${rel}/${d.name}`;
      if (rules.own(r) || rules.partial(r)) continue;
      const st = fs.lstatSync(join(abs, d.name), { bigint: true });
      const type = st.isDirectory() ? 'directory' : st.isSymbolicLink() ? 'symlink' : 'file';
      out.set(r, { type, size: type === 'file' ? Number(st.size) : 0, mtimeNs: st.mtimeNs });
      if (type === 'directory') walk(join(abs, d.name), r);
    }
  };
  walk(root, '');
  return out;
}

/** What one look at the folder being synced found. */
export interface MatchState {
  /** Everything is there with A's size and mtime, nothing extra, no partial files. */
  readonly done: boolean;
  /** Expected entries not (yet) there as expected. */
  readonly missing: number;
  /** Entries that A does not have (conflict copies, say). */
  readonly extra: number;
  /** The tool's temp files present. */
  readonly partial: number;
}

/** A directory as last listed, and what its entries came to if that cannot change. */
interface DirState {
  /** The directory's ctime at the listing: any change to its entries or times moves it. */
  readonly ctimeNs: bigint;
  /** Wall-clock time (ns) just before the listing. */
  readonly listedAtNs: bigint;
  readonly names: fs.Dirent[];
  /** Set once every entry matched: the counts, and the subdirectories to descend into. */
  settled?: { present: number; extra: number; partial: number; subdirs: string[] };
}

/**
 * A directory listing may be reused while the directory's ctime is unchanged
 * and was already this much older than the listing (file system timestamps
 * are coarse: a change in the same tick as the listing could keep the ctime).
 * Not the mtime: a tool may set it back (rsync restores directory mtimes
 * after writing into them), the ctime only ever moves on.
 */
const DIR_QUIET_NS = 50_000_000n;

/**
 * Tells whether a folder holds an expected tree (paths, types, file sizes,
 * mtimes within a tolerance), cheaply enough to ask every ~20 ms while a tool
 * writes tens of thousands of files: files seen to match are not stated
 * again, and a directory whose mtime has not changed is not listed again.
 */
export class TreeMatcher {
  private readonly matched = new Set<string>();
  private readonly dirs = new Map<string, DirState>();

  constructor(
    private readonly expected: Tree,
    private readonly rules: TreeRules,
    /** How far apart two mtimes may be and still match (tools keep them at different resolutions). */
    private readonly mtimeToleranceNs = 1_000_000n,
  ) {}

  /** Looks at `root` once; `full` lists and stats everything again, trusting nothing seen before. */
  look(root: string, full = false): MatchState {
    if (full) {
      this.matched.clear();
      this.dirs.clear();
    }
    let extra = 0;
    let partial = 0;
    let present = 0;
    const walk = (abs: string, rel: string) => {
      const dir = this.listing(abs, rel);
      if (dir === undefined) return; // not there yet, or replaced while we looked
      if (dir.settled !== undefined) {
        present += dir.settled.present;
        extra += dir.settled.extra;
        partial += dir.settled.partial;
        for (const name of dir.settled.subdirs) walk(join(abs, name), joinRel(rel, name));
        return;
      }
      const counts = { present: 0, extra: 0, partial: 0, subdirs: [] as string[] };
      let unmatched = 0;
      for (const d of dir.names) {
        const r = joinRel(rel, d.name);
        if (this.rules.partial(r)) {
          counts.partial++;
          continue;
        }
        if (this.rules.own(r)) continue;
        const want = this.expected.get(r);
        if (want === undefined) {
          counts.extra++;
          continue;
        }
        if (want.type === 'directory') {
          if (d.isDirectory()) {
            counts.present++;
            counts.subdirs.push(d.name);
          } else unmatched++;
          continue;
        }
        if (this.matched.has(r)) {
          counts.present++;
          continue;
        }
        const st = fs.lstatSync(join(abs, d.name), { bigint: true, throwIfNoEntry: false });
        const ok =
          st !== undefined &&
          (want.type === 'symlink'
            ? st.isSymbolicLink()
            : st.isFile() &&
              Number(st.size) === want.size &&
              abs64(st.mtimeNs - want.mtimeNs) <= this.mtimeToleranceNs);
        if (ok) {
          this.matched.add(r);
          counts.present++;
        } else unmatched++;
      }
      if (unmatched === 0) dir.settled = counts;
      present += counts.present;
      extra += counts.extra;
      partial += counts.partial;
      for (const name of counts.subdirs) walk(join(abs, name), joinRel(rel, name));
    };
    walk(root, '');
    const missing = this.expected.size - present;
    return { done: missing === 0 && extra === 0 && partial === 0, missing, extra, partial };
  }

  /** The entries of directory `abs`: the last listing if it cannot have changed, else a new one. */
  private listing(abs: string, rel: string): DirState | undefined {
    try {
      const st = fs.statSync(abs, { bigint: true });
      if (!st.isDirectory()) return undefined;
      const had = this.dirs.get(rel);
      if (
        had !== undefined &&
        had.ctimeNs === st.ctimeNs &&
        st.ctimeNs < had.listedAtNs - DIR_QUIET_NS
      )
        return had;
      const listedAtNs = BigInt(Date.now()) * 1_000_000n;
      const dir: DirState = {
        ctimeNs: st.ctimeNs,
        listedAtNs,
        names: fs.readdirSync(abs, { withFileTypes: true }),
      };
      this.dirs.set(rel, dir);
      return dir;
    } catch {
      return undefined;
    }
  }
}

function joinRel(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}

function abs64(n: bigint): bigint {
  return n < 0n ? -n : n;
}

/** SHA-256 of each file of `tree` under `root`, by path; symlinks by their target. */
export function digestTree(root: string, tree: Tree): Map<string, string> {
  const out = new Map<string, string>();
  const buf = Buffer.allocUnsafe(4 * 2 ** 20);
  for (const [rel, e] of tree) {
    const abs = join(root, rel);
    if (e.type === 'symlink') {
      out.set(rel, `link:${fs.readlinkSync(abs)}`);
      continue;
    }
    if (e.type !== 'file') continue;
    out.set(rel, digestFile(abs, buf));
  }
  return out;
}

/** SHA-256 (hex) of the file at `abs`. */
export function digestFile(abs: string, buf = Buffer.allocUnsafe(4 * 2 ** 20)): string {
  const h = createHash('sha256');
  const fd = fs.openSync(abs, 'r');
  try {
    for (let pos = 0; ;) {
      const n = fs.readSync(fd, buf, 0, buf.length, pos);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
      pos += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

/**
 * Compares two digest maps; returns undefined when equal, else a short
 * description of the first differences.
 */
export function diffDigests(
  a: ReadonlyMap<string, string>,
  b: ReadonlyMap<string, string>,
): string | undefined {
  const problems: string[] = [];
  for (const [p, h] of a) {
    const other = b.get(p);
    if (other === undefined) problems.push(`${p} missing on B`);
    else if (other !== h) problems.push(`${p} differs`);
  }
  for (const p of b.keys()) if (!a.has(p)) problems.push(`${p} only on B`);
  if (problems.length === 0) return undefined;
  const shown = problems.slice(0, 5).join('; ');
  return problems.length > 5 ? `${shown}; and ${problems.length - 5} more` : shown;
}

/**
 * Assembling a pulled file: the winner's content is built in a temp file
 * beside its target from chunks found locally (what an earlier attempt left
 * in the temp file, the old version, any other file) or fetched from peers,
 * every chunk verified by hash, then its mode and mtime set and (for large
 * files) fsynced. The folder writer puts it in place afterwards.
 */
import * as fs from 'node:fs';
import type { FolderFs } from '../confined/fs.js';
import type { FileRecord } from '../core/record.js';
import {
  ensureParents,
  inFolder,
  landedInside,
  openTemp,
  tempPath,
  writeAll,
  type FileId,
} from '../folder/temp-files.js';
import { newMode } from '../folder/writer.js';
import { hashHex } from '../scan/chunker.js';
import type { ChunkLocation, IndexStore } from '../store/index-store.js';
import type { Budget } from './budget.js';
import type { FdCache } from './fd-cache.js';
import type { ChunkFetcher } from './fetcher.js';
import { readLocalChunk } from './local-chunks.js';
import { WriteBack } from './writeback.js';

/** Files this small are fsynced in groups (see GroupSync); larger ones on their own. */
export const GROUP_SYNC_MAX_BYTES = 1024 * 1024;

/** What assembling needs from the puller. */
export interface AssembleContext {
  readonly root: string;
  /** The folder, confined beneath its root (shared with the folder writer). */
  readonly fs: FolderFs;
  readonly store: IndexStore;
  readonly fds: FdCache;
  readonly fetcher: ChunkFetcher;
  /** Bytes of chunks requested but not yet written, over all files. */
  readonly budget: Budget;
  /** Files being assembled now: path → bytes done / total. */
  readonly progress: Map<string, { done: number; total: number }>;
}

/** The file to assemble: its path, the winner's record, the local record and who has the content. */
export interface PullStep {
  readonly path: string;
  readonly record: FileRecord;
  readonly local: FileRecord | undefined;
  readonly sources: readonly string[];
}

/** A file built in its temp file: fsynced and closed, or (small) still open for a group fsync. */
export interface Assembled {
  readonly tmp: string;
  /** The temp file's identity when it was made (checked again where it lands). */
  readonly id: FileId;
  readonly fd?: number;
}

/** Where each distinct chunk of a file goes (a file may repeat a chunk). */
type Wanted = Map<string, { length: number; offsets: number[] }>;

/**
 * Builds the winner's content in a temp file beside the target and returns
 * its path. Reuses what a temp file from an earlier attempt already holds.
 */
export async function assemble(
  ctx: AssembleContext,
  step: PullStep,
  known: ReadonlyMap<string, readonly ChunkLocation[]>,
): Promise<Assembled> {
  const rec = step.record;
  const { fd, tmp, id, existing } = openAssembly(ctx.fs, ctx.root, step.path);
  let keep = false;
  const wb = new WriteBack(fd);
  try {
    const want: Wanted = new Map();
    for (const c of rec.chunks) {
      const w = want.get(c.hash);
      if (w) w.offsets.push(c.offset);
      else want.set(c.hash, { length: c.length, offsets: [c.offset] });
    }
    const progress = { done: 0, total: rec.size };
    ctx.progress.set(step.path, progress);
    const put = (hash: string, data: Buffer) => {
      const w = want.get(hash);
      if (!w) return;
      want.delete(hash);
      for (const off of w.offsets) writeAll(fd, data, off);
      progress.done += data.length * w.offsets.length;
      wb.wrote(data.length * w.offsets.length);
    };
    if (existing > 0) progress.done += reuseTemp(fd, rec, existing, want, put);
    await fillChunks(ctx, step, known, want, put);
    // Every chunk is in place, so the file already has rec.size bytes
    // unless a longer temp file was left by an earlier attempt.
    const last = rec.chunks.at(-1);
    const end = last === undefined ? 0 : last.offset + last.length;
    if (existing > rec.size || end !== rec.size) fs.ftruncateSync(fd, rec.size);
    fs.fchmodSync(fd, newMode(step.local, rec));
    const secs = Number(rec.mtimeNs) / 1e9;
    fs.futimesSync(fd, secs, secs);
    await wb.settle();
    if (rec.size <= GROUP_SYNC_MAX_BYTES) {
      // Made durable with others (see the puller's pullAll); the descriptor goes along.
      keep = true;
      return { tmp, id, fd };
    }
    await new Promise<void>((resolve, reject) =>
      fs.fsync(fd, (err) => (err ? reject(err) : resolve())),
    );
  } finally {
    await wb.idle();
    if (!keep) fs.closeSync(fd);
    ctx.progress.delete(step.path);
  }
  return { tmp, id };
}

/**
 * Opens (creating, or reusing what an interrupted pull left) the temp file
 * of `path`, checked to be inside the folder.
 */
function openAssembly(
  fsys: FolderFs,
  root: string,
  path: string,
): { fd: number; tmp: string; id: FileId; existing: number } {
  const tmp = tempPath(inFolder(root, path));
  ensureParents(root, path, true, fsys);
  // Created on the main thread, through the confined filesystem (its parent
  // resolved beneath the root, never through a link). Writes and reads go
  // to the page cache synchronously too: a thread hop per chunk would cost
  // more than the copy. The fsync waits on a thread.
  const { fd, created } = openTemp(fsys, tmp);
  try {
    const st = fs.fstatSync(fd, { bigint: true });
    // Checked again where it is: only a file this pull created is removed
    // if it is not where it should be; one that was there already is not ours.
    landedInside(path, tmp, st, created, fsys);
    return { fd, tmp, id: { ino: st.ino, dev: st.dev }, existing: Number(st.size) };
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
}

/**
 * Keeps the chunks an earlier attempt already wrote to the temp file (the
 * first `existing` bytes), verified; returns the bytes kept in place.
 */
function reuseTemp(
  fd: number,
  rec: FileRecord,
  existing: number,
  want: Wanted,
  put: (hash: string, data: Buffer) => void,
): number {
  let kept = 0;
  for (const c of rec.chunks) {
    if (!want.has(c.hash) || c.offset + c.length > existing) continue;
    const buf = Buffer.allocUnsafe(c.length);
    if (fs.readSync(fd, buf, 0, c.length, c.offset) !== c.length) continue;
    if (hashHex(buf) === c.hash) {
      const w = want.get(c.hash) as { length: number; offsets: number[] };
      w.offsets = w.offsets.filter((o) => o !== c.offset);
      kept += c.length;
      if (w.offsets.length === 0) want.delete(c.hash);
      else put(c.hash, buf);
    }
  }
  return kept;
}

/**
 * Writes the chunks still wanted: those this device has in other files (the
 * old version, a renamed file), then the rest from peers, pipelined within
 * the byte budget.
 */
async function fillChunks(
  ctx: AssembleContext,
  step: PullStep,
  known: ReadonlyMap<string, readonly ChunkLocation[]>,
  want: Wanted,
  put: (hash: string, data: Buffer) => void,
): Promise<void> {
  for (const [hash, w] of [...want]) {
    const places = known.get(hash);
    if (places === undefined) continue;
    const data = readLocalChunk(ctx.root, ctx.store, ctx.fds, hash, w.length, places);
    if (data) put(hash, data);
  }
  const fetches: Promise<void>[] = [];
  let error: unknown;
  for (const [hash, w] of [...want]) {
    if (error !== undefined) break;
    await ctx.budget.take(w.length);
    const hint = [step.path, w.offsets[0] as number, w.length] as const;
    fetches.push(
      ctx.fetcher
        // Written as it arrives, verified, straight from the receive buffer.
        .into(hash, w.length, step.sources, hint, (data) => put(hash, data))
        .catch((err: unknown) => {
          error ??= err;
        })
        .finally(() => ctx.budget.give(w.length)),
    );
  }
  await Promise.all(fetches);
  if (error !== undefined) throw error;
}

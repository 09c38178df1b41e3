/**
 * Chunks served to peers: from where the asking peer expects a chunk when
 * that is a live local file (no lookup and no re-hash: the asker verifies),
 * else from wherever this device's chunk table says, verified.
 */
import type { ChunkHint } from '../peer/wire.js';
import type { IndexStore } from '../store/index-store.js';
import type { FdCache } from '../sync/fd-cache.js';
import { readLocalChunk } from '../sync/local-chunks.js';
import { inFolder } from '../folder/temp-files.js';

/** How long a path checked to be a live local file is trusted for serving chunk hints. */
const HINT_CHECK_MS = 1000;
/** Paths remembered as checked, at most (then forgotten all at once). */
const HINTS_MAX = 1024;

/** Reads the chunks peers ask this device for. */
export class ChunkServer {
  /** Paths recently checked to be live local files. */
  private readonly hintOk = new Map<string, { ok: boolean; at: number }>();

  /**
   * @param fds - descriptors for reading chunks, shared with the puller's local copies
   * @param now - the time in ms (how long a checked hint is trusted)
   */
  constructor(
    private readonly folder: string,
    private readonly store: Pick<IndexStore, 'get' | 'findChunk'>,
    private readonly fds: FdCache,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * The chunk `hash`, read into `into` at `at` when it has room (else a new
   * buffer); undefined when this device has it nowhere.
   */
  read(hash: string, hint: ChunkHint | null, into?: Buffer, at = 0): Buffer | undefined {
    if (hint !== null && this.isLiveFile(hint[0])) {
      const [path, offset, length] = hint;
      const room = into !== undefined && at + length <= into.length;
      const file = inFolder(this.folder, path);
      const data = room
        ? this.fds.read(file, offset, length, into, at)
        : this.fds.read(file, offset, length);
      if (data !== undefined) return data;
    }
    return readLocalChunk(this.folder, this.store, this.fds, hash);
  }

  private isLiveFile(path: string): boolean {
    const now = this.now();
    let known = this.hintOk.get(path);
    if (known === undefined || now - known.at > HINT_CHECK_MS) {
      const rec = this.store.get(path);
      known = { ok: rec !== undefined && !rec.deleted && rec.type === 'file', at: now };
      if (this.hintOk.size >= HINTS_MAX) this.hintOk.clear();
      this.hintOk.set(path, known);
    }
    return known.ok;
  }
}

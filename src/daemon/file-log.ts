/**
 * Log lines per file (synced from a peer, indexed after a local change): one
 * per file while they come at a human pace, and past that a summary per
 * second (each file still at debug level). A first sync of 20,000 files is
 * then a few dozen lines, not 20,000, and no longer costs the device its
 * time writing them.
 */
import type { FileRecord } from '../core/record.js';
import { formatBytes } from '../core/human.js';
import type { Logger } from '../base/log.js';

/** Files logged one by one per second before the rest are summarized. */
const EACH_PER_SECOND = 20;

export class FileLog {
  private windowStart = 0;
  private inWindow = 0;
  private held = { files: 0, bytes: 0, deletes: 0 };
  private timer: NodeJS.Timeout | undefined;

  /** @param verb - what happened to the files, for the summary ("synced") */
  constructor(
    private readonly log: Logger,
    private readonly verb: string,
    private readonly now: () => number = Date.now,
  ) {}

  /** Logs `message` about `r` (or counts it into the next summary). */
  add(r: FileRecord, message: string): void {
    const fields = { path: r.path, seq: r.sequence };
    const t = this.now();
    if (t - this.windowStart >= 1000) {
      this.windowStart = t;
      this.inWindow = 0;
    }
    if (++this.inWindow <= EACH_PER_SECOND) {
      this.log.info(fields, message);
      return;
    }
    this.log.debug(fields, message);
    this.held.files++;
    if (r.deleted) this.held.deletes++;
    else if (r.type === 'file') this.held.bytes += r.size;
    this.timer ??= setTimeout(() => this.flush(), 1000);
    this.timer.unref();
  }

  /** Logs the summary of what was held back, if anything. */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const { files, bytes, deletes } = this.held;
    if (files === 0) return;
    this.held = { files: 0, bytes: 0, deletes: 0 };
    const del = deletes > 0 ? `, ${deletes.toLocaleString('en-US')} of them deletes` : '';
    this.log.info(
      { files, bytes, deletes },
      `${this.verb} ${files.toLocaleString('en-US')} more ${files === 1 ? 'entry' : 'entries'} (${formatBytes(bytes)}${del}); each is logged at debug level`,
    );
  }
}

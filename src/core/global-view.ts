/**
 * The global view of one path: which of the devices' records the cluster
 * shows for it, and which devices hold that content. Pure: the store reads
 * the rows, the listing turns the result into what clients see.
 */
import { winner } from './plan.js';
import type { FileRecord } from './record.js';
import { compare } from './vector.js';

/** One device's record of a path, as the global view reads it. */
export interface HeldRecord {
  /** The device's full ID. */
  readonly device: string;
  readonly record: FileRecord;
}

/** What the cluster as a whole holds at one path. */
export interface GlobalEntry {
  /** The global winner among the devices' records (never a tombstone). */
  readonly record: FileRecord;
  /**
   * The devices whose live record is at the winner's version or newer, in
   * the order of the rows given: the ones that hold what the view shows.
   */
  readonly holders: readonly string[];
}

/**
 * The global view of one path from all devices' records of it; undefined
 * when there are none or the winner is a delete (the path is gone
 * everywhere, as far as the winner knows).
 */
export function globalEntry(rows: readonly HeldRecord[]): GlobalEntry | undefined {
  const w = winner(rows.map((r) => r.record));
  if (w === undefined || w.deleted) return undefined;
  const holders: string[] = [];
  for (const { device, record } of rows) {
    if (record.deleted) continue;
    // The store decodes each version text once, so most records share the
    // winner's very object: skip the comparison then.
    if (record.version !== w.version) {
      const o = compare(record.version, w.version);
      if (o !== 'equal' && o !== 'greater') continue;
    }
    holders.push(device);
  }
  return { record: w, holders };
}

/**
 * The listing this client last printed, per device, so that `lock 3` means
 * the third row the user saw, never a row of a fresh listing that may have
 * shifted since. Kept in `$XDG_CACHE_HOME/lockstep/last-listing.json`
 * (else `~/.cache/lockstep/`), mode 0600.
 */
import * as fs from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { LockstepError } from '../base/errors.js';
import { writeFileAtomic } from '../config/config.js';
import { formatLocal } from './format.js';

/** Devices whose last listing is remembered; the oldest is forgotten first. */
const MAX_DEVICES = 20;

const cacheSchema = z.object({
  version: z.literal(1),
  listings: z.record(
    z.string(),
    z.object({ dir: z.string(), printed: z.string(), paths: z.array(z.string()) }),
  ),
});

type CacheFile = z.output<typeof cacheSchema>;

/** One remembered listing. */
export interface PrintedListing {
  /** The directory listed ('' for the root). */
  readonly dir: string;
  /** ISO 8601 time it was printed. */
  readonly printed: string;
  /** Folder-relative path of row 1, 2, … */
  readonly paths: readonly string[];
}

/** The cache file's path. */
export function cacheFile(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_CACHE_HOME;
  const base = xdg !== undefined && xdg !== '' ? xdg : join(homedir(), '.cache');
  return join(base, 'lockstep', 'last-listing.json');
}

function readCache(file: string): CacheFile {
  try {
    const parsed = cacheSchema.safeParse(JSON.parse(fs.readFileSync(file, 'utf8')));
    if (parsed.success) return parsed.data;
  } catch {
    // missing or unreadable: start afresh
  }
  return { version: 1, listings: {} };
}

/** Remembers the listing just printed for the device at `api`. */
export function saveListing(
  api: string,
  listing: PrintedListing,
  file: string = cacheFile(),
): void {
  const cache = readCache(file);
  const listings = { ...cache.listings, [api]: { ...listing, paths: [...listing.paths] } };
  const keep = Object.entries(listings)
    .sort(([, a], [, b]) => (a.printed < b.printed ? 1 : -1))
    .slice(0, MAX_DEVICES);
  const dir = join(file, '..');
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileAtomic(
      file,
      JSON.stringify({ version: 1, listings: Object.fromEntries(keep) }),
      0o600,
    );
  } catch (err) {
    // Not fatal for the listing itself, but `lock N` will not work: say so.
    process.stderr.write(
      `lockstep: cannot remember this listing in ${file} (lock/unlock by number will not work): ${(err as Error).message}\n`,
    );
  }
}

/** The listing last printed for the device at `api`, or undefined. */
export function lastListing(api: string, file: string = cacheFile()): PrintedListing | undefined {
  return readCache(file).listings[api];
}

/** What a `<#|PATH>` argument named. */
export interface Target {
  readonly path: string;
  /** The row number given, when the argument was one. */
  readonly index?: number;
}

/**
 * Resolves a `lock`/`unlock` argument: a number (or `#N`) is a row of the
 * listing last printed for `api`; anything else is a folder-relative path
 * (a leading `./` or `/` is dropped, so `./3` names a file called `3`).
 *
 * @throws LockstepError `USAGE` if there is no listing to count in, or the
 *   number is not a row of it
 */
export function resolveTarget(arg: string, api: string, file: string = cacheFile()): Target {
  const m = /^#?(\d+)$/.exec(arg.trim());
  if (m === null) {
    const path = arg.replace(/^(\.\/)+/, '').replace(/^\/+/, '');
    if (path === '') throw new LockstepError('USAGE', `Invalid path ${JSON.stringify(arg)}`);
    return { path };
  }
  const index = Number(m[1]);
  const listing = lastListing(api, file);
  if (listing === undefined) {
    throw new LockstepError(
      'USAGE',
      `There is no listing to take #${index} from: run \`lockstep ls\` first (numbers refer to the ` +
        `last listing printed for ${api}), or give the path`,
    );
  }
  const path = listing.paths[index - 1];
  if (index < 1 || path === undefined) {
    const where = listing.dir === '' ? 'the folder root' : `${listing.dir}/`;
    throw new LockstepError(
      'USAGE',
      `#${index} is not in the last listing (of ${where}, printed ${formatLocal(listing.printed)}), which has ` +
        `${listing.paths.length === 0 ? 'no rows' : `rows 1 to ${listing.paths.length}`}`,
    );
  }
  return { path, index };
}

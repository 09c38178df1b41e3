/**
 * Conflict-copy names: the one place that decides what a kept copy of a
 * losing or refused version is called. Pure: whether a name is taken is the
 * caller's question (the disk, the index, or both), asked through a predicate.
 */

/** How many numbered names are tried before giving up (a folder never holds that many copies of one loser). */
const MAX_TRIES = 10_000;

/** A path cut where a conflict tag goes: before the name's last extension. */
interface NameParts {
  /** Everything before the tag: directory, and the name without its extension. */
  readonly head: string;
  /** The extension with its dot (`.txt`), or empty; a leading dot (`.bashrc`) is not one. */
  readonly ext: string;
}

function partsOf(path: string): NameParts {
  const slash = path.lastIndexOf('/');
  const name = path.slice(slash + 1);
  const dot = name.lastIndexOf('.');
  if (dot <= 0) return { head: path, ext: '' };
  return { head: path.slice(0, slash + 1 + dot), ext: name.slice(dot) };
}

/** The conflict tag of a copy: `.conflict-YYYYMMDD-HHMMSS-<DEVICE>` (UTC). */
function tagOf(mtimeNs: bigint, device: string): string {
  const t = new Date(Number(mtimeNs / 1_000_000n)).toISOString();
  const stamp = `${t.slice(0, 4)}${t.slice(5, 7)}${t.slice(8, 10)}-${t.slice(11, 13)}${t.slice(14, 16)}${t.slice(17, 19)}`;
  return `.conflict-${stamp}-${device === '' ? 'UNKNOWN' : device}`;
}

/**
 * The name a conflict's losing copy is kept under, beside the winner:
 * `NAME.conflict-YYYYMMDD-HHMMSS-<DEVICE>.EXT`, from the loser's mtime (UTC)
 * and the device that made it, so every device that holds the loser picks
 * the same name. This is the first choice of {@link conflictCopyName}.
 *
 * @example
 * conflictName('docs/e.txt', 1795543420000000000n, 'B7XKQ2M')
 * // 'docs/e.conflict-20261124-180340-B7XKQ2M.txt'
 */
export function conflictName(path: string, mtimeNs: bigint, device: string): string {
  const { head, ext } = partsOf(path);
  return `${head}${tagOf(mtimeNs, device)}${ext}`;
}

/**
 * The first name for a conflict copy of `path` that `taken` does not
 * refuse: {@link conflictName} itself, else the same with `-2`, `-3`, ...
 * after the device, so the extension stays last and a second clash never
 * grows the name further (`e.conflict-20261124-180340-B7XKQ2M-2.txt`).
 * A caller that treats an identical copy already there as "free" gets that
 * name back and can drop the duplicate instead of keeping it twice.
 *
 * @param taken - whether a candidate name is in use (asked in order, each at most once)
 * @throws RangeError when every one of the first 10,000 names is taken
 * @example
 * conflictCopyName('e.txt', 1795543420000000000n, 'B7XKQ2M', (n) => n === 'e.conflict-20261124-180340-B7XKQ2M.txt')
 * // 'e.conflict-20261124-180340-B7XKQ2M-2.txt'
 */
export function conflictCopyName(
  path: string,
  mtimeNs: bigint,
  device: string,
  taken: (name: string) => boolean,
): string {
  const { head, ext } = partsOf(path);
  const tag = tagOf(mtimeNs, device);
  for (let n = 1; n <= MAX_TRIES; n++) {
    const name = `${head}${tag}${n === 1 ? '' : `-${n}`}${ext}`;
    if (!taken(name)) return name;
  }
  throw new RangeError(`Cannot name a conflict copy of ${path}: ${MAX_TRIES} names are taken`);
}

/** A conflict tag and what may follow it in a name: `-N`, then the extension. */
const CONFLICT_TAG_RE = /\.conflict-\d{8}-\d{6}-[A-Z2-7]{7}(-\d+)?(\.[^./]*)?$/;

/**
 * Whether a file or directory name (one path segment) is a conflict copy's,
 * as {@link conflictCopyName} makes them.
 *
 * @example
 * isConflictCopyName('e.conflict-20261124-180340-B7XKQ2M-2.txt') // true
 */
export function isConflictCopyName(name: string): boolean {
  return CONFLICT_TAG_RE.test(name);
}

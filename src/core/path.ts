/**
 * Folder-relative path rules. Every path that enters the index, from the disk
 * or (later) from a peer, passes {@link checkRelPath}, so nothing can name a
 * place outside the folder.
 */

/** The longest path accepted, in UTF-16 code units (Linux PATH_MAX is 4096 bytes). */
export const MAX_PATH_LENGTH = 4096;
/** The longest single name accepted (Linux NAME_MAX is 255 bytes). */
export const MAX_NAME_LENGTH = 255;

/** Names Lockstep keeps for itself in the folder root; always ignored. */
export const MARKER_NAME = '.lockstep-folder';
/** The ignore-rules file at the folder root (gitignore syntax). */
export const IGNORE_FILE = '.lockstepignore';
/** Prefix of Lockstep's temporary files, in any directory; always ignored. */
export const TEMP_PREFIX = '.lockstep-tmp-';

/**
 * Returns the reason `p` is not a valid folder-relative path, or undefined if
 * it is: `/`-separated, not empty, not absolute, no `.` or `..` or empty
 * segments, no NUL, no backslash, no lone surrogates (not valid UTF-8), and
 * within the length limits.
 */
export function pathProblem(p: string): string | undefined {
  if (p.length === 0) return 'path is empty';
  if (p.length > MAX_PATH_LENGTH) return `path is longer than ${MAX_PATH_LENGTH} characters`;
  if (p.startsWith('/')) return 'path is absolute';
  if (p.includes('\0')) return 'path contains NUL';
  if (p.includes('\\')) return 'path contains a backslash';
  if (!p.isWellFormed()) return 'path is not valid UTF-8';
  for (const seg of p.split('/')) {
    if (seg === '') return 'path has an empty segment';
    if (seg === '.' || seg === '..') return `path has a "${seg}" segment`;
    if (seg.length > MAX_NAME_LENGTH)
      return `path has a name longer than ${MAX_NAME_LENGTH} characters`;
  }
  return undefined;
}

/** Reports whether Lockstep always ignores `p` (its marker, its temp files). */
export function isInternalPath(p: string): boolean {
  return p === MARKER_NAME || isTempName(p.slice(p.lastIndexOf('/') + 1));
}

/** Reports whether a file name (no directory) is one of Lockstep's temp files. */
export function isTempName(name: string): boolean {
  return name.startsWith(TEMP_PREFIX);
}

/** Returns the parent of a relative path, or '' for a top-level name. */
export function parentOf(p: string): string {
  const i = p.lastIndexOf('/');
  return i < 0 ? '' : p.slice(0, i);
}

/** Joins a relative directory (possibly '') and a name. */
export function joinRel(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}

/** Reports whether `p` is `dir` or lies below it ('' contains everything). */
export function isWithin(p: string, dir: string): boolean {
  return dir === '' || p === dir || p.startsWith(`${dir}/`);
}

/** How much of a path a problem message quotes. */
const QUOTE_CHARS = 200;

/**
 * Returns the reason a path from a peer is not acceptable, or undefined:
 * {@link pathProblem}'s rules (not empty, relative, no NUL, backslash, `.`,
 * `..` or empty segment, well-formed Unicode), at most
 * {@link MAX_PATH_LENGTH} UTF-8 bytes with names of at most
 * {@link MAX_NAME_LENGTH}, and neither internal to Lockstep nor inside an
 * internal path. It lives here, not with the peer wire, because every
 * message from a peer checks its paths with it (index records and locks).
 */
export function peerPathProblem(p: string): string | undefined {
  const problem = pathProblem(p);
  if (problem !== undefined) return problem;
  if (Buffer.byteLength(p) > MAX_PATH_LENGTH) return `path is longer than ${MAX_PATH_LENGTH} bytes`;
  for (let from = 0; from <= p.length;) {
    let to = p.indexOf('/', from);
    if (to < 0) to = p.length;
    if (Buffer.byteLength(p.slice(from, to)) > MAX_NAME_LENGTH) {
      return `path has a name longer than ${MAX_NAME_LENGTH} bytes`;
    }
    const prefix = p.slice(0, to);
    if (isInternalPath(prefix)) {
      const quoted =
        prefix.length > QUOTE_CHARS
          ? `${JSON.stringify(prefix.slice(0, QUOTE_CHARS))}…`
          : JSON.stringify(prefix);
      return to === p.length
        ? 'path is internal to Lockstep'
        : `path lies inside ${quoted}, which is internal to Lockstep`;
    }
    from = to + 1;
  }
  return undefined;
}

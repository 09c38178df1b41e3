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

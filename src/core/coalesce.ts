/**
 * Coalescing of raw change notifications. The watcher hears about the same
 * path many times in a burst (a write is a truncate and several modifies; a
 * new directory is announced and then rescanned); the indexer wants each
 * place to look at once, and nothing it would look at twice.
 */

import { parentOf } from './path.js';

/**
 * One change notification: something at `path` (folder-relative, '' is the
 * root) changed. With `subtree`, the consumer rescans that directory and
 * everything below it; without, it looks at `path` alone.
 */
export interface ChangedPath {
  path: string;
  subtree: boolean;
}

/**
 * Returns the minimal list of notifications covering `changes`: one entry per
 * path, `subtree` if any notification for that path had it, no entry below a
 * `subtree` entry (the rescan covers it), sorted by path in code-unit order
 * (so a directory comes before anything inside it). The input is not modified.
 *
 * @example
 * coalesce([{ path: 'a/b', subtree: false }, { path: 'a', subtree: true }, { path: 'a', subtree: false }])
 * // [{ path: 'a', subtree: true }]
 */
export function coalesce(changes: readonly ChangedPath[]): ChangedPath[] {
  // Merge duplicates first: subtree wins over plain for the same path.
  const merged = new Map<string, boolean>();
  for (const c of changes) merged.set(c.path, merged.get(c.path) === true || c.subtree);

  const out: ChangedPath[] = [];
  for (const [path, subtree] of merged) {
    if (!coveredByAncestor(path, merged)) out.push({ path, subtree });
  }
  return out.sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0));
}

/**
 * Reports whether a strict ancestor of `path` ('' included) is a subtree
 * entry. Walking the ancestors costs O(depth) per path, where comparing with
 * every subtree entry would cost O(n).
 */
function coveredByAncestor(path: string, merged: ReadonlyMap<string, boolean>): boolean {
  // Invariant: the root has no ancestor, so a root entry is never covered.
  if (path === '') return false;
  let p = path;
  do {
    p = parentOf(p);
    if (merged.get(p) === true) return true;
  } while (p !== '');
  return false;
}

/**
 * Planning many paths window by window, so memory holds one window's plans
 * rather than the whole difference of a first sync.
 */

/**
 * Plans and runs `paths` a window of `size` at a time. With more than one
 * window, deletes are held back: their paths are planned again, children
 * first, and run after every window (a rename's new path may be in a later
 * window than its old path's delete, and must find the data still there).
 */
export async function inWindows<S extends { readonly kind: string; readonly path: string }>(
  paths: readonly string[],
  size: number,
  plan: (paths: readonly string[]) => S[],
  run: (steps: S[]) => Promise<void>,
  stop: () => boolean = () => false,
): Promise<void> {
  if (paths.length <= size) {
    await run(plan(paths));
    return;
  }
  const deletes: string[] = [];
  for (let i = 0; i < paths.length && !stop(); i += size) {
    const steps = plan(paths.slice(i, i + size));
    for (const s of steps) if (s.kind === 'delete') deletes.push(s.path);
    await run(steps.filter((s) => s.kind !== 'delete'));
  }
  deletes.sort((a, b) => cmp(b, a));
  for (let i = 0; i < deletes.length && !stop(); i += size) {
    await run(plan(deletes.slice(i, i + size)));
  }
}

/** Orders paths by their UTF-16 code units (as the index sorts them). */
export function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The V8 heap flags of a running device, and keeping them set.
 *
 * A daemon that indexes big folders should not hold memory for garbage: V8's
 * young generation stays at its first 1 MiB semi-spaces instead of growing to
 * 16 MiB each, and the old generation grows by half (not up to 4x) between
 * full collections. On a first index of 100,000 files (2 cores) this took
 * serve's peak RSS from about 148 to 103 MB, for about 10% more time (5.1 to
 * 5.7 s). Both flags are read at each collection, so setting them at run time
 * works, where heap sizes could only be set before the isolate starts.
 *
 * V8 sets its young generation's growth factor back to at least 2 whenever
 * it configures a heap (Heap::ConfigureHeap), the main isolate's at start
 * (hence setting it at run time, not on the command line) and every worker
 * thread's: the flag is the process's. After A's first big file was hashed,
 * its young generation grew to 16 MiB again (A's peak RSS in S1 held ~14 MB
 * of it). So whoever starts a worker calls {@link reapplyHeapFlags} once the
 * worker is online, and again when it exits (one that ends before it is
 * online has configured its heap all the same).
 */
import { setFlagsFromString } from 'node:v8';

const HEAP_FLAGS: readonly string[] = ['--semi-space-growth-factor=1', '--heap-growing-percent=50'];

let applied = false;

/** Sets {@link HEAP_FLAGS} for this process (`lockstep` does, at its start). */
export function applyHeapFlags(): void {
  for (const f of HEAP_FLAGS) setFlagsFromString(f);
  applied = true;
}

/**
 * Sets the flags again if this process set them (a worker's start resets
 * them); does nothing in a process that never did, such as a test runner.
 */
export function reapplyHeapFlags(): void {
  if (applied) applyHeapFlags();
}

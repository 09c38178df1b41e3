/**
 * Watcher latency micro-measurement: how long from a write returning until
 * the {@link TreeWatcher} delivers it in a batch (event delivery, the quiet
 * window, the timer). The indexer's work is not included.
 */

import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { TreeWatcher } from '../watch/tree-watcher.js';

/** How long one sample may take before the write counts as missed. */
const SAMPLE_TIMEOUT_MS = 2000;

/**
 * Writes `samples` small files under `dir` one after the other, each time
 * measuring the milliseconds from `writeFileSync` returning until `onBatch`
 * reports that file. The files are created before watching starts, so each
 * sample is a modification; they are removed afterwards. Rejects if a write
 * is not reported within 2 s.
 *
 * @returns the latencies in milliseconds, in sample order.
 */
export async function benchWatchLatency(opts: { dir: string; samples: number }): Promise<number[]> {
  // One file per sample: a report can only be matched to its own write.
  const names = Array.from({ length: opts.samples }, (_, i) => `watch-bench-${i}.txt`);
  for (const name of names) writeFileSync(join(opts.dir, name), 'initial\n');

  let waiting: { name: string; resolve: (at: number) => void } | undefined;
  let failure: Error | undefined;
  const watcher = new TreeWatcher({
    root: opts.dir,
    ignored: () => false,
    onBatch: (batch) => {
      const at = performance.now();
      const w = waiting;
      if (w !== undefined && batch.some((c) => c.path === w.name || (c.subtree && c.path === ''))) {
        waiting = undefined;
        w.resolve(at);
      }
    },
    onError: (err) => {
      failure ??= err;
    },
  });
  const latencies: number[] = [];
  try {
    await watcher.start();
    for (const [i, name] of names.entries()) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const reported = new Promise<number>((resolve, reject) => {
        waiting = { name, resolve };
        timer = setTimeout(
          () => reject(new Error(`write of ${name} not reported within ${SAMPLE_TIMEOUT_MS} ms`)),
          SAMPLE_TIMEOUT_MS,
        );
      });
      writeFileSync(join(opts.dir, name), `sample ${i}\n`);
      const wrote = performance.now();
      try {
        latencies.push((await reported) - wrote);
      } finally {
        clearTimeout(timer);
      }
      if (failure !== undefined) throw failure;
    }
  } finally {
    watcher.close();
    for (const name of names) rmSync(join(opts.dir, name), { force: true });
  }
  return latencies;
}

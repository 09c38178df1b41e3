/**
 * Pulling many files at once: assembled with bounded concurrency, made
 * durable (small ones in group fsyncs), then finished in batches on the
 * serial queue by the puller.
 */
import * as fs from 'node:fs';
import type { FileId } from '../folder/temp-files.js';
import type { ChunkLocation } from '../store/index-store.js';
import { assemble, type AssembleContext, type PullStep } from './assemble.js';
import { Budget } from './budget.js';
import type { GroupSync } from './group-sync.js';

/** Assembled files waiting for their fsync, at most (each holds a descriptor). */
const SYNCING_MAX = 256;
/** Files whose chunks are looked up locally with one query. */
const KNOWN_WINDOW = 256;
/** ...and at most about this many chunks (a file of more is looked up alone). */
const KNOWN_MAX_CHUNKS = 32_768;
/** Files assembled at once. */
const FILES_IN_FLIGHT = 256;

/** What {@link pullAll} needs from the puller. */
export interface PullAllHost<S extends PullStep> {
  readonly assembly: AssembleContext;
  readonly groupSync: GroupSync;
  /** Finishes assembled files on the serial queue (put in place and recorded). */
  finish(batch: { step: S; tmp: string; id: FileId }[]): Promise<void>;
  /** A step failed: it is retried later. */
  stepFailed(step: S, err: unknown): void;
  /** Whether the puller was closed (no further file is started). */
  closed(): boolean;
}

/**
 * Assembles `pulls` with bounded concurrency (chunks found locally looked
 * up for many files at once; small files fsynced in groups while the
 * workers go on) and hands them to `host.finish` in batches as they are
 * ready; a step that fails goes to `host.stepFailed` and the rest go on.
 */
export async function pullAll<S extends PullStep>(host: PullAllHost<S>, pulls: S[]): Promise<void> {
  let next = 0;
  let ready: { step: S; tmp: string; id: FileId }[] = [];
  let finishing: Promise<void> = Promise.resolve();
  const flush = () => {
    if (ready.length === 0) return;
    const batch = ready;
    ready = [];
    // One batch failing must not drop the ones after it.
    finishing = finishing.then(() =>
      host.finish(batch).catch((err: unknown) => {
        for (const { step } of batch) host.stepFailed(step, err);
      }),
    );
  };
  const done = (step: S, tmp: string, id: FileId) => {
    ready.push({ step, tmp, id });
    if (ready.length >= 256) flush();
  };
  // Small files wait for their fsync in groups while the workers go on.
  const slots = new Budget(SYNCING_MAX);
  let syncing = 0;
  let allSynced: (() => void) | undefined;
  // Which chunks of the next files this device has, asked for many files at once.
  let known = new Map<string, ChunkLocation[]>();
  let knownTo = 0;
  const worker = async () => {
    while (next < pulls.length && !host.closed()) {
      if (next >= knownTo) {
        // The next files, up to a number of files and of chunks (at least one file).
        const hashes = new Set<string>();
        knownTo = next;
        while (
          knownTo < pulls.length &&
          knownTo - next < KNOWN_WINDOW &&
          (knownTo === next || hashes.size < KNOWN_MAX_CHUNKS)
        ) {
          for (const c of (pulls[knownTo++] as S).record.chunks) hashes.add(c.hash);
        }
        known = host.assembly.store.chunkPlaces([...hashes]);
      }
      const step = pulls[next++] as S;
      try {
        const { tmp, id, fd } = await assemble(host.assembly, step, known);
        if (fd === undefined) {
          done(step, tmp, id);
          continue;
        }
        await slots.take(1);
        syncing++;
        void host.groupSync
          .fsync(fd)
          .then(
            () => done(step, tmp, id),
            (err: unknown) => host.stepFailed(step, err),
          )
          .finally(() => {
            fs.closeSync(fd);
            slots.give(1);
            if (--syncing === 0) allSynced?.();
          });
      } catch (err) {
        host.stepFailed(step, err);
      }
    }
  };
  const flusher = setInterval(flush, 5);
  try {
    await Promise.all(Array.from({ length: Math.min(FILES_IN_FLIGHT, pulls.length) }, worker));
    if (syncing > 0) await new Promise<void>((resolve) => (allSynced = resolve));
  } finally {
    clearInterval(flusher);
  }
  flush();
  await finishing;
}

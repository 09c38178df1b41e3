/**
 * Worker-thread entry of the {@link HashPool}: chunks and hashes one file per
 * message, so large files never stall the main thread's event loop. The
 * protocol types live in hash-pool.ts.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { chunkFile } from './chunker.js';
import { errorReply, type HashJob, type HashReply, type HashWorkerData } from './hash-pool.js';

const port = parentPort;
if (!port) throw new Error('hash-worker.js runs only as a worker thread of HashPool');
const params = (workerData as HashWorkerData | undefined)?.params;

// The pool sends one job at a time per worker, so no queue is needed here.
port.on('message', (job: HashJob) => {
  const piece = {
    ...(job.from === undefined ? {} : { from: job.from }),
    ...(job.stopAfter === undefined ? {} : { stopAfter: job.stopAfter }),
  };
  chunkFile(job.path, params ? { params, ...piece } : piece).then(
    (r) =>
      port.postMessage({
        id: job.id,
        ok: true,
        size: r.size,
        chunks: r.chunks,
      } satisfies HashReply),
    (err: unknown) => port.postMessage(errorReply(job.id, err)),
  );
});

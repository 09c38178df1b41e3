/**
 * Small pieces of the peer listener: reading a request's body, and the
 * cluster's users stream (the lock authority's device serves it).
 */
import type * as http2 from 'node:http2';
import { LockstepError } from '../base/errors.js';
import { encodeFrame } from './wire.js';

/** Reads a request body of at most `max` bytes. */
export function readBody(stream: http2.ServerHttp2Stream, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    stream.on('data', (b: Buffer) => {
      size += b.length;
      if (size > max) {
        reject(new LockstepError('PEER_INVALID', `Request body is larger than ${max} bytes`));
        stream.pause();
        return;
      }
      parts.push(b);
    });
    stream.once('end', () => resolve(Buffer.concat(parts)));
    stream.once('error', reject);
  });
}

/** Streams the cluster's users: `subscribe` gives a snapshot, then every change. */
export function serveUserStream(
  stream: http2.ServerHttp2Stream,
  users: { subscribe(fn: (message: unknown) => void): () => void },
): void {
  stream.respond({ ':status': 200, 'content-type': 'application/octet-stream' });
  const off = users.subscribe((m) => {
    if (!stream.destroyed) stream.write(encodeFrame(m));
  });
  stream.on('close', off);
}

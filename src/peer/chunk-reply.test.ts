import { EventEmitter } from 'node:events';
import type http2 from 'node:http2';
import { describe, expect, it } from 'vitest';
import {
  CHUNK_HEADER_BYTES,
  putChunkHeader,
  putChunkMissing,
  readChunkReply,
} from './chunk-reply.js';

/** A stand-in for a client request stream: the test emits its events. */
class FakeRequest extends EventEmitter {
  destroyed = false;
  close(): void {
    this.destroyed = true;
  }
  destroy(err?: Error): void {
    this.destroyed = true;
    if (err) this.emit('error', err);
  }
}

function reply(parts: (Buffer | null)[]): Buffer {
  const out: Buffer[] = [];
  for (const p of parts) {
    if (p === null) {
      const missing = Buffer.alloc(1);
      putChunkMissing(missing, 0);
      out.push(missing);
      continue;
    }
    const head = Buffer.alloc(CHUNK_HEADER_BYTES);
    putChunkHeader(head, 0, p.length);
    out.push(head, p);
  }
  return Buffer.concat(out);
}

async function read(pieces: Buffer[], dataFirst: boolean, n: number) {
  const req = new FakeRequest();
  const got: (string | null)[] = [];
  const hashes = Array.from({ length: n }, (_, i) => `h${i}`);
  const done = readChunkReply(
    req as unknown as http2.ClientHttp2Stream,
    hashes,
    (_hash, data) => got.push(data === null ? null : data.toString()),
    'fake',
  );
  if (!dataFirst) req.emit('response', { ':status': 200 });
  for (const p of pieces) req.emit('data', p);
  if (dataFirst) req.emit('response', { ':status': 200 });
  req.emit('end');
  req.emit('close');
  await done;
  return got;
}

describe('readChunkReply', () => {
  const body = reply([Buffer.from('alpha'), null, Buffer.from('a longer chunk of bytes')]);

  it('reads chunks whose bytes came with the headers, before the response event', async () => {
    // Node emits 'response' a tick after the headers; data read with them
    // comes first.
    expect(await read([body], true, 3)).toEqual(['alpha', null, 'a longer chunk of bytes']);
    expect(await read([body.subarray(0, 3), body.subarray(3)], true, 3)).toEqual([
      'alpha',
      null,
      'a longer chunk of bytes',
    ]);
  });

  it('reads headers and chunks split at every byte', async () => {
    const pieces = [...body].map((b) => Buffer.from([b]));
    expect(await read(pieces, false, 3)).toEqual(['alpha', null, 'a longer chunk of bytes']);
  });
});

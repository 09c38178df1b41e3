/**
 * Chunk replies of the peer protocol: per requested hash a status byte,
 * {@link CHUNK_OK} followed by a u32 big-endian length and the bytes, or
 * {@link CHUNK_MISSING}. The listener writes them with {@link putChunkHeader}
 * and {@link putChunkMissing}; the link reads them with
 * {@link readChunkReply}.
 */
import http2 from 'node:http2';
import { LockstepError } from '../base/errors.js';

/** Chunk reply status: the chunk follows (u32 length, then its bytes). */
const CHUNK_OK = 0;
/** Chunk reply status: the serving device does not have the chunk. */
const CHUNK_MISSING = 1;
/** Bytes before a chunk's body: the status byte and the u32 length. */
export const CHUNK_HEADER_BYTES = 5;

/** A chunk request that receives nothing for this long is given up (and asked elsewhere). */
const CHUNK_IDLE_MS = 30_000;

/**
 * Writes the header of a chunk of `length` bytes into `buf` at `at`.
 *
 * @returns where the chunk's body goes
 */
export function putChunkHeader(buf: Buffer, at: number, length: number): number {
  buf[at] = CHUNK_OK;
  buf.writeUInt32BE(length, at + 1);
  return at + CHUNK_HEADER_BYTES;
}

/**
 * Writes "missing" for a chunk into `buf` at `at`.
 *
 * @returns where the next chunk's status goes
 */
export function putChunkMissing(buf: Buffer, at: number): number {
  buf[at] = CHUNK_MISSING;
  return at + 1;
}

/**
 * Reads the reply to a chunk request: per hash a status byte, then a u32
 * length and the bytes. Hands each chunk to `onChunk` (valid only during the
 * call); resolves when the reply ended complete.
 */
export function readChunkReply(
  req: http2.ClientHttp2Stream,
  hashes: readonly string[],
  onChunk: (hash: string, data: Buffer | null) => void,
  name: string,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let i = 0;
    // The response is parsed in place: a chunk's body that lies within one
    // incoming buffer is handed out as a slice of it; one that spans
    // buffers is copied into `scratch` (reused for every spanning chunk of
    // this response). A header (status byte and length) that spans buffers
    // is gathered in `head`.
    const head = Buffer.allocUnsafe(5);
    let headHave = 0;
    let scratch: Buffer | undefined;
    let have = 0; // bytes of the current chunk copied into scratch so far
    let need = -1; // bytes of the current chunk; -1: a header is next
    let status = 0;
    // A peer that stops answering without closing the connection must not
    // hold the pull forever: no bytes for a while ends the request.
    // The timer is re-armed (refresh, no new timer) by every piece received.
    const idle = setTimeout(() => {
      req.close(http2.constants.NGHTTP2_CANCEL);
      reject(
        new LockstepError(
          'PEER_UNREACHABLE',
          `Peer ${name} sent nothing for ${CHUNK_IDLE_MS / 1000} s`,
        ),
      );
    }, CHUNK_IDLE_MS);
    req.on('close', () => clearTimeout(idle));
    // The 'response' event comes a tick after the headers, so the data that
    // arrived with them (the same socket read) is emitted before it: kept
    // until the status is known (dropping it lost the first chunks' bytes
    // and failed the whole reply with a bad status byte).
    let early: Buffer[] | undefined = [];
    req.on('response', (h) => {
      status = Number(h[':status']);
      const first = early ?? [];
      early = undefined;
      if (status === 200) for (const b of first) if (!req.destroyed) parse(b);
    });
    req.on('data', (b: Buffer) => {
      idle.refresh();
      if (early !== undefined) early.push(b);
      else if (status === 200) parse(b);
    });
    const parse = (b: Buffer): void => {
      let at = 0;
      const end = b.length;
      while (at < end) {
        if (need < 0) {
          if (headHave === 0) {
            const s = b[at] as number;
            if (s === CHUNK_MISSING) {
              onChunk(hashes[i++] as string, null);
              at++;
              continue;
            }
            if (s !== CHUNK_OK) {
              req.destroy(new LockstepError('PEER_INVALID', `Bad chunk status byte ${s}`));
              return;
            }
            if (end - at >= 5) {
              need = b.readUInt32BE(at + 1);
              at += 5;
            } else {
              headHave = b.copy(head, 0, at, end);
              return;
            }
          } else {
            const n = b.copy(head, headHave, at, Math.min(end, at + 5 - headHave));
            headHave += n;
            at += n;
            if (headHave < 5) return;
            headHave = 0;
            need = head.readUInt32BE(1);
          }
          have = 0;
        }
        if (have === 0 && end - at >= need) {
          // The whole body is here: no copy.
          const data = b.subarray(at, at + need);
          at += need;
          need = -1;
          onChunk(hashes[i++] as string, data);
          continue;
        }
        if (scratch === undefined || scratch.length < need) {
          scratch = Buffer.allocUnsafe(Math.max(need, scratch?.length ?? 0));
        }
        const n = b.copy(scratch, have, at, Math.min(end, at + need - have));
        have += n;
        at += n;
        if (have === need) {
          const data = scratch.subarray(0, need);
          need = -1;
          have = 0;
          onChunk(hashes[i++] as string, data);
        }
      }
    };
    req.on('end', () => {
      if (status !== 200)
        reject(new LockstepError('PEER_INVALID', `Peer ${name} answered ${status}`));
      else if (i < hashes.length)
        reject(new LockstepError('PEER_INVALID', `Peer ${name} ended a chunk reply early`));
      else resolve();
    });
    req.on('error', (err) => reject(err));
  });
}

/**
 * Frames of the peer protocol: `[u32 big-endian length][UTF-8 JSON]`. The
 * encoder every sender uses and the decoder every receiver uses; a frame
 * above {@link MAX_FRAME_BYTES} is refused before its body is buffered.
 */
import { LockstepError } from '../base/errors.js';

/** The largest frame body accepted, in bytes. */
export const MAX_FRAME_BYTES = 16 * 1024 * 1024;

/**
 * Encodes a JSON value as a frame: a u32 big-endian body length, then the
 * body, UTF-8 JSON.
 *
 * @throws RangeError if the body would exceed `maxBytes`, since the peer would refuse it
 * @throws TypeError if the value has no JSON form (undefined, a function, a bigint)
 */
export function encodeFrame(value: unknown, maxBytes = MAX_FRAME_BYTES): Buffer {
  const json = JSON.stringify(value) as string | undefined;
  if (json === undefined) throw new TypeError('Cannot frame a value that has no JSON form');
  const length = Buffer.byteLength(json);
  if (length > maxBytes) {
    throw new RangeError(`Frame of ${length} bytes exceeds the limit of ${maxBytes} bytes`);
  }
  const frame = Buffer.allocUnsafe(4 + length);
  frame.writeUInt32BE(length, 0);
  frame.write(json, 4, 'utf8');
  return frame;
}

/**
 * Splits a byte stream into frames and decodes each one's JSON. Keeps
 * incomplete data across pushes without copying it until the frame is
 * complete, then joins its pieces once.
 *
 * After an error the stream is out of step for good: every later push
 * throws the same error.
 */
export class FrameDecoder {
  private readonly maxBytes: number;
  private readonly utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  /** Received bytes not yet consumed; the first may be partly consumed (see `skip`). */
  private pieces: Uint8Array[] = [];
  private skip = 0;
  private held = 0;
  /** The body length of the frame being read, once its header is complete. */
  private bodyLength: number | undefined;
  private failed: LockstepError | undefined;

  /** @param maxBytes - the largest frame body accepted, in bytes */
  constructor(maxBytes = MAX_FRAME_BYTES) {
    this.maxBytes = maxBytes;
  }

  /** Bytes held of an incomplete frame (0 between frames). */
  get buffered(): number {
    return this.held + (this.bodyLength === undefined ? 0 : 4);
  }

  /**
   * Adds received bytes. The decoder may keep references to `data` until its
   * frame is complete: do not modify it afterwards.
   *
   * @returns every frame completed by these bytes, decoded, in order
   * @throws LockstepError `PEER_INVALID` for a declared length above the
   *   limit (refused before any of its body is buffered), a body that is not
   *   valid UTF-8, or not valid JSON
   */
  push(data: Uint8Array): unknown[] {
    if (this.failed !== undefined) throw this.failed;
    if (data.length > 0) {
      this.pieces.push(data);
      this.held += data.length;
    }
    const out: unknown[] = [];
    try {
      for (;;) {
        if (this.bodyLength === undefined) {
          if (this.held < 4) break;
          const header = this.take(4);
          const length = new DataView(header.buffer, header.byteOffset, 4).getUint32(0);
          if (length > this.maxBytes) {
            throw new LockstepError(
              'PEER_INVALID',
              `Peer frame: declared length ${length} bytes exceeds the limit of ${this.maxBytes} bytes`,
            );
          }
          this.bodyLength = length;
        }
        if (this.held < this.bodyLength) break;
        const body = this.take(this.bodyLength);
        this.bodyLength = undefined;
        out.push(this.decode(body));
      }
    } catch (err) {
      if (err instanceof LockstepError) {
        this.failed = err;
        this.pieces = [];
        this.held = 0;
        this.skip = 0;
        this.bodyLength = undefined;
      }
      throw err;
    }
    return out;
  }

  private decode(body: Uint8Array): unknown {
    let text: string;
    try {
      text = this.utf8.decode(body);
    } catch (err) {
      throw new LockstepError('PEER_INVALID', 'Peer frame: body is not valid UTF-8', {
        cause: err,
      });
    }
    try {
      return JSON.parse(text) as unknown;
    } catch (err) {
      throw new LockstepError(
        'PEER_INVALID',
        `Peer frame: body is not valid JSON (${(err as Error).message})`,
        { cause: err },
      );
    }
  }

  /** Removes and returns the next `n` bytes (the caller checked `held >= n`). */
  private take(n: number): Uint8Array {
    if (n === 0) return new Uint8Array(0);
    this.held -= n;
    const first = this.pieces[0] as Uint8Array;
    if (first.length - this.skip >= n) {
      const view = first.subarray(this.skip, this.skip + n);
      this.skip += n;
      if (this.skip === first.length) {
        this.pieces.shift();
        this.skip = 0;
      }
      return view;
    }
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const piece = this.pieces[0] as Uint8Array;
      const count = Math.min(piece.length - this.skip, n - filled);
      out.set(piece.subarray(this.skip, this.skip + count), filled);
      filled += count;
      this.skip += count;
      if (this.skip === piece.length) {
        this.pieces.shift();
        this.skip = 0;
      }
    }
    return out;
  }
}

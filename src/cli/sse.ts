/**
 * A small Server-Sent Events reader: enough of the format for `lockstep
 * watch` (fields `event`, `data`, `id`, `retry`; comments; any line ending).
 */

/** One dispatched event. */
export interface SseMessage {
  /** The `event:` field, or `message`. */
  readonly event: string;
  /** The `data:` lines joined with newlines. */
  readonly data: string;
}

/**
 * Parses an event stream fed in pieces of any size.
 *
 * @example
 * const p = new SseParser();
 * p.push('event: locked\ndata: {"a":1}\n\n'); // [{ event: 'locked', data: '{"a":1}' }]
 */
export class SseParser {
  private buf = '';
  private event = '';
  private data: string[] = [];
  /** The last `retry:` the server asked for, in milliseconds. */
  retryMs: number | undefined;

  /** Feeds text; returns the events it completed. */
  push(text: string): SseMessage[] {
    this.buf += text;
    const out: SseMessage[] = [];
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.buf);
      if (m === null) break;
      // A lone \r at the very end may be the first half of \r\n: wait for more.
      if (m[0] === '\r' && m.index === this.buf.length - 1) break;
      const line = this.buf.slice(0, m.index);
      this.buf = this.buf.slice(m.index + m[0].length);
      const msg = this.line(line);
      if (msg !== undefined) out.push(msg);
    }
    return out;
  }

  private line(line: string): SseMessage | undefined {
    if (line === '') {
      if (this.data.length === 0) {
        this.event = '';
        return undefined;
      }
      const msg = { event: this.event === '' ? 'message' : this.event, data: this.data.join('\n') };
      this.event = '';
      this.data = [];
      return msg;
    }
    if (line.startsWith(':')) return undefined;
    const i = line.indexOf(':');
    const field = i < 0 ? line : line.slice(0, i);
    let value = i < 0 ? '' : line.slice(i + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.event = value;
    else if (field === 'data') this.data.push(value);
    else if (field === 'retry' && /^\d+$/.test(value)) this.retryMs = Number(value);
    return undefined;
  }
}

/**
 * Reads an event stream until it ends; calls `onActivity` for every piece
 * received (heartbeats included) and `onMessage` for every event.
 */
export async function readSse(
  body: ReadableStream<Uint8Array>,
  onMessage: (msg: SseMessage) => void,
  onActivity: () => void = () => undefined,
): Promise<void> {
  const parser = new SseParser();
  const decoder = new TextDecoder();
  const reader = body.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      onActivity();
      for (const msg of parser.push(decoder.decode(value, { stream: true }))) onMessage(msg);
    }
  } finally {
    reader.releaseLock();
  }
}

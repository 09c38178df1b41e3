import { describe, expect, it } from 'vitest';
import { readSse, SseParser } from './sse.js';

describe('SseParser', () => {
  it('dispatches an event at a blank line, with its type and data', () => {
    const p = new SseParser();
    expect(p.push('event: locked\ndata: {"a":1}\n')).toEqual([]);
    expect(p.push('\n')).toEqual([{ event: 'locked', data: '{"a":1}' }]);
  });

  it('skips comments and heartbeats, joins data lines, defaults the type', () => {
    const p = new SseParser();
    const got = p.push(': connected\n\n: heartbeat\n\ndata: a\ndata: b\n\n');
    expect(got).toEqual([{ event: 'message', data: 'a\nb' }]);
  });

  it('takes any line ending and pieces split anywhere, even inside \\r\\n', () => {
    const text = 'retry: 2000\r\nevent: x\r\ndata: 1\r\n\r\nevent: y\rdata: 2\r\r\n';
    for (let cut = 0; cut <= text.length; cut++) {
      const p = new SseParser();
      const got = [...p.push(text.slice(0, cut)), ...p.push(text.slice(cut))];
      expect(got, `cut at ${cut}`).toEqual([
        { event: 'x', data: '1' },
        { event: 'y', data: '2' },
      ]);
      expect(p.retryMs).toBe(2000);
    }
  });

  it('keeps a value without the one space after the colon, and a field without a colon', () => {
    const p = new SseParser();
    expect(p.push('data:  two spaces\ndata\n\n')).toEqual([
      { event: 'message', data: ' two spaces\n' },
    ]);
  });
});

describe('readSse()', () => {
  it('reads a byte stream, multi-byte characters split across chunks', async () => {
    const bytes = new TextEncoder().encode('event: e\ndata: "ü€"\n\n');
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        for (const b of bytes) c.enqueue(new Uint8Array([b]));
        c.close();
      },
    });
    const got: unknown[] = [];
    let activity = 0;
    await readSse(
      stream,
      (m) => got.push(m),
      () => activity++,
    );
    expect(got).toEqual([{ event: 'e', data: '"ü€"' }]);
    expect(activity).toBe(bytes.length);
  });
});

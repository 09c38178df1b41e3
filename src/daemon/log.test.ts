// The logger's two terminal forms. That pino-pretty is loaded only for a
// terminal is checked on the built code in test/lazy-modules.test.ts.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from './log.js';

describe('createLogger', () => {
  afterEach(() => vi.restoreAllMocks());

  it('makes a pretty terminal logger', () => {
    const log = createLogger({ pretty: true, level: 'silent' });
    expect(() => log.info('not shown at level silent')).not.toThrow();
  });

  it('writes JSON lines to stdout when it is not a terminal', () => {
    const lines: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(chunk.toString());
      return true;
    });
    createLogger({ pretty: false }).info({ path: 'a/b' }, 'synced a/b');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0] as string)).toMatchObject({
      level: 30,
      path: 'a/b',
      msg: 'synced a/b',
    });
  });
});

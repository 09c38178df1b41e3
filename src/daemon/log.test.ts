// The logger's two terminal forms: pino-pretty is loaded only when asked for.
import { describe, expect, it } from 'vitest';
import { createLogger } from './log.js';

describe('createLogger', () => {
  it('makes a pretty terminal logger (pino-pretty loaded on demand)', () => {
    const log = createLogger({ pretty: true, level: 'silent' });
    expect(typeof log.info).toBe('function');
    expect(() => log.info('not shown at level silent')).not.toThrow();
  });

  it('makes a JSON terminal logger', () => {
    const log = createLogger({ pretty: false, level: 'silent' });
    expect(log.level).toBe('silent');
  });
});

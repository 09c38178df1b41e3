// What a device does not load at start: pino-pretty without a terminal (the
// built code, in a child process with its own module cache).
import { describe, expect, it } from 'vitest';
import { distUrl, runModule } from './helpers.js';

describe('modules loaded on demand', () => {
  it('loads pino-pretty only for a pretty (terminal) log', () => {
    const out = runModule(`
      import { createRequire } from 'node:module';
      const { createLogger } = await import(${JSON.stringify(distUrl('daemon/log.js'))});
      const loaded = () =>
        Object.keys(createRequire(import.meta.url).cache).some((k) => k.includes('/pino-pretty/'));
      createLogger({ pretty: false, level: 'silent' });
      const before = loaded();
      createLogger({ pretty: true, level: 'silent' });
      console.log(JSON.stringify({ before, after: loaded() }));
    `);
    expect(JSON.parse(out.trim())).toEqual({ before: false, after: true });
  });
});

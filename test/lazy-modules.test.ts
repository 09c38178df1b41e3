// What a device does not load at start: pino-pretty without a terminal (the
// built code, in a child process with its own module cache).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

const dist = (rel: string) => new URL(`../dist/${rel}`, import.meta.url).href;

describe('modules loaded on demand', () => {
  let tmp: string;
  beforeEach(() => {
    tmp = mkdtempSync(join(tmpdir(), 'lockstep-lazy-'));
  });
  afterEach(() => rmSync(tmp, { recursive: true, force: true }));

  it('loads pino-pretty only for a pretty (terminal) log', () => {
    const script = join(tmp, 'log.mjs');
    writeFileSync(
      script,
      `
      import { createRequire } from 'node:module';
      const { createLogger } = await import(${JSON.stringify(dist('daemon/log.js'))});
      const loaded = () =>
        Object.keys(createRequire(import.meta.url).cache).some((k) => k.includes('/pino-pretty/'));
      createLogger({ pretty: false, level: 'silent' });
      const before = loaded();
      createLogger({ pretty: true, level: 'silent' });
      console.log(JSON.stringify({ before, after: loaded() }));
      `,
    );
    const r = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout.trim())).toEqual({ before: false, after: true });
  });
});

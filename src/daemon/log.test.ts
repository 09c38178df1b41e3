// The logger's two terminal forms. That pino-pretty is loaded only for a
// terminal is checked on the built code in test/lazy-modules.test.ts.
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLogger, LOG_FILE } from './log.js';

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

  it('keeps its log readable by its user only: the directory 0700, the file 0600', () => {
    const tmp = mkdtempSync(join(tmpdir(), 'lockstep-log-'));
    try {
      const fresh = join(tmp, 'fresh');
      createLogger({ dir: fresh, stdout: false }).info('hello');
      expect(statSync(fresh).mode & 0o777).toBe(0o700);
      expect(statSync(join(fresh, LOG_FILE)).mode & 0o777).toBe(0o600);
      // Made by an older version, or under a loose umask: fixed.
      const old = join(tmp, 'old');
      mkdirSync(old, { mode: 0o755 });
      chmodSync(old, 0o755);
      writeFileSync(join(old, LOG_FILE), '{}\n', { mode: 0o644 });
      createLogger({ dir: old, stdout: false }).info('hello');
      expect(statSync(old).mode & 0o777).toBe(0o700);
      expect(statSync(join(old, LOG_FILE)).mode & 0o777).toBe(0o600);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});

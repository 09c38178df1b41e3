// The descriptor cache on a real disk: reads, a file replaced by a rename,
// a file that is gone.
import { mkdtempSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FdCache } from './fd-cache.js';
import { confinedFs } from '../confined/fs.js';

describe('FdCache', () => {
  let dir: string;
  let cache: FdCache;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'lockstep-fds-'));
    cache = new FdCache(confinedFs(dir), 2, 60_000);
  });
  afterEach(() => {
    cache.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads ranges, and nothing past the end', () => {
    const f = join(dir, 'a');
    writeFileSync(f, 'hello world');
    expect(cache.read(f, 6, 5)?.toString()).toBe('world');
    expect(cache.read(f, 0, 5)?.toString()).toBe('hello');
    expect(cache.read(f, 8, 10)).toBeUndefined();
  });

  it('sees the new file after the path was replaced by a rename', async () => {
    const f = join(dir, 'a');
    writeFileSync(f, 'old content');
    expect(cache.read(f, 0, 3)?.toString()).toBe('old');
    writeFileSync(join(dir, 'tmp'), 'new content');
    renameSync(join(dir, 'tmp'), f);
    await new Promise((r) => setTimeout(r, 80)); // past the re-check interval
    expect(cache.read(f, 0, 3)?.toString()).toBe('new');
  });

  it('answers undefined for a file that is gone, and keeps at most `max` open', async () => {
    const files = ['x', 'y', 'z'].map((n) => join(dir, n));
    for (const f of files) writeFileSync(f, 'data');
    for (const f of files) expect(cache.read(f, 0, 4)?.toString()).toBe('data');
    unlinkSync(files[2] as string);
    await new Promise((r) => setTimeout(r, 80));
    expect(cache.read(files[2] as string, 0, 4)).toBeUndefined();
    expect(cache.read(join(dir, 'never'), 0, 1)).toBeUndefined();
  });
});

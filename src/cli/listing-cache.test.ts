import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cacheFile, lastListing, resolveTarget, saveListing } from './listing-cache.js';

describe('the last printed listing', () => {
  let tmp: string;
  let file: string;
  const A = 'http://127.0.0.1:7701';
  const B = 'http://127.0.0.1:7711';

  beforeEach(() => {
    tmp = mkdtempSync(join(tmpdir(), 'lockstep-cache-'));
    file = join(tmp, 'lockstep', 'last-listing.json');
  });
  afterEach(() => rmSync(tmp, { recursive: true, force: true }));

  it('lives under $XDG_CACHE_HOME, else ~/.cache', () => {
    expect(cacheFile({ XDG_CACHE_HOME: '/x' })).toBe('/x/lockstep/last-listing.json');
    expect(cacheFile({})).toMatch(/\.cache\/lockstep\/last-listing\.json$/);
  });

  it('resolves a number against the rows printed, per device, never anything fresher', () => {
    saveListing(A, { dir: '', printed: '2026-11-24T18:00:00Z', paths: ['a.jpg', 'b.txt'] }, file);
    saveListing(B, { dir: 'docs', printed: '2026-11-24T18:00:01Z', paths: ['docs/x'] }, file);
    expect(resolveTarget('2', A, file)).toEqual({ path: 'b.txt', index: 2 });
    expect(resolveTarget('#1', A, file)).toEqual({ path: 'a.jpg', index: 1 });
    expect(resolveTarget('1', B, file)).toEqual({ path: 'docs/x', index: 1 });
    // A later listing replaces the earlier one for that device only.
    saveListing(A, { dir: '', printed: '2026-11-24T18:00:02Z', paths: ['z'] }, file);
    expect(resolveTarget('1', A, file).path).toBe('z');
    expect(lastListing(B, file)?.paths).toEqual(['docs/x']);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('takes anything but a number as a path (./3 is a file called 3)', () => {
    expect(resolveTarget('docs/plan.md', A, file)).toEqual({ path: 'docs/plan.md' });
    expect(resolveTarget('./3', A, file)).toEqual({ path: '3' });
    expect(resolveTarget('/c.pdf', A, file)).toEqual({ path: 'c.pdf' });
  });

  it('fails clearly without a listing, or for a number outside it', () => {
    expect(() => resolveTarget('3', A, file)).toThrow(
      /no listing to take #3 from: run `lockstep ls`/,
    );
    saveListing(A, { dir: '', printed: '2026-11-24T18:00:00Z', paths: ['a', 'b'] }, file);
    expect(() => resolveTarget('3', A, file)).toThrow(
      /#3 is not in the last listing .* rows 1 to 2/,
    );
    expect(() => resolveTarget('0', A, file)).toThrow(/#0 is not in the last listing/);
    saveListing(A, { dir: 'docs', printed: '2026-11-24T18:00:00Z', paths: [] }, file);
    expect(() => resolveTarget('1', A, file)).toThrow(/of docs\/, .* has no rows/);
    try {
      resolveTarget('9', A, file);
    } catch (err) {
      expect((err as { code: string }).code).toBe('USAGE');
    }
  });

  it('starts afresh from a damaged cache file', () => {
    saveListing(A, { dir: '', printed: '2026-11-24T18:00:00Z', paths: ['a'] }, file);
    rmSync(file);
    expect(lastListing(A, file)).toBeUndefined();
    saveListing(A, { dir: '', printed: '2026-11-24T18:00:00Z', paths: ['a'] }, file);
    expect(JSON.parse(readFileSync(file, 'utf8')).version).toBe(1);
  });
});

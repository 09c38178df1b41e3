import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TEMP_PREFIX } from '../core/path.js';
import { ensureParents, inFolder, tempPath } from './puller.js';

describe('inFolder and tempPath', () => {
  it.each([
    ['/srv/share', 'a.txt', '/srv/share/a.txt'],
    ['/srv/share', 'd/e/f.bin', '/srv/share/d/e/f.bin'],
    ['/srv/share/', 'd/f', '/srv/share/d/f'],
    ['/', 'top', '/top'],
  ])('inFolder(%s, %s) is %s, as join would make it', (root, rel, abs) => {
    expect(inFolder(root, rel)).toBe(abs);
    expect(inFolder(root, rel)).toBe(join(root, rel));
  });

  it('puts the temp file beside its target, hashing a name too long to prefix', () => {
    expect(tempPath('/srv/share/d/f.txt')).toBe(`/srv/share/d/${TEMP_PREFIX}f.txt`);
    const long = 'n'.repeat(250);
    const t = tempPath(`/srv/share/d/${long}`);
    expect(t.startsWith(`/srv/share/d/${TEMP_PREFIX}`)).toBe(true);
    expect(t.length - `/srv/share/d/${TEMP_PREFIX}`.length).toBe(40);
    expect(tempPath(`/srv/share/d/${long}`)).toBe(t);
    expect(tempPath(`/srv/share/d/${long}x`)).not.toBe(t);
  });
});

describe('ensureParents', () => {
  const root = mkdtempSync(join(tmpdir(), 'lockstep-parents-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('makes missing parents, or reports them missing when it must not create', () => {
    expect(ensureParents(root, 'a/b/c/file', false)).toBe(false);
    expect(existsSync(join(root, 'a'))).toBe(false);
    expect(ensureParents(root, 'a/b/c/file')).toBe(true);
    expect(existsSync(join(root, 'a/b/c'))).toBe(true);
    expect(ensureParents(root, 'a/b/c/file', false)).toBe(true);
    expect(ensureParents(root, 'top-level-file', false)).toBe(true);
  });

  it('refuses a parent that is a symlink or a file, naming it', () => {
    mkdirSync(join(root, 'x'));
    symlinkSync(tmpdir(), join(root, 'x', 'link'));
    writeFileSync(join(root, 'x', 'plain'), '');
    expect(() => ensureParents(root, 'x/link/f')).toThrow(/x\/link is a symlink here/);
    expect(() => ensureParents(root, 'x/plain/g/f')).toThrow(/x\/plain is not a directory here/);
  });
});

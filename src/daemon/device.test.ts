// The watcher's echo check: a path is left out only while it still holds
// exactly what a pull wrote there.
import {
  chmodSync,
  lstatSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isWhatWasWritten, type Written } from './device.js';

describe('isWhatWasWritten', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-echo-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'f');
  writeFileSync(file, 'pulled');
  chmodSync(file, 0o640);
  const st = lstatSync(file, { bigint: true });
  const written: Written = {
    inode: Number(st.ino),
    size: Number(st.size),
    mtimeNs: st.mtimeNs,
    mode: 0o640,
  };
  const look = () => lstatSync(file, { bigint: true });

  it('is true for the file as written', () => {
    expect(isWhatWasWritten(written, look())).toBe(true);
  });

  it.each<[string, Partial<Written>]>([
    ['another inode', { inode: written.inode + 1 }],
    ['another size', { size: written.size + 1 }],
    ['another mtime', { mtimeNs: written.mtimeNs + 1n }],
    ['other permissions', { mode: 0o644 }],
  ])('is false for %s', (_what, change) => {
    expect(isWhatWasWritten({ ...written, ...change }, look())).toBe(false);
  });

  it('is false for nothing there, and for a symlink or a directory there', () => {
    expect(isWhatWasWritten(written, undefined)).toBe(false);
    symlinkSync(file, join(dir, 'link'));
    expect(isWhatWasWritten(written, lstatSync(join(dir, 'link'), { bigint: true }))).toBe(false);
    expect(isWhatWasWritten(written, lstatSync(dir, { bigint: true }))).toBe(false);
  });

  it('is false once the file was touched or chmodded after the pull', () => {
    chmodSync(file, 0o600);
    expect(isWhatWasWritten(written, look())).toBe(false);
    chmodSync(file, 0o640);
    expect(isWhatWasWritten(written, look())).toBe(true);
    utimesSync(file, new Date(), new Date(Date.now() + 5000));
    expect(isWhatWasWritten(written, look())).toBe(false);
  });
});

import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { redirectHtml, signinPageDir, writeSigninPage } from './signin-page.js';

describe('the sign-in page of open --browser', () => {
  let tmp: string;
  beforeEach(() => {
    tmp = mkdtempSync(join(tmpdir(), 'lockstep-signin-page-'));
  });
  afterEach(() => rmSync(tmp, { recursive: true, force: true }));

  it('lives in the runtime dir, else the cache dir', () => {
    expect(signinPageDir({ XDG_RUNTIME_DIR: tmp })).toBe(join(tmp, 'lockstep'));
    expect(signinPageDir({ XDG_RUNTIME_DIR: join(tmp, 'gone'), XDG_CACHE_HOME: tmp })).toBe(
      join(tmp, 'lockstep', 'signin'),
    );
  });

  it('is 0600 in a 0700 directory and leads to the address, escaped', () => {
    const dir = join(tmp, 'lockstep');
    mkdirSync(dir, { mode: 0o755 });
    const url = 'http://127.0.0.1:7701/#signin=abc"<x>&y';
    const file = writeSigninPage(url, { XDG_RUNTIME_DIR: tmp });
    expect(file.startsWith(`${dir}/`)).toBe(true);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const html = readFileSync(file, 'utf8');
    expect(html).toBe(redirectHtml(url));
    expect(html).toContain(
      'content="0; url=http://127.0.0.1:7701/#signin=abc&#34;&#60;x&#62;&#38;y"',
    );
    expect(html).not.toContain('<x>');
  });

  it('removes earlier pages once they are a minute old, and nothing else', () => {
    const env = { XDG_RUNTIME_DIR: tmp };
    const first = writeSigninPage('http://127.0.0.1:1/#signin=one', env);
    const old = new Date(Date.now() - 5 * 60_000);
    utimesSync(first, old, old);
    const mine = join(tmp, 'lockstep', 'notes.txt');
    writeFileSync(mine, 'x');
    utimesSync(mine, old, old);
    const recent = writeSigninPage('http://127.0.0.1:1/#signin=two', env);
    const third = writeSigninPage('http://127.0.0.1:1/#signin=three', env);
    expect(readdirSync(join(tmp, 'lockstep')).sort()).toEqual(
      ['notes.txt', recent.split('/').pop(), third.split('/').pop()].sort(),
    );
  });

  it('refuses a directory that is a link', () => {
    mkdirSync(join(tmp, 'elsewhere'));
    symlinkSync(join(tmp, 'elsewhere'), join(tmp, 'lockstep'));
    expect(() => writeSigninPage('http://x/#signin=c', { XDG_RUNTIME_DIR: tmp })).toThrow(
      /Cannot use .*lockstep for the sign-in page: it is not a directory; open the address yourself/,
    );
    expect(readdirSync(join(tmp, 'elsewhere'))).toEqual([]);
  });
});

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initHome } from '../config/home.js';
import { ApiClient, errorOf, parseApiUrl, resolveConnection } from './connect.js';
import { exitCodeOf } from './output.js';

describe('resolveConnection()', () => {
  let tmp: string;
  let home: string;
  let other: string;
  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'lockstep-connect-'));
    home = join(tmp, 'home');
    other = join(tmp, 'other');
    await initHome({ home, folder: join(tmp, 'f'), name: 'A', apiListen: '0.0.0.0:7801' });
    await initHome({ home: other, folder: join(tmp, 'g'), name: 'B', apiListen: '[::1]:7802' });
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it("uses --home's API address (a wildcard means this machine) and admin token", () => {
    const c = resolveConnection({ home }, {});
    expect(c.url).toBe('http://127.0.0.1:7801');
    expect(c.token).toMatch(/^[A-Za-z0-9_-]{40,}$/);
    expect(c.home).toBe(home);
    expect(resolveConnection({ home: other }, {}).url).toBe('http://[::1]:7802');
  });

  it('lets --token replace the home token, and --api win over everything', () => {
    expect(resolveConnection({ home, token: 'alice' }, {}).token).toBe('alice');
    const env = { LOCKSTEP_API: 'http://10.0.0.9:7701', LOCKSTEP_TOKEN: 'envtok' };
    expect(resolveConnection({ api: '127.0.0.1:9', token: 't' }, env)).toEqual({
      url: 'http://127.0.0.1:9',
      token: 't',
    });
    // --home beats $LOCKSTEP_API; $LOCKSTEP_TOKEN still applies.
    expect(resolveConnection({ home }, env)).toMatchObject({
      url: 'http://127.0.0.1:7801',
      token: 'envtok',
    });
    expect(resolveConnection({}, env)).toEqual({ url: 'http://10.0.0.9:7701', token: 'envtok' });
    expect(resolveConnection({}, { LOCKSTEP_HOME: home }).url).toBe('http://127.0.0.1:7801');
  });

  it('reads the token from --token-file or $LOCKSTEP_TOKEN_FILE (its first line, trimmed)', () => {
    const file = join(tmp, 'alice.token');
    writeFileSync(file, '  alice-from-file \nsecond line\n', { mode: 0o600 });
    const api = 'http://127.0.0.1:9';
    expect(resolveConnection({ api, tokenFile: file }, {})).toEqual({
      url: api,
      token: 'alice-from-file',
    });
    expect(resolveConnection({}, { LOCKSTEP_API: api, LOCKSTEP_TOKEN_FILE: file })).toEqual({
      url: api,
      token: 'alice-from-file',
    });
    // With --home, a token file replaces the administrator's token.
    expect(resolveConnection({ home, tokenFile: file }, {}).token).toBe('alice-from-file');
    expect(resolveConnection({ home }, { LOCKSTEP_TOKEN_FILE: file }).token).toBe(
      'alice-from-file',
    );
    // The flags win over the environment.
    const env = { LOCKSTEP_TOKEN_FILE: file };
    expect(resolveConnection({ api, token: 'flag' }, env).token).toBe('flag');
    expect(resolveConnection({ api, tokenFile: file }, { LOCKSTEP_TOKEN: 'env' }).token).toBe(
      'alice-from-file',
    );
  });

  it('refuses two token sources of one kind, and a missing or empty token file', () => {
    const empty = join(tmp, 'empty.token');
    writeFileSync(empty, '\n');
    const file = join(tmp, 'ok.token');
    writeFileSync(file, 'ok\n');
    for (const [flags, env, want] of [
      [{ home, token: 't', tokenFile: file }, {}, /Give --token or --token-file, not both/],
      [{ home }, { LOCKSTEP_TOKEN: 't', LOCKSTEP_TOKEN_FILE: file }, /Both \$LOCKSTEP_TOKEN and/],
      [
        { home, tokenFile: join(tmp, 'nope') },
        {},
        /Cannot read the token file .*nope \(--token-file\): .*ENOENT/,
      ],
      [
        { home },
        { LOCKSTEP_TOKEN_FILE: empty },
        /token file .*empty\.token \(\$LOCKSTEP_TOKEN_FILE\) is empty/,
      ],
    ] as const) {
      let err: unknown;
      try {
        resolveConnection(flags, env);
      } catch (e) {
        err = e;
      }
      expect(String(err)).toMatch(want);
      expect(exitCodeOf(err)).toBe(2);
    }
  });

  it('refuses --api without a token, or a bad one, as usage errors', () => {
    for (const [flags, want] of [
      [{ api: 'http://127.0.0.1:7701' }, /No token for http:\/\/127\.0\.0\.1:7701/],
      [{ api: 'ftp://x', token: 't' }, /use http:\/\/ or https:\/\//],
      [{ api: 'http://a b', token: 't' }, /expected a URL/],
      [{ api: 'http://x:1/?q=1', token: 't' }, /only the scheme, host and port/],
      [{ home, token: '' }, /--token is empty/],
    ] as const) {
      let err: unknown;
      try {
        resolveConnection(flags, {});
      } catch (e) {
        err = e;
      }
      expect(String(err)).toMatch(want);
      expect(exitCodeOf(err)).toBe(2);
    }
  });

  it('parses --api with or without a scheme', () => {
    expect(parseApiUrl('127.0.0.1:7701')).toBe('http://127.0.0.1:7701');
    expect(parseApiUrl('https://dev.example:443/')).toBe('https://dev.example');
    expect(parseApiUrl('http://[::1]:7701')).toBe('http://[::1]:7701');
  });
});

describe('errors from the device', () => {
  const url = 'http://127.0.0.1:7701';
  const body = (code: string, message: string) => JSON.stringify({ error: { code, message } });

  it.each([
    [423, 'LOCKED', 1],
    [404, 'NOT_FOUND', 1],
    [403, 'NOT_LOCK_OWNER', 1],
    [409, 'NOT_A_FILE', 1],
    [503, 'AUTHORITY_UNREACHABLE', 1],
    [500, 'INTERNAL', 1],
    [400, 'BAD_REQUEST', 2],
    [401, 'UNAUTHORIZED', 1],
  ])('HTTP %i %s exits %i and keeps the message', (status, code, exit) => {
    const err = errorOf(status, body(code, 'the message'), url);
    expect(err.message).toContain('the message');
    expect(err.remoteCode).toBe(code);
    expect(exitCodeOf(err)).toBe(exit);
  });

  it('explains a 401, and a reply that is not ours', () => {
    expect(errorOf(401, body('UNAUTHORIZED', 'bad token'), url).message).toMatch(
      /refused the token .*--token/,
    );
    expect(errorOf(502, '<html>', url).message).toBe(`${url} answered HTTP 502`);
  });

  it('a device that does not answer exits 3 and says how to start it', async () => {
    // A port nobody listens on: one that was free a moment ago.
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as AddressInfo).port;
    await new Promise((r) => srv.close(r));
    const client = new ApiClient({ url: `http://127.0.0.1:${port}`, token: 't', home: '/srv/h' });
    let err: unknown;
    try {
      await client.call('GET', '/status');
    } catch (e) {
      err = e;
    }
    expect(exitCodeOf(err)).toBe(3);
    expect(String(err)).toMatch(
      /Cannot reach the device at http:\/\/127\.0\.0\.1:\d+ \(connection refused\)/,
    );
    expect(String(err)).toMatch(/lockstep serve --home \/srv\/h/);
  });
});

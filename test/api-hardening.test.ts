// End to end, on a real `lockstep serve` over 127.0.0.1: the client API's
// smaller holes closed. Event streams are capped and a reader that takes
// nothing is cut off while the device goes on; a foreign Host gets 421;
// tokens come from a file or the environment; `open --browser` hands the
// opener a private page, never the code; every file of the home is 0600 and
// every directory 0700.
import { chmodSync, lstatSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCluster, type TestDevice } from './cluster.js';
import { lockstepAsync, waitUntil } from './helpers.js';

/** One GET with a chosen Host header; resolves with the status and body. */
function getWithHost(
  port: number,
  path: string,
  host: string,
  token?: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        headers: { host, ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
      },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('no answer in 10 s')));
    req.end();
  });
}

/** Every entry below `dir` (links not followed) with its mode. */
function modesBelow(dir: string): { path: string; dir: boolean; mode: number }[] {
  const st = lstatSync(dir);
  const here = { path: dir, dir: st.isDirectory(), mode: st.mode & 0o7777 };
  if (!st.isDirectory()) return st.isFile() ? [here] : [];
  return [here, ...readdirSync(dir).flatMap((n) => modesBelow(join(dir, n)))];
}

describe('client API hardening, on a real device', () => {
  let cluster: TestCluster;
  let a: TestDevice;
  let url: string;
  let port: number;
  let admin: string;
  let alice: string;
  let aliceFile: string;
  const sockets: Socket[] = [];
  const aborts: AbortController[] = [];

  beforeAll(async () => {
    cluster = await TestCluster.create(['A']);
    a = cluster.get('A');
    port = a.apiPort;
    url = `http://127.0.0.1:${port}`;
    admin = readFileSync(join(a.home, 'token'), 'utf8').trim();
    const added = await lockstepAsync(['user', 'add', '--home', a.home, 'alice', '--json']);
    expect(added.code, added.stderr).toBe(0);
    alice = (JSON.parse(added.stdout) as { token: string }).token;
    aliceFile = join(cluster.tmp, 'alice.token');
    writeFileSync(aliceFile, `${alice}\n`, { mode: 0o600 });
    // A name the device is reached by, configured.
    const configFile = join(a.home, 'config.json');
    const config = JSON.parse(readFileSync(configFile, 'utf8')) as Record<string, unknown>;
    writeFileSync(configFile, JSON.stringify({ ...config, apiHosts: ['files.example.com'] }));
    // A home as an older version, or a loose umask, left it.
    chmodSync(a.home, 0o755);
    chmodSync(join(a.home, 'cert.pem'), 0o644);
    chmodSync(configFile, 0o644);
    writeFileSync(join(a.folder, 'hello.txt'), 'hello\n');
    await cluster.startAll();
  }, 60_000);
  afterAll(async () => {
    for (const c of aborts) c.abort();
    for (const s of sockets) s.destroy();
    await cluster?.close();
  });

  it('refuses a foreign Host with 421 on the page and the API; answers for the configured name', async () => {
    for (const [path, token] of [
      ['/', undefined],
      ['/api/v1/status', admin],
    ] as const) {
      const foreign = await getWithHost(port, path, `evil.example:${port}`, token);
      expect(foreign.status, path).toBe(421);
      expect(JSON.parse(foreign.body), path).toEqual({
        error: {
          code: 'MISDIRECTED',
          message: expect.stringMatching(/add "evil.example" to "apiHosts"/),
        },
      });
      const named = await getWithHost(port, path, `files.example.com:${port}`, token);
      expect(named.status, path).toBe(200);
      const local = await getWithHost(port, path, `localhost:${port}`, token);
      expect(local.status, path).toBe(200);
    }
    // The CLI reaches it as 127.0.0.1, as before.
    const status = await lockstepAsync(['status', '--home', a.home, '--json']);
    expect(status.code, status.stderr).toBe(0);
  });

  it('takes the token from --token-file, $LOCKSTEP_TOKEN_FILE or $LOCKSTEP_TOKEN', async () => {
    const clean = { LOCKSTEP_API: '', LOCKSTEP_TOKEN: '', LOCKSTEP_TOKEN_FILE: '' };
    for (const [args, env] of [
      [['--api', url, '--token-file', aliceFile], clean],
      [['--api', url], { ...clean, LOCKSTEP_TOKEN_FILE: aliceFile }],
      [[], { ...clean, LOCKSTEP_API: url, LOCKSTEP_TOKEN_FILE: aliceFile }],
      [['--api', url], { ...clean, LOCKSTEP_TOKEN: alice }],
    ] as const) {
      const r = await lockstepAsync(['whoami', '--json', ...args], env);
      expect(r.code, `${args.join(' ')} ${JSON.stringify(env)}: ${r.stderr}`).toBe(0);
      expect(JSON.parse(r.stdout)).toEqual({ name: 'alice', admin: false });
    }
    const both = await lockstepAsync(
      ['whoami', '--api', url, '--token', alice, '--token-file', aliceFile],
      clean,
    );
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/Give --token or --token-file, not both/);
  });

  it('open --browser gives the opener a private page that leads to the address, never the code', async () => {
    const run = join(cluster.tmp, 'run');
    mkdirSync(run, { mode: 0o700 });
    const record = join(cluster.tmp, 'opener-record');
    const opener = join(cluster.tmp, 'opener.sh');
    // Records its arguments, the page it was given and the page's mode.
    writeFileSync(
      opener,
      `#!/bin/sh\nprintf '%s\\n' "$0" "$@" > "${record}.args"\n` +
        `cat "$1" > "${record}.page"\nstat -c %a "$1" > "${record}.mode"\n` +
        `stat -c %a "$(dirname "$1")" > "${record}.done"\n`,
      { mode: 0o755 },
    );
    const r = await lockstepAsync(['open', '--home', a.home, '--browser'], {
      LOCKSTEP_OPENER: opener,
      XDG_RUNTIME_DIR: run,
    });
    expect(r.code, r.stderr).toBe(0);
    const address = r.stdout.trim().split('\n').pop() ?? '';
    const code = /#signin=(.+)$/.exec(address)?.[1];
    expect(code).toBeDefined();
    await waitUntil('the opener to run', () => {
      try {
        return readFileSync(`${record}.done`, 'utf8').trim() !== '';
      } catch {
        return false;
      }
    });
    const argv = readFileSync(`${record}.args`, 'utf8').trim().split('\n');
    expect(argv).toHaveLength(2);
    expect(argv.join(' ')).not.toContain(code);
    expect(argv[1]).toMatch(new RegExp(`^${run}/lockstep/signin-[0-9a-f]{16}\\.html$`));
    expect(readFileSync(`${record}.mode`, 'utf8').trim()).toBe('600');
    expect(readFileSync(`${record}.done`, 'utf8').trim()).toBe('700');
    expect(readFileSync(`${record}.page`, 'utf8')).toContain(
      `<meta http-equiv="refresh" content="0; url=${address.replaceAll('&', '&#38;')}">`,
    );
    // The page's code works (once).
    const signin = await fetch(`${url}/api/v1/signin`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ code }),
    });
    expect(signin.status).toBe(200);
  });

  it('caps event streams per user: the 17th of alice is refused, `watch` says why', async () => {
    const open = async (token: string) => {
      const ctl = new AbortController();
      aborts.push(ctl);
      const res = await fetch(`${url}/api/v1/events`, {
        headers: { authorization: `Bearer ${token}` },
        signal: ctl.signal,
      });
      return { res, ctl };
    };
    const mine = [];
    for (let i = 0; i < 16; i++) mine.push(await open(alice));
    expect(mine.map((s) => s.res.status)).toEqual(Array(16).fill(200));
    const over = await open(alice);
    expect(over.res.status).toBe(429);
    expect(await over.res.json()).toEqual({
      error: {
        code: 'TOO_MANY',
        message: expect.stringMatching(/alice has 16 event streams open/),
      },
    });
    const watch = await lockstepAsync(['watch', '--api', url, '--token-file', aliceFile], {
      LOCKSTEP_API: '',
      LOCKSTEP_TOKEN: '',
    });
    expect(watch.code).toBe(1);
    expect(watch.stderr).toMatch(/alice has 16 event streams open.*close some/);
    // The administrator is another user: not refused.
    const adminStream = await open(admin);
    expect(adminStream.res.status).toBe(200);
    adminStream.ctl.abort();
    for (const s of mine) s.ctl.abort();
    // Closed streams give their slots back.
    await waitUntil('alice to get a stream again', async () => {
      const again = await open(alice);
      again.ctl.abort();
      return again.res.status === 200;
    });
  });

  it('closes the stream of a reader that takes nothing; the device and other readers go on', async () => {
    // A reader that keeps up.
    const ctl = new AbortController();
    aborts.push(ctl);
    const good = await fetch(`${url}/api/v1/events`, {
      headers: { authorization: `Bearer ${admin}` },
      signal: ctl.signal,
    });
    let goodText = '';
    void (async () => {
      const decoder = new TextDecoder();
      try {
        for await (const piece of good.body as ReadableStream<Uint8Array>) {
          goodText += decoder.decode(piece, { stream: true });
        }
      } catch {
        // aborted at the end
      }
    })();
    // A raw client that sends its request and then never reads.
    const slow = connect(port, '127.0.0.1');
    sockets.push(slow);
    let slowText = '';
    let slowEnded = false;
    let reading = false;
    slow.on('data', (d: Buffer) => {
      slowText += d.toString();
      if (!reading && slowText.includes(': connected')) slow.pause();
    });
    // The end of the stream: a FIN after the data sent before the cut, or a reset.
    slow.on('close', () => (slowEnded = true));
    slow.on('error', () => undefined);
    slow.write(
      `GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${alice}\r\n\r\n`,
    );
    await waitUntil('the slow stream to open', () => slowText.includes(': connected'));
    // Files with long paths (~2 KB per event): batches of 500 until the
    // device cuts the slow reader off, at most 8,000 files (~16 MB of events;
    // the socket buffers took ~4 MB before the 1 MiB of the device's own).
    const deep = join(a.folder, ...Array.from({ length: 8 }, (_, i) => `${i}`.repeat(200)));
    mkdirSync(deep, { recursive: true });
    const cut = () => a.output().includes('closed an event stream of alice');
    let files = 0;
    while (!cut() && files < 8000) {
      for (let i = 0; i < 500; i++, files++) {
        writeFileSync(join(deep, `${'f'.repeat(200)}-${files}`), `${files}`);
      }
      const last = `-${files - 1}"`;
      await waitUntil(
        `the good reader to see file ${files - 1}`,
        () => goodText.includes(last),
        30_000,
      );
    }
    expect(cut(), `not cut off after ${files} files`).toBe(true);
    // The device still answers, and the good reader saw every file.
    const status = await lockstepAsync(['status', '--home', a.home, '--json']);
    expect(status.code, status.stderr).toBe(0);
    expect(goodText.split('event: added').length - 1).toBeGreaterThanOrEqual(files);
    // The slow reader, reading at last, gets what was sent before the cut, then the end.
    reading = true;
    slow.resume();
    await waitUntil(`the slow stream to end`, () => slowEnded, 20_000);
    expect(slowText.split('event: added').length - 1).toBeLessThan(files);
    ctl.abort();
  }, 120_000);

  it('keeps every file of the home 0600 and every directory 0700, logs and index included', async () => {
    const entries = modesBelow(a.home);
    const names = entries.map((e) => e.path.slice(a.home.length + 1));
    for (const want of [
      'config.json',
      'cert.pem',
      'key.pem',
      'token',
      'users.json',
      'index.db',
      'index.db-wal',
      'index.db-shm',
      'logs',
      'logs/lockstep.log',
    ]) {
      expect(names).toContain(want);
    }
    expect(readFileSync(join(a.home, 'logs', 'lockstep.log'), 'utf8')).toMatch(/serving/);
    for (const e of entries) expect(e.mode, e.path).toBe(e.dir ? 0o700 : 0o600);
  });
});

// The client API's limits, over real sockets on 127.0.0.1 and an in-memory
// backend: the Host names it answers for (421 for any other, DNS
// rebinding), the caps on event streams, and a slow reader's stream closed
// rather than buffered without bound.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { staticUserStore } from '../config/users.js';
import { DEV_A, FakeBackend, SAMPLE_FILES } from '../testing/fake-backend.js';
import type { ClientEvent } from './backend.js';
import { allowedHosts, canonicalHost, hostProblem } from './hosts.js';
import { createApiServer, type ApiServer } from './server.js';

const ADMIN = 'admin-token';
const ALICE = 'alice-token';
const users = staticUserStore({
  [ADMIN]: { name: 'admin', admin: true },
  [ALICE]: { name: 'alice', admin: false },
});
const auth = (token: string) => ({ authorization: `Bearer ${token}` });
const silent = pino({ level: 'silent' });

describe('Host names', () => {
  it('canonicalizes names, addresses and ports', () => {
    expect(canonicalHost('LocalHost:7701')).toBe('localhost');
    expect(canonicalHost('files.example.com.')).toBe('files.example.com');
    expect(canonicalHost('[0:0:0:0:0:0:0:1]:80')).toBe('[::1]');
    expect(canonicalHost('127.0.0.1')).toBe('127.0.0.1');
    for (const bad of ['', 'a b', 'evil@127.0.0.1', '::1', 'x/y', '127.0.0.1:80:80', '[zz]']) {
      expect(canonicalHost(bad), bad).toBeUndefined();
    }
  });

  it('allows the loopback names, a listen address and configured names', () => {
    expect(allowedHosts('0.0.0.0').sort()).toEqual(['127.0.0.1', '[::1]', 'localhost']);
    expect(allowedHosts('::')).not.toContain('[::]');
    expect(allowedHosts('10.1.2.3', ['Files.Example.com', '::2', '[fe80::1]'])).toEqual(
      expect.arrayContaining(['10.1.2.3', 'files.example.com', '[::2]', '[fe80::1]']),
    );
    const allowed = new Set(allowedHosts('127.0.0.1', ['files.example.com']));
    for (const ok of ['localhost:1', '127.0.0.1:7701', '[::1]:7701', 'FILES.example.com.:443']) {
      expect(hostProblem(ok, allowed), ok).toBeUndefined();
    }
    for (const no of ['evil.example', '127.0.0.1.evil.example', 'localhost.evil', '10.0.0.1']) {
      expect(hostProblem(no, allowed), no).toMatch(/does not answer for the host .*"apiHosts"/);
    }
    expect(hostProblem(undefined, allowed)).toMatch(/no Host header/);
  });
});

describe('client API server: Host check', () => {
  let backend: FakeBackend;
  let api: ApiServer;
  let root: string;

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'lockstep-web-'));
    mkdirSync(join(root, 'assets'));
    writeFileSync(join(root, 'index.html'), '<!doctype html><title>Lockstep</title>');
    backend = new FakeBackend(SAMPLE_FILES);
    api = createApiServer({
      backend,
      users,
      log: silent,
      webRoot: root,
      hosts: allowedHosts('127.0.0.1', ['files.example.com']),
    });
  });
  afterEach(async () => {
    await api.close();
    rmSync(root, { recursive: true, force: true });
  });

  const get = (url: string, host: string, token?: string) =>
    api.app.inject({ method: 'GET', url, headers: { host, ...(token ? auth(token) : {}) } });

  it('refuses a foreign Host with 421 on the page, the API and unknown paths, before the token', async () => {
    for (const [url, token] of [
      ['/', undefined],
      ['/api/v1/whoami', ADMIN],
      ['/api/v1/files', undefined],
      ['/nowhere', ADMIN],
    ] as const) {
      const r = await get(url, 'evil.example:7701', token);
      expect(r.statusCode, url).toBe(421);
      expect(r.json(), url).toEqual({
        error: {
          code: 'MISDIRECTED',
          message: expect.stringMatching(
            /does not answer for the host "evil.example:7701".*add "evil.example" to "apiHosts"/,
          ),
        },
      });
    }
    expect(backend.calls).toEqual([]);
  });

  it('answers for the loopback names and the configured name', async () => {
    for (const host of ['127.0.0.1:7701', 'localhost', '[::1]:1', 'files.example.com:8443']) {
      expect((await get('/', host)).statusCode, host).toBe(200);
      expect((await get('/api/v1/whoami', host, ADMIN)).json(), host).toEqual({
        name: 'admin',
        admin: true,
      });
    }
  });

  it('answers over a real socket for 127.0.0.1, as every client reaches it', async () => {
    const port = await api.listen('127.0.0.1', 0);
    const r = await fetch(`http://127.0.0.1:${port}/api/v1/whoami`, { headers: auth(ALICE) });
    expect(r.status).toBe(200);
  });
});

/** Waits until `cond` holds, polling every 10 ms, for at most `ms`. */
async function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('client API server: event streams', () => {
  let backend: FakeBackend;
  let api: ApiServer | undefined;
  const sockets: Socket[] = [];
  const aborts: AbortController[] = [];
  const warnings: string[] = [];
  const log = pino(
    { level: 'warn' },
    { write: (line: string) => warnings.push((JSON.parse(line) as { msg: string }).msg) },
  );

  beforeEach(() => {
    backend = new FakeBackend(SAMPLE_FILES);
    warnings.length = 0;
  });
  afterEach(async () => {
    for (const a of aborts.splice(0)) a.abort();
    for (const s of sockets.splice(0)) s.destroy();
    await api?.close();
  });

  /** Opens /events with `token`; resolves with its status, the reply's body read to the end. */
  const open = async (port: number, token: string) => {
    const ctl = new AbortController();
    aborts.push(ctl);
    const res = await fetch(`http://127.0.0.1:${port}/api/v1/events`, {
      headers: auth(token),
      signal: ctl.signal,
    });
    if (res.status !== 200) return { status: res.status, body: await res.json(), ctl };
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    let text = '';
    const decoder = new TextDecoder();
    while (!text.includes(': connected')) {
      const { value } = await reader.read();
      text += decoder.decode(value, { stream: true });
    }
    return { status: 200, body: undefined, ctl, reader };
  };

  it('refuses streams over the cap per user (429) and in total (503), and frees slots as they close', async () => {
    api = createApiServer({ backend, users, log, streamLimits: { perUser: 3, total: 5 } });
    const port = await api.listen('127.0.0.1', 0);
    const alice = [await open(port, ALICE), await open(port, ALICE), await open(port, ALICE)];
    expect(alice.map((s) => s.status)).toEqual([200, 200, 200]);
    const fourth = await open(port, ALICE);
    expect(fourth.status).toBe(429);
    expect(fourth.body).toEqual({
      error: {
        code: 'TOO_MANY',
        message: expect.stringMatching(/alice has 3 event streams open, the most one user/),
      },
    });
    // Another user still gets streams, up to the device's total.
    expect((await open(port, ADMIN)).status).toBe(200);
    expect((await open(port, ADMIN)).status).toBe(200);
    const over = await open(port, ADMIN);
    expect(over.status).toBe(503);
    expect(over.body).toEqual({
      error: { code: 'TOO_MANY', message: expect.stringMatching(/5 event streams open.*later/) },
    });
    // A closed stream gives its slot back.
    alice[0]?.ctl.abort();
    await until(
      'the closed stream to be forgotten',
      () => backend.events.listenerCount('event') === 4,
    );
    expect((await open(port, ALICE)).status).toBe(200);
    expect((await open(port, ALICE)).status).toBe(429);
  });

  it('closes the stream of a reader that takes nothing while events pile up; others go on', async () => {
    api = createApiServer({ backend, users, log });
    const port = await api.listen('127.0.0.1', 0);
    // A reader that keeps up, to check that it is untouched.
    const good = await open(port, ADMIN);
    let goodText = '';
    const goodDone = (async () => {
      const decoder = new TextDecoder();
      for (;;) {
        const r = await good.reader?.read().catch(() => ({ done: true, value: undefined }));
        if (r === undefined || r.done) return;
        goodText += decoder.decode(r.value, { stream: true });
      }
    })();
    // A raw client that sends its request and then never reads.
    const slow = connect(port, '127.0.0.1');
    sockets.push(slow);
    let head = '';
    slow.on('data', (d: Buffer) => {
      head += d.toString();
      if (head.includes(': connected')) slow.pause();
    });
    slow.write(
      `GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${ALICE}\r\n\r\n`,
    );
    await until('the slow stream to open', () => backend.events.listenerCount('event') === 2);
    // Events of ~10 KB each, up to 64 MiB of them: far more than the socket buffers hold.
    const big: ClientEvent = {
      type: 'added',
      path: 'x'.repeat(10_000),
      device: DEV_A,
      size: 1,
      time: '2026-01-01T00:00:00.000Z',
    };
    let sent = 0;
    while (backend.events.listenerCount('event') === 2 && sent < 6400) {
      backend.emit(big);
      sent++;
      if (sent % 20 === 0) await new Promise((r) => setImmediate(r));
    }
    expect(backend.events.listenerCount('event'), `still open after ${sent} events`).toBe(1);
    expect(warnings.join('\n')).toMatch(/closed an event stream of alice: its reader fell behind/);
    // The good reader got every event and its stream is still open.
    const last: ClientEvent = {
      type: 'connected',
      device: DEV_A,
      time: '2026-01-01T00:00:01.000Z',
    };
    backend.emit(last);
    await until('the good reader to get every event', () => goodText.includes('event: connected'));
    expect(goodText.split('event: added').length - 1).toBe(sent);
    good.ctl.abort();
    await goodDone;
  });

  it('closes a stream whose reader has taken nothing for the stall time', async () => {
    api = createApiServer({
      backend,
      users,
      log,
      streamLimits: { stallMs: 300, backlogBytes: 1 << 30 },
    });
    const port = await api.listen('127.0.0.1', 0);
    const slow = connect(port, '127.0.0.1');
    sockets.push(slow);
    slow.pause();
    slow.write(
      `GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${ALICE}\r\n\r\n`,
    );
    await until('the slow stream to open', () => backend.events.listenerCount('event') === 1);
    // Fill the socket buffers (a few MiB on loopback), then stop producing.
    const big: ClientEvent = {
      type: 'added',
      path: 'y'.repeat(10_000),
      device: DEV_A,
      size: 1,
      time: '2026-01-01T00:00:00.000Z',
    };
    for (let i = 0; i < 3200; i++) {
      backend.emit(big);
      if (i % 20 === 0) await new Promise((r) => setImmediate(r));
    }
    await until(
      'the stalled stream to be closed',
      () => backend.events.listenerCount('event') === 0,
    );
    expect(warnings.join('\n')).toMatch(/closed an event stream of alice/);
  });
});

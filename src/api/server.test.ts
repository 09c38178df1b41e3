// The client API's HTTP layer over an in-memory backend: authentication,
// request schemas, error mapping and Server-Sent Events framing.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LockstepError, type ErrorCode } from '../base/errors.js';
import { staticUserStore } from '../config/users.js';
import { DEV_B, FakeBackend, SAMPLE_FILES } from '../testing/fake-backend.js';
import type { ClientEvent } from './backend.js';
import {
  clientEventSchema,
  errorSchema,
  listEntrySchema,
  listPageSchema,
  lockInfoSchema,
  locksSchema,
  statusSchema,
  routeSchemas,
  userSchema,
} from './schemas.js';
import { createApiServer, validators, type ApiServer } from './server.js';
import { MAX_CODES_PER_USER, SESSION_TTL_MS, SessionStore } from './sessions.js';

const ADMIN = 'admin-token';
const ALICE = 'alice-token';
const users = staticUserStore({
  [ADMIN]: { name: 'admin', admin: true },
  [ALICE]: { name: 'alice', admin: false },
});
const ajv = new Ajv({ allowUnionTypes: true, strict: false });
const auth = (token: string) => ({ authorization: `Bearer ${token}` });

describe('client API server', () => {
  let backend: FakeBackend;
  let api: ApiServer;

  beforeEach(() => {
    backend = new FakeBackend(SAMPLE_FILES);
    api = createApiServer({ backend, users, log: pino({ level: 'silent' }), heartbeatMs: 50 });
  });
  afterEach(() => api.close());

  const inject = (
    method: 'GET' | 'POST' | 'DELETE',
    url: string,
    opts: { token?: string | null; body?: unknown; headers?: Record<string, string> } = {},
  ) =>
    api.app.inject({
      method,
      url,
      headers: {
        ...(opts.token === null ? {} : auth(opts.token ?? ADMIN)),
        ...(opts.headers ?? {}),
      },
      ...(opts.body !== undefined ? { payload: opts.body as object } : {}),
    });

  const routes: ['GET' | 'POST' | 'DELETE', string][] = [
    ['GET', '/api/v1/files'],
    ['GET', '/api/v1/files/a.jpg'],
    ['GET', '/api/v1/locks'],
    ['POST', '/api/v1/locks'],
    ['DELETE', '/api/v1/locks/a.jpg'],
    ['GET', '/api/v1/status'],
    ['GET', '/api/v1/events'],
    ['GET', '/api/v1/whoami'],
    ['GET', '/api/v1/no-such-route'],
    ['GET', '/'],
  ];

  it.each(routes)('%s %s without a token gets 401 and no data', async (method, url) => {
    const r = await inject(method, url, {
      token: null,
      ...(method === 'POST' ? { body: { path: 'a.jpg' } } : {}),
    });
    expect(r.statusCode).toBe(401);
    expect(r.headers['www-authenticate']).toMatch(/^Bearer/);
    expect(r.json()).toEqual({ error: { code: 'UNAUTHORIZED', message: expect.any(String) } });
    expect(r.body).not.toMatch(/a\.jpg|alice|AAAAAAA/);
    expect(backend.calls).toEqual([]);
  });

  it.each(routes)('%s %s with a wrong token gets 401 and no data', async (method, url) => {
    const r = await inject(method, url, { token: 'wrong' });
    expect(r.statusCode).toBe(401);
    expect(r.json().error.code).toBe('UNAUTHORIZED');
    expect(backend.calls).toEqual([]);
  });

  it('takes the token only from the Authorization header, never from ?token=', async () => {
    for (const url of ['/api/v1/files', '/api/v1/whoami', '/api/v1/events']) {
      const r = await inject('GET', `${url}?token=${ADMIN}`, { token: null });
      expect(r.statusCode, url).toBe(401);
    }
  });

  it('GET /files lists the root by name with the contract shape', async () => {
    const r = await inject('GET', '/api/v1/files');
    expect(r.statusCode).toBe(200);
    const page = r.json();
    expect(ajv.validate(listPageSchema, page), ajv.errorsText()).toBe(true);
    expect(page.dir).toBe('');
    expect(page.entries.map((e: { name: string }) => e.name)).toEqual([
      'a.jpg',
      'b.txt',
      'c.pdf',
      'd.gif',
      'docs',
      'e.conflict-20261124-180340-B7XKQ2M.txt',
    ]);
    expect(backend.calls[0]).toEqual({
      method: 'list',
      args: [{ dir: '', sort: 'name', order: 'asc', offset: 0, limit: 1000, recursive: false }],
    });
  });

  it('GET /files passes dir, sort, order, offset, limit and recursive', async () => {
    const r = await inject(
      'GET',
      '/api/v1/files?dir=docs/&sort=size&order=desc&offset=0&limit=5&recursive=true',
    );
    expect(r.statusCode).toBe(200);
    expect(r.headers['x-lockstep-complete']).toBe('true');
    expect(backend.calls[0]?.args[0]).toEqual({
      dir: 'docs',
      sort: 'size',
      order: 'desc',
      offset: 0,
      limit: 5,
      recursive: true,
    });
    expect(r.json().entries.map((e: { path: string }) => e.path)).toEqual(['docs/plan.md']);
  });

  it("compiles a route's validators on its first request, not when the server starts", async () => {
    const compile = vi.spyOn(Ajv.prototype, 'compile');
    const fresh = createApiServer({ backend, users, log: pino({ level: 'silent' }) });
    try {
      await fresh.app.ready();
      expect(compile).not.toHaveBeenCalled();
      const r = await fresh.app.inject({
        method: 'GET',
        url: '/api/v1/files?limit=ten',
        headers: auth(ADMIN),
      });
      expect(r.statusCode).toBe(400);
      expect(compile).toHaveBeenCalled();
    } finally {
      compile.mockRestore();
      await fresh.close();
    }
  });

  it('has request schemas that all compile (they are compiled only when first used)', () => {
    const ajvs = validators();
    for (const [route, schema] of Object.entries(routeSchemas)) {
      for (const part of ['body', 'querystring', 'params', 'headers'] as const) {
        const s = (schema as Record<string, object | undefined>)[part];
        if (s === undefined) continue;
        const a = part === 'body' ? ajvs.strict : ajvs.coercing;
        expect(() => a.compile(s), `${route} ${part}`).not.toThrow();
      }
    }
  });

  it.each([
    ['sort=color', /sort/],
    ['order=up', /order/],
    ['limit=0', /limit/],
    ['limit=200001', /limit/],
    ['recursive=maybe', /recursive/],
    ['limit=ten', /limit/],
    ['offset=-1', /offset/],
    ['colour=red', /unknown field "colour"/],
    ['dir=../etc', /path/i],
  ])('GET /files?%s is refused with 400', async (query, want) => {
    const r = await inject('GET', `/api/v1/files?${query}`);
    expect(r.statusCode).toBe(400);
    expect(ajv.validate(errorSchema, r.json())).toBe(true);
    expect(r.json().error.message).toMatch(want);
  });

  it('GET /files/PATH gives one entry, 404 for none, decodes the path', async () => {
    const r = await inject('GET', '/api/v1/files/docs/plan.md');
    expect(r.statusCode).toBe(200);
    expect(ajv.validate(listEntrySchema, r.json()), ajv.errorsText()).toBe(true);
    expect(r.json().path).toBe('docs/plan.md');
    const missing = await inject('GET', '/api/v1/files/nope.txt');
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toEqual({
      error: { code: 'NOT_FOUND', message: 'No such path: nope.txt' },
    });
    await inject('GET', `/api/v1/files/${encodeURIComponent('a b ü.txt')}`);
    expect(backend.calls.at(-1)).toEqual({ method: 'file', args: ['a b ü.txt'] });
  });

  it('replies carry only the contract fields', async () => {
    backend.files.set('x', { path: 'x', secret: 'internal' } as never);
    const leaky = backend.file.bind(backend);
    backend.file = (p) => ({ ...(leaky(p) as object), secret: 'internal' }) as never;
    const r = await inject('GET', '/api/v1/files/x');
    expect(r.body).not.toContain('internal');
  });

  it('POST /locks locks for the token user, 201 with the lock', async () => {
    const r = await inject('POST', '/api/v1/locks', {
      token: ALICE,
      body: { path: 'c.pdf', ttl: 3600, reason: 'editing' },
    });
    expect(r.statusCode).toBe(201);
    expect(ajv.validate(lockInfoSchema, r.json()), ajv.errorsText()).toBe(true);
    expect(r.json()).toMatchObject({ path: 'c.pdf', owner: 'alice', reason: 'editing' });
    expect(backend.calls[0]).toEqual({
      method: 'lock',
      args: ['c.pdf', { name: 'alice', admin: false }, { ttlMs: 3_600_000, reason: 'editing' }],
    });
    const locks = await inject('GET', '/api/v1/locks');
    expect(ajv.validate(locksSchema, locks.json())).toBe(true);
    expect(locks.json().locks.map((l: { path: string }) => l.path)).toEqual(['c.pdf']);
  });

  it.each([
    ['no body', undefined],
    ['no path', { ttl: 5 }],
    ['an empty path', { path: '' }],
    ['a number as path', { path: 5 }],
    ['a string as ttl', { path: 'c.pdf', ttl: '30' }],
    ['a fractional ttl', { path: 'c.pdf', ttl: 1.5 }],
    ['a zero ttl', { path: 'c.pdf', ttl: 0 }],
    ['an unknown field', { path: 'c.pdf', owner: 'mallory' }],
    ['a path with ..', { path: '../c.pdf' }],
    ['an array', [{ path: 'c.pdf' }]],
  ])('POST /locks with %s is refused with 400', async (_name, body) => {
    const r = await inject('POST', '/api/v1/locks', { body });
    expect(r.statusCode).toBe(400);
    expect(ajv.validate(errorSchema, r.json())).toBe(true);
    expect(r.json().error.message.length).toBeGreaterThan(5);
    expect(backend.calls).toEqual([]);
  });

  it('POST /locks with bad JSON or a huge body is refused', async () => {
    const bad = await api.app.inject({
      method: 'POST',
      url: '/api/v1/locks',
      headers: { ...auth(ADMIN), 'content-type': 'application/json' },
      payload: '{"path": ',
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.code).toBe('BAD_REQUEST');
    const huge = await inject('POST', '/api/v1/locks', {
      body: { path: 'c.pdf', reason: 'x'.repeat(70 * 1024) },
    });
    expect(huge.statusCode).toBe(413);
    expect(huge.json().error.code).toBe('TOO_LARGE');
  });

  const mapping: [ErrorCode, number][] = [
    ['NOT_FOUND', 404],
    ['NOT_A_FILE', 409],
    ['LOCKED', 423],
    ['NOT_LOCK_OWNER', 403],
    ['AUTHORITY_UNREACHABLE', 503],
    ['AUTHORITY_DISAGREE', 503],
    ['USAGE', 400],
  ];
  it.each(mapping)('maps %s to %i with its message', async (code, status) => {
    backend.failNext = new LockstepError(code, `message for ${code}`);
    const r = await inject('POST', '/api/v1/locks', { body: { path: 'c.pdf' } });
    expect(r.statusCode).toBe(status);
    expect(r.json()).toEqual({ error: { code, message: `message for ${code}` } });
  });

  it('hides the internals of any other failure behind a 500', async () => {
    backend.failNext = new Error('SQLITE_CORRUPT at /home/secret/index.db');
    const r = await inject('GET', '/api/v1/status');
    expect(r.statusCode).toBe(500);
    expect(r.json().error.code).toBe('INTERNAL');
    expect(r.body).not.toContain('secret');
    backend.failNext = new LockstepError('INDEX_INVALID', 'bad row in /home/secret/index.db');
    const r2 = await inject('GET', '/api/v1/locks');
    expect(r2.statusCode).toBe(500);
    expect(r2.body).not.toContain('secret');
  });

  it('DELETE /locks/PATH unlocks; force only by query', async () => {
    await inject('POST', '/api/v1/locks', { token: ALICE, body: { path: 'b.txt' } });
    const notOwner = await inject('DELETE', '/api/v1/locks/b.txt');
    expect(notOwner.statusCode).toBe(403);
    expect(notOwner.json().error.code).toBe('NOT_LOCK_OWNER');
    const forced = await inject('DELETE', '/api/v1/locks/b.txt?force=true');
    expect(forced.statusCode).toBe(200);
    expect(ajv.validate(lockInfoSchema, forced.json())).toBe(true);
    expect(backend.calls.at(-1)?.args).toEqual([
      'b.txt',
      { name: 'admin', admin: true },
      { force: true },
    ]);
    const bad = await inject('DELETE', '/api/v1/locks/b.txt?force=maybe');
    expect(bad.statusCode).toBe(400);
  });

  it('GET /status and /whoami follow their schemas', async () => {
    const s = await inject('GET', '/api/v1/status');
    expect(ajv.validate(statusSchema, s.json()), ajv.errorsText()).toBe(true);
    const w = await inject('GET', '/api/v1/whoami', { token: ALICE });
    expect(ajv.validate(userSchema, w.json())).toBe(true);
    expect(w.json()).toEqual({ name: 'alice', admin: false });
  });

  it('an authenticated request to an unknown route gets a JSON 404', async () => {
    const r = await inject('GET', '/api/v1/nope');
    expect(r.statusCode).toBe(404);
    expect(r.json().error.code).toBe('NOT_FOUND');
  });

  it('GET /events streams each event as one SSE frame, with heartbeats', async () => {
    const port = await api.listen('127.0.0.1', 0);
    const ctl = new AbortController();
    const res = await fetch(`http://127.0.0.1:${port}/api/v1/events`, {
      headers: auth(ADMIN),
      signal: ctl.signal,
    });
    expect(res.status).toBe(200);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let text = '';
    const until = async (cond: () => boolean) => {
      while (!cond()) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`stream ended: ${text}`);
        text += decoder.decode(value, { stream: true });
      }
    };
    await until(() => text.includes(': connected\n\n'));
    const events: ClientEvent[] = [
      {
        type: 'modified',
        path: 'b.txt',
        device: DEV_B,
        size: 7300,
        oldSize: 661,
        time: '2026-11-24T18:02:11.000Z',
      },
      {
        type: 'conflict',
        path: 'e.txt',
        copy: 'e.conflict-20261124-180340-B7XKQ2M.txt',
        device: DEV_B,
        time: '2026-11-24T18:03:40.000Z',
      },
      { type: 'connected', device: DEV_B, time: '2026-11-24T18:03:41.000Z' },
    ];
    for (const ev of events) backend.emit(ev);
    await until(() => text.split('\n\n').filter((f) => f.startsWith('event:')).length === 3);
    const frames = text.split('\n\n').filter((f) => f.startsWith('event:'));
    frames.forEach((frame, i) => {
      const lines = frame.split('\n');
      expect(lines).toHaveLength(2);
      expect(lines[0]).toBe(`event: ${events[i]?.type}`);
      const data = JSON.parse((lines[1] as string).replace(/^data: /, '')) as unknown;
      expect(data).toEqual(events[i]);
      expect(ajv.validate(clientEventSchema, data), ajv.errorsText()).toBe(true);
    });
    await until(() => text.includes(': heartbeat\n\n'));
    ctl.abort();
    // The device lets go of the stream once it sees the client leave.
    while (backend.events.listenerCount('event') > 0) await new Promise((r) => setTimeout(r, 10));
  });

  it('close() ends open event streams', async () => {
    const port = await api.listen('127.0.0.1', 0);
    const res = await fetch(`http://127.0.0.1:${port}/api/v1/events`, { headers: auth(ADMIN) });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    await api.close();
    for (;;) {
      const { done } = await reader.read();
      if (done) break;
    }
    expect(backend.events.listenerCount('event')).toBe(0);
  });
});

describe('client API server: the web page and its sign-in', () => {
  let backend: FakeBackend;
  let api: ApiServer;
  let root: string;

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'lockstep-web-'));
    mkdirSync(join(root, 'assets'));
    writeFileSync(join(root, 'index.html'), '<!doctype html><title>Lockstep</title>');
    writeFileSync(join(root, 'assets', 'index-abc123.js'), 'console.log(1)');
    writeFileSync(join(root, 'assets', 'index-abc123.css'), 'body{}');
    backend = new FakeBackend(SAMPLE_FILES);
    api = createApiServer({ backend, users, log: pino({ level: 'silent' }), webRoot: root });
  });
  afterEach(async () => {
    await api.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('serves the page without a token, with content types, caching and a strict policy', async () => {
    const page = await api.app.inject({ method: 'GET', url: '/' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['cache-control']).toBe('no-cache');
    expect(page.headers['content-security-policy']).toMatch(
      /default-src 'none'; script-src 'self'/,
    );
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    const js = await api.app.inject({ method: 'GET', url: '/assets/index-abc123.js' });
    expect(js.statusCode).toBe(200);
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(js.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    const css = await api.app.inject({ method: 'GET', url: '/assets/index-abc123.css' });
    expect(css.headers['content-type']).toBe('text/css; charset=utf-8');
    // Anything else still needs a token and says nothing.
    for (const url of ['/assets/other.js', '/index.html', '/api/v1/files']) {
      const r = await api.app.inject({ method: 'GET', url });
      expect(r.statusCode, url).toBe(401);
    }
    expect(backend.calls).toEqual([]);
  });

  it('exchanges a one-time code for a session token of the user who asked for it', async () => {
    const noToken = await api.app.inject({ method: 'POST', url: '/api/v1/signin-codes' });
    expect(noToken.statusCode).toBe(401);
    const made = await api.app.inject({
      method: 'POST',
      url: '/api/v1/signin-codes',
      headers: auth(ALICE),
      payload: {},
    });
    expect(made.statusCode).toBe(201);
    const { code, user } = made.json<{ code: string; user: unknown }>();
    expect(user).toEqual({ name: 'alice', admin: false });
    const signin = (c: string) =>
      api.app.inject({ method: 'POST', url: '/api/v1/signin', payload: { code: c } });
    const first = await signin(code);
    expect(first.statusCode).toBe(200);
    const session = first.json<{ token: string; user: unknown; expires: string }>();
    expect(session.user).toEqual({ name: 'alice', admin: false });
    // The code is used up; a wrong one gets 401 too.
    const second = await signin(code);
    expect(second.statusCode).toBe(401);
    expect(second.json()).toMatchObject({ error: { code: 'UNAUTHORIZED' } });
    expect((await signin('guess')).statusCode).toBe(401);
    // The session token works like a user token, until signed out.
    const who = await api.app.inject({
      method: 'GET',
      url: '/api/v1/whoami',
      headers: auth(session.token),
    });
    expect(who.json()).toEqual({ name: 'alice', admin: false });
    const out = await api.app.inject({
      method: 'POST',
      url: '/api/v1/signout',
      headers: auth(session.token),
      payload: {},
    });
    expect(out.json()).toEqual({ signedOut: true });
    const after = await api.app.inject({
      method: 'GET',
      url: '/api/v1/whoami',
      headers: auth(session.token),
    });
    expect(after.statusCode).toBe(401);
  });
});

describe('web sign-in', () => {
  let backend: FakeBackend;
  let api: ApiServer;

  beforeEach(() => {
    backend = new FakeBackend(SAMPLE_FILES);
    api = createApiServer({ backend, users, log: pino({ level: 'silent' }), heartbeatMs: 50 });
    port = undefined;
  });
  afterEach(() => api.close());

  const post = (url: string, token: string | undefined, payload: object = {}) =>
    api.app.inject({
      method: 'POST',
      url,
      headers: token === undefined ? {} : auth(token),
      payload,
    });
  /** A web session of the user of `token`, through a sign-in code. */
  const sessionOf = async (token: string): Promise<string> => {
    const { code } = (await post('/api/v1/signin-codes', token)).json<{ code: string }>();
    return (await post('/api/v1/signin', undefined, { code })).json<{ token: string }>().token;
  };

  it('a web session cannot make sign-in codes (so it cannot renew itself)', async () => {
    const session = await sessionOf(ALICE);
    const r = await post('/api/v1/signin-codes', session);
    expect(r.statusCode).toBe(403);
    expect(r.json()).toEqual({
      error: { code: 'FORBIDDEN', message: expect.stringMatching(/web session cannot create/) },
    });
    // The user token still can.
    expect((await post('/api/v1/signin-codes', ALICE)).statusCode).toBe(201);
  });

  it('POST /sessions makes a web session for a user token, not for a session', async () => {
    expect((await post('/api/v1/sessions', undefined)).statusCode).toBe(401);
    const made = await post('/api/v1/sessions', ALICE);
    expect(made.statusCode).toBe(201);
    const session = made.json<{ token: string; user: unknown; expires: string }>();
    expect(session.user).toEqual({ name: 'alice', admin: false });
    expect(session.token).not.toBe(ALICE);
    const who = await api.app.inject({
      method: 'GET',
      url: '/api/v1/whoami',
      headers: auth(session.token),
    });
    expect(who.json()).toEqual({ name: 'alice', admin: false });
    const again = await post('/api/v1/sessions', session.token);
    expect(again.statusCode).toBe(403);
    expect(again.json()).toMatchObject({ error: { code: 'FORBIDDEN' } });
    expect((await post('/api/v1/signout', session.token)).json()).toEqual({ signedOut: true });
    expect((await post('/api/v1/signout', session.token)).statusCode).toBe(401);
  });

  /** Opens /events with `token`; `rest()` resolves with what follows once the device ends it. */
  let port: number | undefined;
  const openEvents = async (token: string) => {
    port ??= await api.listen('127.0.0.1', 0);
    const res = await fetch(`http://127.0.0.1:${port}/api/v1/events`, { headers: auth(token) });
    expect(res.status).toBe(200);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let text = '';
    const rest = async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return text;
        text += decoder.decode(value, { stream: true });
      }
    };
    // The stream is open once its first comment arrives.
    while (!text.includes(': connected\n\n')) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`stream ended: ${text}`);
      text += decoder.decode(value, { stream: true });
    }
    return { rest };
  };

  it('signing out ends the event streams opened with that session, not others', async () => {
    const session = await sessionOf(ALICE);
    const other = await sessionOf(ALICE);
    const stream = await openEvents(session);
    const otherStream = await openEvents(other);
    const out = await post('/api/v1/signout', session);
    expect(out.json()).toEqual({ signedOut: true });
    await stream.rest(); // ends (else this test times out)
    // The other session's stream still gets events and heartbeats.
    const ev: ClientEvent = { type: 'connected', device: DEV_B, time: '2026-11-24T18:03:41.000Z' };
    backend.emit(ev);
    await api.close();
    const rest = await otherStream.rest();
    expect(rest).toMatch(/event: connected/);
  });

  it('an event stream ends at the first heartbeat after its session expired', async () => {
    let now = Date.now();
    await api.close();
    api = createApiServer({
      backend,
      users,
      log: pino({ level: 'silent' }),
      heartbeatMs: 50,
      sessions: new SessionStore(users, () => now),
    });
    const session = await sessionOf(ALICE);
    const stream = await openEvents(session);
    now += SESSION_TTL_MS + 1;
    const text = await stream.rest(); // ends (else this test times out)
    expect(text).not.toMatch(/event:/);
  });

  it('a user at its cap of sign-in codes gets 429 TOO_MANY', async () => {
    for (let i = 0; i < MAX_CODES_PER_USER; i++) {
      expect((await post('/api/v1/signin-codes', ALICE)).statusCode).toBe(201);
    }
    const r = await post('/api/v1/signin-codes', ALICE);
    expect(r.statusCode).toBe(429);
    expect(r.json()).toEqual({
      error: {
        code: 'TOO_MANY',
        message: expect.stringMatching(/alice has 20 unused sign-in codes/),
      },
    });
    expect((await post('/api/v1/signin-codes', ADMIN)).statusCode).toBe(201);
  });
});

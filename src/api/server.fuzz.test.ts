// Property-based fuzzing (fast-check) of every client API request: bodies,
// query strings, paths (with a corpus of path attacks) and headers. Every
// request gets a clear answer (a documented status with an error code, never
// a 500), and the backend is never asked about a path outside the folder.
// FUZZ_RUNS sets the number of cases per property.
import fc from 'fast-check';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { staticUserStore } from '../config/users.js';
import { pathProblem } from '../core/path.js';
import { FakeBackend, SAMPLE_FILES } from '../testing/fake-backend.js';
import { createApiServer, type ApiServer } from './server.js';

const RUNS = Math.max(50, Math.floor(Number(process.env.FUZZ_RUNS ?? 2000) / 4));
const SEED = process.env.SEED === undefined ? undefined : Number(process.env.SEED);
const params = { numRuns: RUNS, ...(SEED === undefined ? {} : { seed: SEED }) };

const ADMIN = 'admin-token';
const users = staticUserStore({ [ADMIN]: { name: 'admin', admin: true } });
const CODES = new Set([
  'BAD_REQUEST',
  'USAGE',
  'UNAUTHORIZED',
  'NOT_FOUND',
  'NOT_A_FILE',
  'LOCKED',
  'NOT_LOCK_OWNER',
  'TOO_LARGE',
  'PATH_INVALID',
]);

/** Path attacks, raw and percent-encoded. */
const attacks = [
  '..',
  '../etc/passwd',
  '%2e%2e/x',
  '..%2Fescape',
  '%2e%2e%2f%2e%2e%2fetc%2fpasswd',
  '%2Fetc%2Fpasswd',
  'a%00b',
  'a%5C..%5Cb',
  '%ff%fe',
  '%ED%A0%80',
  '.lockstep-tmp-x',
  'd/.lockstep-folder',
  'a'.repeat(300),
  'e%CC%81.txt',
  '%C3%A9.txt',
  'A.JPG',
  'a.jpg',
  'a//b',
  'a/./b',
  '%',
  '%zz',
];

describe('hostile clients (property-based)', () => {
  let backend: FakeBackend;
  let api: ApiServer;
  beforeAll(() => {
    backend = new FakeBackend(SAMPLE_FILES);
    api = createApiServer({ backend, users, log: pino({ level: 'silent' }), heartbeatMs: 50 });
  });
  afterAll(() => api.close());

  /** Every path the backend was asked about is a valid folder path. */
  const backendSawOnlySafePaths = () => {
    for (const c of backend.calls) {
      const a = c.args[0];
      const p =
        typeof a === 'string' ? a : ((a as { dir?: unknown } | undefined)?.dir ?? undefined);
      if (typeof p === 'string' && p !== '') {
        expect(pathProblem(p), `${c.method}(${JSON.stringify(p)})`).toBeUndefined();
      }
    }
    backend.calls.length = 0;
  };

  const answersClearly = (r: { statusCode: number; body: string }, what: string) => {
    expect(r.statusCode, `${what}: ${r.body}`).not.toBe(500);
    expect(r.statusCode, what).toBeLessThan(500);
    if (r.statusCode >= 400) {
      const e = (JSON.parse(r.body) as { error?: { code?: string; message?: string } }).error;
      expect(CODES.has(e?.code ?? ''), `${what}: code ${e?.code}`).toBe(true);
      expect(e?.message ?? '').not.toBe('');
    }
  };

  it('POST /locks: any JSON body gets a clear answer', async () => {
    const body = fc.oneof(
      fc.jsonValue(),
      fc.record(
        {
          path: fc.oneof(fc.constantFrom(...attacks.map(decodeURIComponentSafe)), fc.string()),
          ttl: fc.oneof(fc.integer(), fc.double(), fc.string(), fc.constant(null)),
          reason: fc.oneof(fc.string({ maxLength: 2000 }), fc.integer()),
          extra: fc.jsonValue(),
        },
        { requiredKeys: [] },
      ),
    );
    await fc.assert(
      fc.asyncProperty(body, async (b) => {
        backend.calls.length = 0;
        const r = await api.app.inject({
          method: 'POST',
          url: '/api/v1/locks',
          headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
          payload: JSON.stringify(b) ?? 'null',
        });
        answersClearly(r, `POST /locks ${JSON.stringify(b)}`);
        backendSawOnlySafePaths();
        // Keep the table small: unlock what was locked.
        backend.lockTable.clear();
      }),
      params,
    );
  });

  it('any method on any path below /api/v1/files and /api/v1/locks, attacks included, gets a clear answer', async () => {
    const segment = fc.oneof(
      fc.constantFrom(...attacks),
      fc.string({ minLength: 1, maxLength: 20 }).map(encodeURIComponent),
      fc.constantFrom('a.jpg', 'docs', 'b.txt'),
    );
    const req = fc.record({
      method: fc.constantFrom('GET', 'PUT', 'DELETE', 'POST'),
      route: fc.constantFrom('files', 'locks'),
      path: fc.array(segment, { minLength: 1, maxLength: 4 }).map((s) => s.join('/')),
      query: fc.constantFrom('', '?force=true', '?force=maybe', '?force=true&force=false', '?x=1'),
    });
    await fc.assert(
      fc.asyncProperty(req, async (q) => {
        backend.calls.length = 0;
        const url = `/api/v1/${q.route}/${q.path}${q.query}`;
        const r = await api.app.inject({
          method: q.method as 'GET',
          url,
          headers: {
            authorization: `Bearer ${ADMIN}`,
            ...(q.method === 'PUT' ? { 'content-type': 'application/octet-stream' } : {}),
          },
          ...(q.method === 'PUT' ? { payload: Buffer.from('data') } : {}),
        });
        answersClearly(r, `${q.method} ${url}`);
        backendSawOnlySafePaths();
        backend.lockTable.clear();
      }),
      params,
    );
  });

  it('GET /files: any query string gets a clear answer', async () => {
    const value = fc.oneof(
      fc.string({ maxLength: 30 }),
      fc.integer().map(String),
      fc.constantFrom(...attacks, '-1', '1e9', '10001', 'NaN', 'true', ''),
    );
    const query = fc.dictionary(
      fc.constantFrom('dir', 'sort', 'order', 'offset', 'limit', 'recursive', 'token', 'zzz'),
      value,
    );
    await fc.assert(
      fc.asyncProperty(query, async (qs) => {
        backend.calls.length = 0;
        const url = `/api/v1/files?${Object.entries(qs)
          .map(([k, v]) => `${k}=${encodeURIComponent(v)}`)
          .join('&')}`;
        const r = await api.app.inject({
          method: 'GET',
          url,
          headers: { authorization: `Bearer ${ADMIN}` },
        });
        answersClearly(r, `GET ${url}`);
        backendSawOnlySafePaths();
      }),
      params,
    );
  });

  it('wrong content types, broken JSON and odd authorization headers get a clear answer', async () => {
    const req = fc.record({
      contentType: fc.constantFrom(
        'application/json',
        'text/plain',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=x',
        'application/json; charset=latin1',
        '',
      ),
      body: fc.oneof(fc.string({ maxLength: 200 }), fc.constantFrom('{', '{"path":', '\u0000')),
      auth: fc.oneof(
        fc.constant(`Bearer ${ADMIN}`),
        fc.constantFrom('Bearer', 'Basic YWRtaW46YWRtaW4=', `bearer ${ADMIN}`, `Bearer ${ADMIN}x`),
        fc.string({ maxLength: 40 }).filter((s) => /^[\x20-\x7e]*$/.test(s)),
      ),
    });
    await fc.assert(
      fc.asyncProperty(req, async (q) => {
        backend.calls.length = 0;
        const r = await api.app.inject({
          method: 'POST',
          url: '/api/v1/locks',
          headers: {
            authorization: q.auth,
            ...(q.contentType === '' ? {} : { 'content-type': q.contentType }),
          },
          payload: q.body,
        });
        answersClearly(r, `POST /locks as ${JSON.stringify(q)}`);
        if (!new RegExp(`^bearer[ \t]+${ADMIN}[ \t]*$`, 'i').test(q.auth)) {
          expect(r.statusCode).toBe(401);
        }
        backendSawOnlySafePaths();
        backend.lockTable.clear();
      }),
      params,
    );
  });
});

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

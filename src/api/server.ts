/**
 * The client API: HTTP + JSON under `/api/v1`, Server-Sent Events for live
 * notifications, bearer-token authentication. It only translates HTTP to
 * {@link ClientBackend} calls: every request is checked against a schema,
 * every reply serialized through one, and every failure is
 * `{ error: { code, message } }` with a stable code.
 */
import type { ServerResponse } from 'node:http';
import { Ajv, type Options as AjvOptions, type ValidateFunction } from 'ajv';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from '../base/log.js';
import { errorMessage, LockstepError, type ErrorCode } from '../base/errors.js';
import type { UserStore } from '../config/users.js';
import { pathProblem } from '../core/path.js';
import type { ClientBackend, ClientEvent, ListQuery, User } from './backend.js';
import { routeSchemas } from './schemas.js';
import { SessionStore } from './sessions.js';
import { loadPage, PAGE_HEADERS } from './web-page.js';

/** The API's path prefix. */
export const API_PREFIX = '/api/v1';
/** Largest request body, in bytes. */
export const BODY_LIMIT = 64 * 1024;
/** Milliseconds between SSE heartbeat comments. */
export const HEARTBEAT_MS = 15_000;

/** HTTP status of each domain error code a client may see. */
const STATUS: Partial<Record<ErrorCode, number>> = {
  NOT_FOUND: 404,
  NOT_A_FILE: 409,
  LOCKED: 423,
  NOT_LOCK_OWNER: 403,
  FORBIDDEN: 403,
  TOO_MANY: 429,
  AUTHORITY_UNREACHABLE: 503,
  AUTHORITY_DISAGREE: 503,
  FOLDER_STOPPED: 503,
  PATH_INVALID: 400,
  USAGE: 400,
  UNAUTHORIZED: 401,
};

/** Largest file written through the API (the body streams to disk). */
const WRITE_LIMIT = 64 * 1024 * 1024 * 1024;

/** Options of {@link createApiServer}. */
export interface ApiServerOptions {
  readonly backend: ClientBackend;
  readonly users: UserStore;
  readonly log: Logger;
  /** Milliseconds between SSE heartbeats. @default 15000 */
  readonly heartbeatMs?: number;
  /** The built web page (`dist/web`), served at `/`; no page when unset or not built. */
  readonly webRoot?: string;
  /** Sign-in codes and web sessions (over `users`). @default a new store */
  readonly sessions?: SessionStore;
}

/** A client API server, not yet listening. */
export interface ApiServer {
  /** The Fastify instance (tests use its `inject`). */
  readonly app: FastifyInstance;
  /**
   * Listens on `host:port` (port 0: any free one).
   *
   * @returns the port listened on
   */
  listen(host: string, port: number): Promise<number>;
  /** Ends live event streams and stops listening. */
  close(): Promise<void>;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated user (set by the auth hook before any handler runs). */
    user: User;
  }
  interface FastifyContextConfig {
    /** Served without a token: the page's files (no data) and the sign-in exchange. */
    public?: boolean;
  }
}

/** Sends `{ error: { code, message } }` with `status`. */
function sendError(reply: FastifyReply, status: number, code: string, message: string) {
  return reply.code(status).send({ error: { code, message } });
}

/** The bearer token of a request's Authorization header. */
function tokenOf(req: FastifyRequest): string | undefined {
  const header = req.headers.authorization;
  if (typeof header !== 'string') return undefined;
  return /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header)?.[1];
}

/** The `*` param of a wildcard route: the rest of the path, percent-decoded. */
function wildcardPath(req: FastifyRequest): string {
  return (req.params as { '*': string })['*'];
}

/** Ajv instances: query strings and params are strings on the wire and are coerced; bodies are not. */
export function validators(): { coercing: Ajv; strict: Ajv } {
  const base: AjvOptions = {
    allErrors: false,
    useDefaults: true,
    removeAdditional: false,
    allowUnionTypes: true,
    strict: false,
  };
  return {
    coercing: new Ajv({ ...base, coerceTypes: 'array' }),
    strict: new Ajv({ ...base, coerceTypes: false }),
  };
}

/**
 * A validator compiled on its first use: compiling every route's schemas when
 * the server starts was ~50 ms of the main thread at each device start, while
 * its peer links come up. Ajv's own function is called just as Fastify would
 * call it (with the parent, so it may coerce a root value), and its errors are
 * passed on.
 */
function lazyValidator(compile: () => ValidateFunction): ValidateFunction {
  let fn: ValidateFunction | undefined;
  const validate = ((data: unknown, cxt?: Parameters<ValidateFunction>[1]) => {
    fn ??= compile();
    const ok = fn(data, cxt);
    validate.errors = fn.errors;
    return ok;
  }) as ValidateFunction;
  // Fastify passes the parent only to functions that look like Ajv's.
  Object.defineProperty(validate, 'schemaEnv', { get: () => (fn ??= compile()).schemaEnv });
  return validate;
}

/**
 * Creates the client API server over `backend`.
 *
 * @example
 * const api = createApiServer({ backend, users: openUserStore(home), log });
 * const port = await api.listen('127.0.0.1', 7701);
 */
export function createApiServer(opts: ApiServerOptions): ApiServer {
  const { backend, users, log } = opts;
  const heartbeatMs = opts.heartbeatMs ?? HEARTBEAT_MS;
  const sessions = opts.sessions ?? new SessionStore(users);
  const app = Fastify({
    bodyLimit: BODY_LIMIT,
    logger: false,
    forceCloseConnections: true,
    return503OnClosing: true,
    exposeHeadRoutes: false,
    schemaErrorFormatter: (errors, dataVar) => new Error(describeValidation(errors, dataVar)),
    routerOptions: { maxParamLength: 8192 },
    // A URL that does not decode (bad percent-encoding, not UTF-8): the API's error form.
    frameworkErrors: (err, _req, reply) =>
      sendError(reply, 400, 'BAD_REQUEST', `Bad request: ${err.message.slice(0, 300)}`),
  });
  /** Open event streams, each with a check that its token is still valid. */
  const streams = new Map<ServerResponse, () => boolean>();
  /** The user of a user token or web session, as of now. */
  const userOf = (token: string): User | undefined =>
    users.authenticate(token) ?? sessions.authenticate(token);
  /** Ends the event streams whose token is no longer valid (signed out, expired, user gone). */
  const endStaleStreams = () => {
    for (const [res, valid] of streams) if (!valid()) res.end();
  };

  const ajv = validators();
  app.setValidatorCompiler(({ schema, httpPart }) =>
    lazyValidator(() =>
      httpPart === 'body' ? ajv.strict.compile(schema) : ajv.coercing.compile(schema),
    ),
  );
  app.decorateRequest('user', undefined as unknown as User);

  // Authentication first, for every route and for unknown paths alike: an
  // unauthenticated client learns nothing, not even which paths exist.
  app.addHook('onRequest', async (req, reply) => {
    if (req.routeOptions.config?.public === true) return;
    const token = tokenOf(req);
    const user = token === undefined ? undefined : userOf(token);
    if (user === undefined) {
      reply.header('www-authenticate', 'Bearer realm="lockstep"');
      return sendError(
        reply,
        401,
        'UNAUTHORIZED',
        token === undefined
          ? 'This request has no bearer token: send "Authorization: Bearer TOKEN"'
          : 'The bearer token is not valid on this device',
      );
    }
    req.user = user;
  });

  app.setNotFoundHandler((req, reply) =>
    sendError(reply, 404, 'NOT_FOUND', `No such API route: ${req.method} ${req.url.split('?')[0]}`),
  );

  app.setErrorHandler((err: unknown, req, reply) => {
    if (err instanceof LockstepError) {
      const status = STATUS[err.code];
      if (status !== undefined) return sendError(reply, status, err.code, err.message);
    }
    const e = err as { validation?: unknown; statusCode?: number; code?: string; message?: string };
    if (e.validation !== undefined) {
      return sendError(reply, 400, 'BAD_REQUEST', e.message ?? 'Invalid request');
    }
    if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
      const code = e.statusCode === 413 ? 'TOO_LARGE' : 'BAD_REQUEST';
      return sendError(reply, e.statusCode, code, e.message ?? 'Bad request');
    }
    log.error({ err: errorMessage(err), method: req.method, url: req.url }, 'client API error');
    return sendError(reply, 500, 'INTERNAL', 'Internal error; the device log has the details');
  });

  // --- routes

  app.get(`${API_PREFIX}/files`, { schema: routeSchemas.listFiles }, async (req, reply) => {
    const raw = req.query as ListQuery;
    const q: ListQuery = {
      dir: normalizeDir(raw.dir),
      sort: raw.sort,
      order: raw.order,
      offset: raw.offset,
      limit: raw.limit,
      recursive: raw.recursive === true,
    };
    const asText = backend.listText?.(q);
    if (asText !== undefined) {
      reply.header('x-lockstep-complete', String(q.offset === 0 && asText.count === asText.total));
      return reply.type('application/json; charset=utf-8').send(asText.text);
    }
    const page = backend.list(q);
    // How much of the listing this page holds: lets a client pass a complete
    // listing on without parsing it.
    reply.header(
      'x-lockstep-complete',
      String(q.offset === 0 && page.entries.length === page.total),
    );
    // The schema's serializer takes ~37 ms per 10,000 entries, JSON.stringify ~5:
    // big pages (built from the same typed data) go out as a string.
    if (page.entries.length > 1000) {
      return reply.type('application/json; charset=utf-8').send(JSON.stringify(page));
    }
    return page;
  });

  app.get(`${API_PREFIX}/files/*`, { schema: routeSchemas.file }, async (req) => {
    const path = normalizePath(wildcardPath(req));
    const entry = backend.file(path);
    if (entry === undefined) throw new LockstepError('NOT_FOUND', `No such path: ${path}`);
    return entry;
  });

  app.get(`${API_PREFIX}/locks`, { schema: routeSchemas.locks }, async () => ({
    locks: backend.locks(),
  }));

  app.post(`${API_PREFIX}/locks`, { schema: routeSchemas.lock }, async (req, reply) => {
    const body = req.body as { path: string; ttl?: number; reason?: string };
    const lock = await backend.lock(normalizePath(body.path), req.user, {
      ...(body.ttl !== undefined ? { ttlMs: body.ttl * 1000 } : {}),
      ...(body.reason !== undefined ? { reason: body.reason } : {}),
    });
    return reply.code(201).send(lock);
  });

  app.delete(`${API_PREFIX}/locks/*`, { schema: routeSchemas.unlock }, async (req) => {
    const { force } = req.query as { force: boolean };
    return backend.unlock(normalizePath(wildcardPath(req)), req.user, { force });
  });

  // Writing a file: the raw bytes as the body, streamed to disk.
  app.addContentTypeParser('application/octet-stream', (_req, payload, done) => {
    done(null, payload);
  });
  app.put(
    `${API_PREFIX}/files/*`,
    { schema: routeSchemas.writeFile, bodyLimit: WRITE_LIMIT },
    async (req) => {
      const path = normalizePath(wildcardPath(req));
      const body = req.body as AsyncIterable<Uint8Array> | undefined;
      if (body === undefined || typeof body[Symbol.asyncIterator] !== 'function') {
        throw new LockstepError(
          'USAGE',
          'Send the file as the body, Content-Type application/octet-stream',
        );
      }
      return backend.write(path, req.user, body);
    },
  );
  app.delete(`${API_PREFIX}/files/*`, { schema: routeSchemas.removeFile }, async (req) =>
    backend.remove(normalizePath(wildcardPath(req)), req.user),
  );

  app.get(`${API_PREFIX}/status`, { schema: routeSchemas.status }, async () => backend.status());

  app.get(`${API_PREFIX}/whoami`, { schema: routeSchemas.whoami }, async (req) => req.user);

  app.get(`${API_PREFIX}/events`, { schema: routeSchemas.events }, (req, reply) => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    // Tell EventSource how soon to reconnect, and flush the headers now.
    res.write('retry: 2000\n: connected\n\n');
    const onEvent = (ev: ClientEvent) => {
      res.write(sseFrame(ev));
    };
    // The token is checked again at each heartbeat (and at sign-out): a
    // stream lives no longer than the session or user it was opened with.
    const token = tokenOf(req) ?? '';
    const valid = () => userOf(token) !== undefined;
    const heartbeat = setInterval(() => {
      if (valid()) res.write(': heartbeat\n\n');
      else res.end();
    }, heartbeatMs);
    heartbeat.unref();
    const end = () => {
      clearInterval(heartbeat);
      backend.events.off('event', onEvent);
      streams.delete(res);
    };
    backend.events.on('event', onEvent);
    streams.set(res, valid);
    res.on('close', end);
  });

  // --- the web page and its sign-in

  /** Refuses a request made with a web session: only a user token makes codes and sessions. */
  const needUserToken = (req: FastifyRequest, what: string): void => {
    if (users.authenticate(tokenOf(req) ?? '') === undefined) {
      throw new LockstepError(
        'FORBIDDEN',
        `A web session cannot create ${what}: use a user token (the device's token file, or one from \`lockstep user add\`)`,
      );
    }
  };

  app.post(
    `${API_PREFIX}/signin-codes`,
    { schema: routeSchemas.signinCode },
    async (req, reply) => {
      needUserToken(req, 'sign-in codes');
      return reply.code(201).send(sessions.createCode(tokenOf(req) ?? ''));
    },
  );

  // A session for a user token: what the page keeps instead of a pasted token.
  app.post(`${API_PREFIX}/sessions`, { schema: routeSchemas.createSession }, async (req, reply) => {
    needUserToken(req, 'sessions');
    return reply.code(201).send(sessions.createSession(tokenOf(req) ?? ''));
  });

  app.post(
    `${API_PREFIX}/signin`,
    { schema: routeSchemas.signin, config: { public: true } },
    async (req, reply) => {
      const { code } = req.body as { code: string };
      const session = sessions.exchange(code);
      if (session === undefined) {
        return sendError(
          reply,
          401,
          'UNAUTHORIZED',
          'This sign-in link is not valid: it was used already or has expired. ' +
            'Run `lockstep open` for a new one, or sign in with a token',
        );
      }
      return session;
    },
  );

  app.post(`${API_PREFIX}/signout`, { schema: routeSchemas.signout }, async (req) => {
    const signedOut = sessions.revoke(tokenOf(req) ?? '');
    if (signedOut) endStaleStreams();
    return { signedOut };
  });

  const page = opts.webRoot === undefined ? undefined : loadPage(opts.webRoot);
  for (const [url, file] of page ?? []) {
    app.get(url, { config: { public: true } }, async (_req, reply) =>
      reply
        .headers(PAGE_HEADERS)
        .header('content-type', file.type)
        .header('cache-control', file.cacheControl)
        .send(file.body),
    );
  }

  app.addHook('preClose', async () => {
    for (const res of streams.keys()) res.end();
  });

  return {
    app,
    async listen(host: string, port: number): Promise<number> {
      await app.listen({ host, port });
      const addr = app.server.address();
      return typeof addr === 'object' && addr !== null ? addr.port : port;
    },
    async close(): Promise<void> {
      await app.close();
    },
  };
}

/** One validation problem, the way a person reads it. */
interface SchemaProblem {
  readonly instancePath: string;
  readonly keyword: string;
  readonly message?: string;
  readonly params: Record<string, unknown>;
}

/** Turns schema validation errors into one sentence: `Invalid query: limit must be <= 10000`. */
export function describeValidation(errors: readonly SchemaProblem[], part: string): string {
  const what = part === 'querystring' ? 'query' : part === 'params' ? 'path' : part;
  const problems = errors.map((e) => {
    const field = e.instancePath.replace(/^\//, '').replaceAll('/', '.');
    const at = field === '' ? '' : `${field} `;
    switch (e.keyword) {
      case 'additionalProperties':
        return `unknown field ${JSON.stringify(e.params.additionalProperty)}`;
      case 'required':
        return `${String(e.params.missingProperty)} is required`;
      case 'enum':
        return `${at}must be one of ${(e.params.allowedValues as unknown[]).join(', ')}`;
      default:
        return `${at}${e.message ?? 'is invalid'}`;
    }
  });
  return `Invalid ${what}: ${problems.join('; ')}`;
}

/** One SSE frame for an event: `event:` its type, `data:` its JSON. */
export function sseFrame(ev: ClientEvent): string {
  // JSON.stringify escapes newlines, so the data is always one line.
  return `event: ${ev.type}\ndata: ${JSON.stringify(ev)}\n\n`;
}

/** A folder-relative path from a client: no leading `./` or `/`, no trailing `/`. */
export function normalizePath(p: string): string {
  let s = p;
  while (s.startsWith('./')) s = s.slice(2);
  s = s.replace(/^\/+/, '').replace(/\/+$/, '');
  if (s === '' || s === '.') throw new LockstepError('USAGE', 'The path is empty');
  if (s.includes('\0')) throw new LockstepError('USAGE', 'The path contains a NUL character');
  if (s.split('/').some((seg) => seg === '..' || seg === '.' || seg === '')) {
    throw new LockstepError(
      'USAGE',
      `Invalid path ${JSON.stringify(p)}: give a path inside the folder, without '..', '.' or '//'`,
    );
  }
  // The rest of the folder path rules (backslash, lone surrogates, lengths).
  const problem = pathProblem(s);
  if (problem !== undefined) {
    throw new LockstepError('USAGE', `Invalid path ${JSON.stringify(p.slice(0, 200))}: ${problem}`);
  }
  return s;
}

/** A directory from a client: '' (or '/', '.') for the folder root. */
export function normalizeDir(d: string): string {
  const s = d.replace(/^(\.\/)+/, '').replace(/^\/+/, '');
  if (s === '' || s === '.' || /^\/*$/.test(s)) return '';
  return normalizePath(s);
}

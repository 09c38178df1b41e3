/**
 * The client API: HTTP + JSON under `/api/v1`, Server-Sent Events for live
 * notifications, bearer-token authentication. It only translates HTTP to
 * {@link ClientBackend} calls: every request is checked against a schema,
 * every reply serialized through one, and every failure is
 * `{ error: { code, message } }` with a stable code.
 *
 * This file builds the server (validation, authentication, errors); the
 * routes are registered by group: file-routes.ts, lock-routes.ts,
 * event-routes.ts and signin-routes.ts.
 */
import { Ajv, type Options as AjvOptions, type ValidateFunction } from 'ajv';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger } from '../base/log.js';
import { errorMessage, LockstepError, type ErrorCode } from '../base/errors.js';
import type { UserStore } from '../config/users.js';
import type { ClientBackend, User } from './backend.js';
import {
  DEFAULT_STREAM_LIMITS,
  EventStreams,
  registerEventRoutes,
  type StreamLimits,
} from './event-routes.js';
import { registerFileRoutes } from './file-routes.js';
import { hostProblem, LOOPBACK_HOSTS } from './hosts.js';
import { sendError, tokenOf, type RouteContext } from './http.js';
import { registerLockRoutes } from './lock-routes.js';
import { registerUserRoutes } from './user-routes.js';
import { SessionStore } from './sessions.js';
import { registerPageRoutes, registerSigninRoutes } from './signin-routes.js';

/** Largest request body, in bytes. */
const BODY_LIMIT = 64 * 1024;
/** Milliseconds between SSE heartbeat comments. */
const HEARTBEAT_MS = 15_000;

/*
 * The listener's own budget, apart from the peer port's: connections that
 * send nothing, stall or idle are closed, and their number is capped, so a
 * flood of clients cannot use up the device's file descriptors.
 */
/** Client connections at once (a live event stream holds one); more are closed at once. */
const MAX_CONNECTIONS = 1024;
/** Time a client has to send a request's headers (Node's default: 60 s). */
const HEADERS_TIMEOUT_MS = 10_000;
/** How often connections are checked against {@link HEADERS_TIMEOUT_MS}. */
const HEADERS_CHECK_MS = 2_000;
/** An idle kept-alive connection is closed after this long (Fastify's default: 72 s). */
const KEEP_ALIVE_MS = 10_000;
/**
 * A connection with nothing sent or received for this long is closed (a
 * stalled upload or download); at least four heartbeats, so a live event
 * stream never is.
 */
const IDLE_MS = 60_000;
/** At most one warning about refused connections per this many ms. */
const DROP_WARN_MS = 60_000;

/** HTTP status of each domain error code a client may see. */
const STATUS: Partial<Record<ErrorCode, number>> = {
  NOT_FOUND: 404,
  NOT_A_FILE: 409,
  LOCKED: 423,
  NOT_LOCK_OWNER: 403,
  FORBIDDEN: 403,
  USER_EXISTS: 409,
  TOO_MANY: 429,
  AUTHORITY_UNREACHABLE: 503,
  AUTHORITY_DISAGREE: 503,
  FOLDER_STOPPED: 503,
  PATH_INVALID: 400,
  USAGE: 400,
  UNAUTHORIZED: 401,
};

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
  /**
   * The `Host` names (canonical, see `allowedHosts` in hosts.ts) the server
   * answers for; any other gets 421. @default the loopback names
   */
  readonly hosts?: readonly string[];
  /** Caps on event streams and how far their readers may fall behind. @default DEFAULT_STREAM_LIMITS */
  readonly streamLimits?: Partial<StreamLimits>;
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
  const sessions = opts.sessions ?? new SessionStore(users);
  const heartbeatMs = opts.heartbeatMs ?? HEARTBEAT_MS;
  const app = Fastify({
    http: { headersTimeout: HEADERS_TIMEOUT_MS, connectionsCheckingInterval: HEADERS_CHECK_MS },
    keepAliveTimeout: KEEP_ALIVE_MS,
    connectionTimeout: Math.max(IDLE_MS, 4 * heartbeatMs),
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
  const ctx: RouteContext = {
    app,
    backend,
    users,
    sessions,
    userOf: (token) => users.authenticate(token) ?? sessions.authenticate(token),
  };
  const streams = new EventStreams({ ...DEFAULT_STREAM_LIMITS, ...opts.streamLimits });

  const ajv = validators();
  app.setValidatorCompiler(({ schema, httpPart }) =>
    lazyValidator(() =>
      httpPart === 'body' ? ajv.strict.compile(schema) : ajv.coercing.compile(schema),
    ),
  );
  app.decorateRequest('user', undefined as unknown as User);
  hostGuard(app, opts.hosts ?? LOOPBACK_HOSTS);
  guard(ctx, log);

  registerFileRoutes(ctx);
  registerLockRoutes(ctx);
  registerUserRoutes(ctx);
  registerEventRoutes(ctx, streams, heartbeatMs, log);
  registerSigninRoutes(ctx, streams);
  if (opts.webRoot !== undefined) registerPageRoutes(ctx, opts.webRoot);

  app.addHook('preClose', async () => streams.endAll());
  capConnections(app, log);

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

/** Caps the listener's connections; a refusal is logged at most once per interval, with a count. */
function capConnections(app: FastifyInstance, log: Logger): void {
  app.server.maxConnections = MAX_CONNECTIONS;
  let dropped = 0;
  let warned = -Infinity;
  app.server.on('drop', () => {
    dropped++;
    if (Date.now() - warned < DROP_WARN_MS) return;
    warned = Date.now();
    log.warn(
      { dropped },
      `refused ${dropped} client connection(s) since the last such warning: ${MAX_CONNECTIONS} ` +
        'are open already. Are clients leaving connections open? If they are not yours, ' +
        'restrict who can reach apiListen',
    );
    dropped = 0;
  });
}

/**
 * Refuses, with 421 Misdirected Request, every request whose `Host` is not
 * one of `hosts`: a page elsewhere that points its own name at this device
 * (DNS rebinding) gets nothing, not even the web page. Runs before
 * authentication, for every route and for unknown paths.
 */
function hostGuard(app: FastifyInstance, hosts: readonly string[]): void {
  const allowed = new Set(hosts);
  app.addHook('onRequest', async (req, reply) => {
    const problem = hostProblem(req.headers.host, allowed);
    if (problem !== undefined) return sendError(reply, 421, 'MISDIRECTED', problem);
  });
}

/**
 * Installs what runs around every route: authentication first, the 404 for
 * unknown paths, and the error handler that gives every failure the API's
 * error form (internal errors are logged to `log`, not shown).
 */
function guard({ app, userOf }: RouteContext, log: Logger): void {
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
}

/** One validation problem, the way a person reads it. */
interface SchemaProblem {
  readonly instancePath: string;
  readonly keyword: string;
  readonly message?: string;
  readonly params: Record<string, unknown>;
}

/** Turns schema validation errors into one sentence: `Invalid query: limit must be <= 10000`. */
function describeValidation(errors: readonly SchemaProblem[], part: string): string {
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

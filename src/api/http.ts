/**
 * What every group of client API routes shares: the path prefix, the error
 * reply, the bearer token of a request, and the checks that turn a client's
 * path into a folder-relative one.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { LockstepError } from '../base/errors.js';
import { pathProblem } from '../core/path.js';
import type { ClientBackend, User } from './backend.js';
import type { SessionStore } from './sessions.js';
import type { UserStore } from '../config/users.js';

/** The API's path prefix. */
export const API_PREFIX = '/api/v1';

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

/** What a group of routes is registered with: the server and what it serves. */
export interface RouteContext {
  readonly app: FastifyInstance;
  readonly backend: ClientBackend;
  readonly users: UserStore;
  readonly sessions: SessionStore;
  /** The user of a user token or web session, as of now. */
  userOf(token: string): User | undefined;
}

/** Sends `{ error: { code, message } }` with `status`. */
export function sendError(reply: FastifyReply, status: number, code: string, message: string) {
  return reply.code(status).send({ error: { code, message } });
}

/** The bearer token of a request's Authorization header. */
export function tokenOf(req: FastifyRequest): string | undefined {
  const header = req.headers.authorization;
  if (typeof header !== 'string') return undefined;
  return /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header)?.[1];
}

/** The `*` param of a wildcard route: the rest of the path, percent-decoded. */
export function wildcardPath(req: FastifyRequest): string {
  return (req.params as { '*': string })['*'];
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

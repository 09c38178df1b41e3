/**
 * The web page and its sign-in: sign-in codes and sessions (made with a user
 * token), the public code exchange, sign-out, and the page's files, served
 * without a token (they hold no data).
 */
import type { FastifyRequest } from 'fastify';
import { LockstepError } from '../base/errors.js';
import type { EventStreams } from './event-routes.js';
import { API_PREFIX, sendError, tokenOf, type RouteContext } from './http.js';
import { routeSchemas } from './schemas.js';
import { loadPage, PAGE_HEADERS } from './web-page.js';

/**
 * Registers the sign-in routes; a sign-out ends the event `streams` it made
 * stale.
 */
export function registerSigninRoutes(
  { app, users, sessions }: RouteContext,
  streams: EventStreams,
): void {
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
    if (signedOut) streams.endStale();
    return { signedOut };
  });
}

/** Serves the built web page in `webRoot` at `/`, without a token. */
export function registerPageRoutes({ app }: RouteContext, webRoot: string): void {
  for (const [url, file] of loadPage(webRoot) ?? []) {
    app.get(url, { config: { public: true } }, async (_req, reply) =>
      reply
        .headers(PAGE_HEADERS)
        .header('content-type', file.type)
        .header('cache-control', file.cacheControl)
        .send(file.body),
    );
  }
}

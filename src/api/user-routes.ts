/**
 * The client API's user routes: list the cluster's users, add one (its
 * token is in the reply, shown only then), remove one. The backend sends
 * changes to the lock authority's device, which holds the cluster's table.
 */
import { LockstepError } from '../base/errors.js';
import type { UserDirectoryApi } from './backend.js';
import { API_PREFIX, type RouteContext } from './http.js';
import { errorSchema } from './schemas.js';

const str = { type: 'string' } as const;
const userInfo = {
  type: 'object',
  required: ['name', 'admin', 'created'],
  additionalProperties: false,
  properties: { name: str, admin: { type: 'boolean' }, created: str },
} as const;
const errors = Object.fromEntries(
  [400, 401, 403, 404, 409, 429, 500, 503].map((s) => [s, errorSchema]),
);
const noQuery = { type: 'object', additionalProperties: false, properties: {} } as const;
const nameParam = {
  type: 'object',
  required: ['name'],
  properties: { name: { type: 'string', minLength: 1, maxLength: 64 } },
} as const;

/** Registers the routes under `/users`. */
export function registerUserRoutes({ app, backend }: RouteContext): void {
  const users = (): UserDirectoryApi => {
    if (backend.users === undefined) {
      throw new LockstepError('NOT_FOUND', 'This device does not manage users');
    }
    return backend.users;
  };

  app.get(
    `${API_PREFIX}/users`,
    {
      schema: {
        querystring: noQuery,
        response: {
          200: {
            type: 'object',
            required: ['users'],
            additionalProperties: false,
            properties: { users: { type: 'array', items: userInfo } },
          },
          ...errors,
        },
      },
    },
    async () => ({ users: users().list() }),
  );

  app.post(
    `${API_PREFIX}/users`,
    {
      schema: {
        querystring: noQuery,
        body: {
          type: 'object',
          required: ['name'],
          additionalProperties: false,
          properties: {
            name: { type: 'string', minLength: 1, maxLength: 200 },
            admin: { type: 'boolean' },
            replace: { type: 'boolean' },
          },
        },
        response: {
          201: {
            type: 'object',
            required: ['name', 'admin', 'created', 'token'],
            additionalProperties: false,
            properties: { ...userInfo.properties, token: str },
          },
          ...errors,
        },
      },
    },
    async (req, reply) => {
      const body = req.body as { name: string; admin?: boolean; replace?: boolean };
      const made = await users().add(
        body.name,
        { admin: body.admin === true, replace: body.replace === true },
        req.user,
      );
      return reply.code(201).send(made);
    },
  );

  app.delete(
    `${API_PREFIX}/users/:name`,
    { schema: { params: nameParam, querystring: noQuery, response: { 200: userInfo, ...errors } } },
    async (req) => users().remove((req.params as { name: string }).name, req.user),
  );
}

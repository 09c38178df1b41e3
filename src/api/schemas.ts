/**
 * JSON schemas of the client API: every request's body, query and params,
 * and every reply. The server validates requests with them and serializes
 * replies through them (so a field the contract does not name never leaves
 * the device); tests check the CLI's `--json` output against them.
 */

/** Longest path a client may send, in characters. */
const MAX_PATH_CHARS = 4096;
/** Entries in one page of the listing unless asked. */
const DEFAULT_PAGE = 1000;
/** Most entries in one page of the listing. */
const MAX_PAGE = 200_000;
/** Longest lock TTL, in seconds: a year. */
const MAX_TTL_S = 366 * 24 * 3600;
/** Longest lock reason, in characters. */
const MAX_REASON_CHARS = 1000;

const str = { type: 'string' } as const;
const time = { type: 'string', description: 'ISO 8601' } as const;
const count = { type: 'integer', minimum: 0 } as const;

const deviceRefSchema = {
  type: 'object',
  required: ['id', 'short', 'name'],
  additionalProperties: false,
  properties: { id: str, short: str, name: str },
} as const;

const deviceRefProps = deviceRefSchema.properties;

export const lockInfoSchema = {
  type: 'object',
  required: ['id', 'path', 'owner', 'device', 'created', 'expires', 'reason', 'scope'],
  additionalProperties: false,
  properties: {
    id: str,
    path: str,
    owner: str,
    device: deviceRefSchema,
    created: time,
    expires: { type: ['string', 'null'] },
    reason: str,
    scope: { type: 'string', enum: ['file', 'directory'] },
  },
} as const;

const nullableLock = {
  ...lockInfoSchema,
  type: ['object', 'null'],
} as const;

export const listEntrySchema = {
  type: 'object',
  required: ['name', 'path', 'type', 'size', 'modified', 'lock', 'devices', 'syncing', 'conflict'],
  additionalProperties: false,
  properties: {
    name: str,
    path: str,
    type: { type: 'string', enum: ['file', 'directory', 'symlink'] },
    size: count,
    modified: time,
    lock: nullableLock,
    devices: { type: 'array', items: deviceRefSchema },
    syncing: {
      type: ['object', 'null'],
      required: ['done', 'total'],
      additionalProperties: false,
      properties: { done: count, total: count },
    },
    conflict: { type: 'boolean' },
  },
} as const;

export const listPageSchema = {
  type: 'object',
  required: ['dir', 'total', 'entries'],
  additionalProperties: false,
  properties: { dir: str, total: count, entries: { type: 'array', items: listEntrySchema } },
} as const;

export const locksSchema = {
  type: 'object',
  required: ['locks'],
  additionalProperties: false,
  properties: { locks: { type: 'array', items: lockInfoSchema } },
} as const;

export const statusSchema = {
  type: 'object',
  required: [
    'device',
    'peers',
    'lockAuthority',
    'toSync',
    'transfers',
    'local',
    'stopped',
    'problems',
  ],
  additionalProperties: false,
  properties: {
    device: {
      type: 'object',
      required: ['id', 'short', 'name', 'folder', 'version'],
      additionalProperties: false,
      properties: { ...deviceRefProps, folder: str, version: str },
    },
    peers: {
      type: 'array',
      items: {
        type: 'object',
        required: ['id', 'short', 'name', 'address', 'connected', 'lastSeen', 'error'],
        additionalProperties: false,
        properties: {
          ...deviceRefProps,
          address: str,
          connected: { type: 'boolean' },
          lastSeen: { type: ['string', 'null'] },
          error: { type: ['string', 'null'] },
        },
      },
    },
    lockAuthority: { ...deviceRefSchema, type: ['object', 'null'] },
    toSync: {
      type: 'object',
      required: ['files', 'bytes'],
      additionalProperties: false,
      properties: { files: count, bytes: count },
    },
    transfers: {
      type: 'array',
      items: {
        type: 'object',
        required: ['path', 'done', 'total'],
        additionalProperties: false,
        properties: { path: str, done: count, total: count },
      },
    },
    local: {
      type: 'object',
      required: ['files', 'bytes'],
      additionalProperties: false,
      properties: { files: count, bytes: count },
    },
    stopped: { type: ['string', 'null'] },
    problems: {
      type: 'array',
      items: {
        type: 'object',
        required: ['path', 'message'],
        additionalProperties: false,
        properties: { path: str, message: str },
      },
    },
  },
} as const;

export const userSchema = {
  type: 'object',
  required: ['name', 'admin'],
  additionalProperties: false,
  properties: { name: str, admin: { type: 'boolean' } },
} as const;

/** A one-time sign-in code for the web page (`POST /signin-codes`). */
const signinCodeSchema = {
  type: 'object',
  required: ['code', 'expires', 'user'],
  additionalProperties: false,
  properties: { code: str, expires: time, user: userSchema },
} as const;

/** A web session, exchanged for a sign-in code (`POST /signin`) or made for a user token (`POST /sessions`). */
const sessionSchema = {
  type: 'object',
  required: ['token', 'user', 'expires'],
  additionalProperties: false,
  properties: { token: str, user: userSchema, expires: time },
} as const;

export const errorSchema = {
  type: 'object',
  required: ['error'],
  additionalProperties: false,
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      additionalProperties: false,
      properties: { code: str, message: str },
    },
  },
} as const;

/** One Server-Sent Event's data: a `ClientEvent`. */
export const clientEventSchema = {
  type: 'object',
  required: ['type', 'time'],
  properties: {
    type: {
      type: 'string',
      enum: [
        'added',
        'modified',
        'deleted',
        'synced',
        'conflict',
        'locked',
        'unlocked',
        'expired',
        'forced',
        'dropped',
        'moved',
        'connected',
        'disconnected',
        'authority',
      ],
    },
    time: time,
    path: str,
    device: deviceRefSchema,
    size: count,
    oldSize: count,
    deleted: { type: 'boolean' },
    durationMs: { type: 'number', minimum: 0 },
    copy: str,
    lock: lockInfoSchema,
    by: str,
    from: str,
    reason: str,
  },
  allOf: [
    {
      if: { properties: { type: { enum: ['added', 'modified', 'deleted'] } } },
      then: { required: ['path', 'device', 'size'] },
    },
    {
      if: { properties: { type: { const: 'synced' } } },
      then: { required: ['path', 'device', 'deleted'] },
    },
    {
      if: { properties: { type: { const: 'conflict' } } },
      then: { required: ['path', 'copy', 'device'] },
    },
    {
      if: {
        properties: {
          type: { enum: ['locked', 'unlocked', 'expired', 'forced', 'dropped', 'moved'] },
        },
      },
      then: { required: ['lock'] },
    },
    {
      if: { properties: { type: { const: 'moved' } } },
      then: { required: ['from'] },
    },
    {
      if: { properties: { type: { enum: ['connected', 'disconnected'] } } },
      then: { required: ['device'] },
    },
    {
      if: { properties: { type: { const: 'authority' } } },
      then: { required: ['device', 'reason'] },
    },
  ],
} as const;

/** The replies of a route whose success is `ok` (status `okStatus`). */
function replies(ok: object, okStatus = 200): Record<string, object> {
  return {
    [okStatus]: ok,
    400: errorSchema,
    401: errorSchema,
    403: errorSchema,
    404: errorSchema,
    409: errorSchema,
    423: errorSchema,
    429: errorSchema,
    500: errorSchema,
    503: errorSchema,
  };
}

const pathParam = {
  type: 'object',
  required: ['*'],
  additionalProperties: false,
  properties: { '*': { type: 'string', minLength: 1, maxLength: MAX_PATH_CHARS } },
} as const;

/** The `schema` of each route, as Fastify takes it. */
export const routeSchemas = {
  listFiles: {
    querystring: {
      type: 'object',
      additionalProperties: false,
      properties: {
        dir: { type: 'string', maxLength: MAX_PATH_CHARS, default: '' },
        sort: { type: 'string', enum: ['name', 'size', 'modified'], default: 'name' },
        order: { type: 'string', enum: ['asc', 'desc'], default: 'asc' },
        offset: { type: 'integer', minimum: 0, default: 0 },
        limit: { type: 'integer', minimum: 1, maximum: MAX_PAGE, default: DEFAULT_PAGE },
        recursive: { type: 'boolean', default: false },
      },
    },
    response: replies(listPageSchema),
  },
  file: {
    params: pathParam,
    querystring: { type: 'object', additionalProperties: false, properties: {} },
    response: replies(listEntrySchema),
  },
  locks: {
    querystring: { type: 'object', additionalProperties: false, properties: {} },
    response: replies(locksSchema),
  },
  lock: {
    querystring: { type: 'object', additionalProperties: false, properties: {} },
    body: {
      type: 'object',
      required: ['path'],
      additionalProperties: false,
      properties: {
        path: { type: 'string', minLength: 1, maxLength: MAX_PATH_CHARS },
        ttl: { type: 'integer', minimum: 1, maximum: MAX_TTL_S, description: 'seconds' },
        reason: { type: 'string', maxLength: MAX_REASON_CHARS },
      },
    },
    response: replies(lockInfoSchema, 201),
  },
  unlock: {
    params: pathParam,
    querystring: {
      type: 'object',
      additionalProperties: false,
      properties: { force: { type: 'boolean', default: false } },
    },
    response: replies(lockInfoSchema),
  },
  moveAuthority: {
    querystring: { type: 'object', additionalProperties: false, properties: {} },
    body: {
      type: 'object',
      required: ['device'],
      additionalProperties: false,
      properties: { device: { type: 'string', minLength: 1, maxLength: 200 } },
    },
    response: replies({
      type: 'object',
      required: ['from', 'to', 'locks'],
      additionalProperties: false,
      properties: { from: deviceRefSchema, to: deviceRefSchema, locks: count },
    }),
  },
  status: {
    querystring: { type: 'object', additionalProperties: false, properties: {} },
    response: replies(statusSchema),
  },
  writeFile: {
    params: pathParam,
    querystring: { type: 'object', additionalProperties: false, properties: {} },
    response: replies({
      type: 'object',
      additionalProperties: false,
      required: ['path', 'size'],
      properties: { path: { type: 'string' }, size: { type: 'integer', minimum: 0 } },
    }),
  },
  removeFile: {
    params: pathParam,
    querystring: { type: 'object', additionalProperties: false, properties: {} },
    response: replies({
      type: 'object',
      additionalProperties: false,
      required: ['path'],
      properties: { path: { type: 'string' } },
    }),
  },
  events: {
    querystring: { type: 'object', additionalProperties: false, properties: {} },
  },
  whoami: {
    querystring: { type: 'object', additionalProperties: false, properties: {} },
    response: replies(userSchema),
  },
  signinCode: {
    querystring: { type: 'object', additionalProperties: false, properties: {} },
    response: replies(signinCodeSchema, 201),
  },
  createSession: {
    querystring: { type: 'object', additionalProperties: false, properties: {} },
    response: replies(sessionSchema, 201),
  },
  signin: {
    querystring: { type: 'object', additionalProperties: false, properties: {} },
    body: {
      type: 'object',
      required: ['code'],
      additionalProperties: false,
      properties: { code: { type: 'string', minLength: 1, maxLength: 256 } },
    },
    response: replies(sessionSchema),
  },
  signout: {
    querystring: { type: 'object', additionalProperties: false, properties: {} },
    response: replies({
      type: 'object',
      required: ['signedOut'],
      additionalProperties: false,
      properties: { signedOut: { type: 'boolean' } },
    }),
  },
} as const;

/**
 * The client API's file routes: the merged listing, one path's entry,
 * writing and deleting a file, and the device's status and the caller.
 */
import { LockstepError } from '../base/errors.js';
import type { ListQuery } from './backend.js';
import {
  API_PREFIX,
  normalizeDir,
  normalizePath,
  wildcardPath,
  type RouteContext,
} from './http.js';
import { routeSchemas } from './schemas.js';

/** Largest file written through the API (the body streams to disk). */
const WRITE_LIMIT = 64 * 1024 * 1024 * 1024;

/** Registers the routes under `/files`, `/status` and `/whoami`. */
export function registerFileRoutes({ app, backend }: RouteContext): void {
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
}

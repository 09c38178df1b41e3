/**
 * The client API's lock routes: list the locks, lock a path, unlock it. The
 * backend forwards to the lock authority; a refusal comes back as its error
 * code (`LOCKED` is 423).
 */
import { API_PREFIX, normalizePath, wildcardPath, type RouteContext } from './http.js';
import { routeSchemas } from './schemas.js';

/** Registers the routes under `/locks`. */
export function registerLockRoutes({ app, backend }: RouteContext): void {
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

  // Registered before `/locks/*`'s DELETE; a POST here never names a path.
  app.post(`${API_PREFIX}/locks/authority`, { schema: routeSchemas.moveAuthority }, async (req) => {
    const body = req.body as { device: string };
    return backend.moveAuthority(body.device, req.user);
  });

  app.delete(`${API_PREFIX}/locks/*`, { schema: routeSchemas.unlock }, async (req) => {
    const { force } = req.query as { force: boolean };
    return backend.unlock(normalizePath(wildcardPath(req)), req.user, { force });
  });
}

/**
 * The client API's live events: `GET /events` is a Server-Sent Events stream
 * of the backend's events, with heartbeats. A stream lives no longer than
 * the token it was opened with: it is checked at each heartbeat and at
 * sign-out.
 */
import type { ServerResponse } from 'node:http';
import type { ClientEvent } from './backend.js';
import { API_PREFIX, tokenOf, type RouteContext } from './http.js';
import { routeSchemas } from './schemas.js';

/** The open event streams of one server, each with a check that its token is still valid. */
export class EventStreams {
  private readonly open = new Map<ServerResponse, () => boolean>();

  /** Counts `res` as open while its token passes `valid`. */
  add(res: ServerResponse, valid: () => boolean): void {
    this.open.set(res, valid);
  }

  /** Forgets a closed stream. */
  delete(res: ServerResponse): void {
    this.open.delete(res);
  }

  /** Ends the streams whose token is no longer valid (signed out, expired, user gone). */
  endStale(): void {
    for (const [res, valid] of this.open) if (!valid()) res.end();
  }

  /** Ends every stream (the server is closing). */
  endAll(): void {
    for (const res of this.open.keys()) res.end();
  }
}

/** One SSE frame for an event: `event:` its type, `data:` its JSON. */
function sseFrame(ev: ClientEvent): string {
  // JSON.stringify escapes newlines, so the data is always one line.
  return `event: ${ev.type}\ndata: ${JSON.stringify(ev)}\n\n`;
}

/** Registers `GET /events`; its streams are kept in `streams`, with a heartbeat every `heartbeatMs`. */
export function registerEventRoutes(
  { app, backend, userOf }: RouteContext,
  streams: EventStreams,
  heartbeatMs: number,
): void {
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
    streams.add(res, valid);
    res.on('close', end);
  });
}

/**
 * The client API's live events: `GET /events` is a Server-Sent Events stream
 * of the backend's events, with heartbeats. A stream lives no longer than
 * the token it was opened with: it is checked at each heartbeat and at
 * sign-out.
 *
 * Streams are capped, per user and in total, and none is buffered without
 * bound: a stream whose reader falls behind (more than
 * {@link StreamLimits.backlogBytes} waiting, or nothing taken for
 * {@link StreamLimits.stallMs}) is closed. A client that reconnects gets the
 * events from then on, as after any other lost connection.
 */
import type { ServerResponse } from 'node:http';
import type { Logger } from '../base/log.js';
import type { ClientEvent } from './backend.js';
import { API_PREFIX, sendError, tokenOf, type RouteContext } from './http.js';
import { routeSchemas } from './schemas.js';

/** How many event streams may be open, and how far behind a reader may fall. */
export interface StreamLimits {
  /** Streams one user may hold open at once (all its tokens and web sessions together). */
  readonly perUser: number;
  /** Streams open at once on the device, every user together. */
  readonly total: number;
  /** Bytes a stream may hold waiting for its reader; past them it is closed. */
  readonly backlogBytes: number;
  /** Milliseconds a stream may wait for its reader to take anything; past them it is closed. */
  readonly stallMs: number;
}

/** The limits a device runs with. */
export const DEFAULT_STREAM_LIMITS: StreamLimits = {
  perUser: 16,
  total: 256,
  backlogBytes: 1024 * 1024,
  stallMs: 60_000,
};

/** Why a stream may not open: the HTTP status and the message. */
interface Refusal {
  readonly status: number;
  readonly message: string;
}

/** One open stream: its user and a check that its token is still valid. */
interface OpenStream {
  readonly user: string;
  readonly valid: () => boolean;
}

/** The open event streams of one server, counted per user. */
export class EventStreams {
  private readonly open = new Map<ServerResponse, OpenStream>();
  private readonly perUser = new Map<string, number>();

  constructor(readonly limits: StreamLimits = DEFAULT_STREAM_LIMITS) {}

  /** Why `user` may not open one more stream now, or undefined when it may. */
  refusal(user: string): Refusal | undefined {
    const { perUser, total } = this.limits;
    const mine = this.perUser.get(user) ?? 0;
    if (mine >= perUser) {
      return {
        status: 429,
        message:
          `User ${user} has ${mine} event streams open, the most one user may have: ` +
          'close some (other `lockstep watch` commands or web page tabs) and try again',
      };
    }
    if (this.open.size >= total) {
      return {
        status: 503,
        message:
          `This device has ${this.open.size} event streams open, the most it serves at once: ` +
          'try again later',
      };
    }
    return undefined;
  }

  /** Counts `res` as a stream of `user` while its token passes `valid`. */
  add(res: ServerResponse, user: string, valid: () => boolean): void {
    if (this.open.has(res)) return;
    this.open.set(res, { user, valid });
    this.perUser.set(user, (this.perUser.get(user) ?? 0) + 1);
  }

  /** Forgets a closed stream. */
  delete(res: ServerResponse): void {
    const s = this.open.get(res);
    if (s === undefined) return;
    this.open.delete(res);
    const left = (this.perUser.get(s.user) ?? 1) - 1;
    if (left > 0) this.perUser.set(s.user, left);
    else this.perUser.delete(s.user);
  }

  /** How many streams are open (of `user`, or in total). */
  count(user?: string): number {
    return user === undefined ? this.open.size : (this.perUser.get(user) ?? 0);
  }

  /** Ends the streams whose token is no longer valid (signed out, expired, user gone). */
  endStale(): void {
    for (const [res, s] of this.open) if (!s.valid()) res.end();
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

/**
 * A writer to `res` that never buffers without bound: once more than
 * `limits.backlogBytes` wait for the reader, or the reader has taken nothing
 * for `limits.stallMs` while some wait, it calls `behind` with the bytes
 * waiting (once) and writes nothing more.
 */
function boundedWriter(
  res: ServerResponse,
  limits: StreamLimits,
  behind: (waiting: number) => void,
): { write(text: string): void; stop(): void } {
  let stall: NodeJS.Timeout | undefined;
  let gaveUp = false;
  const giveUp = () => {
    if (gaveUp) return;
    gaveUp = true;
    clearTimeout(stall);
    behind(res.writableLength);
  };
  const drained = () => {
    clearTimeout(stall);
    stall = undefined;
  };
  return {
    write(text: string): void {
      if (gaveUp || res.destroyed || res.writableEnded) return;
      const flushed = res.write(text);
      if (res.writableLength > limits.backlogBytes) return giveUp();
      if (!flushed && stall === undefined) {
        stall = setTimeout(giveUp, limits.stallMs);
        stall.unref();
        res.once('drain', drained);
      }
    },
    stop(): void {
      clearTimeout(stall);
      res.off('drain', drained);
    },
  };
}

/**
 * Registers `GET /events`; its streams are kept (and capped) in `streams`,
 * with a heartbeat every `heartbeatMs`. A stream closed for a slow reader is
 * logged to `log`.
 */
export function registerEventRoutes(
  { app, backend, userOf }: RouteContext,
  streams: EventStreams,
  heartbeatMs: number,
  log: Logger,
): void {
  app.get(`${API_PREFIX}/events`, { schema: routeSchemas.events }, (req, reply) => {
    const user = req.user.name;
    const refused = streams.refusal(user);
    if (refused !== undefined) {
      reply.header('retry-after', '10');
      void sendError(reply, refused.status, 'TOO_MANY', refused.message);
      return;
    }
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    const out = boundedWriter(res, streams.limits, (waiting) => {
      log.warn(
        { user, waiting },
        `closed an event stream of ${user}: its reader fell behind (${waiting} bytes not taken)`,
      );
      res.destroy();
    });
    // Tell EventSource how soon to reconnect, and flush the headers now.
    out.write('retry: 2000\n: connected\n\n');
    const onEvent = (ev: ClientEvent) => out.write(sseFrame(ev));
    // The token is checked again at each heartbeat (and at sign-out): a
    // stream lives no longer than the session or user it was opened with.
    const token = tokenOf(req) ?? '';
    const valid = () => userOf(token) !== undefined;
    const heartbeat = setInterval(() => {
      if (valid()) out.write(': heartbeat\n\n');
      else res.end();
    }, heartbeatMs);
    heartbeat.unref();
    const end = () => {
      clearInterval(heartbeat);
      out.stop();
      backend.events.off('event', onEvent);
      streams.delete(res);
    };
    backend.events.on('event', onEvent);
    streams.add(res, user, valid);
    res.on('close', end);
  });
}

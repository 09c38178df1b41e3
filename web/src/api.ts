/**
 * The page's client of the device's API (`/api/v1`), typed by the same
 * contract as the CLI (`src/api/backend.ts`). Every data call sends the
 * bearer token; live events are read with a streaming fetch (EventSource
 * cannot send the header).
 */
import type {
  ClientEvent,
  ListPage,
  LockInfo,
  Status,
  User,
  WebSession,
} from '../../src/api/backend.js';
import { readSse } from '../../src/cli/sse.js';

const BASE = '/api/v1';
/** Silence on the event stream (the device sends a heartbeat every 15 s) after which it is reopened. */
const IDLE_MS = 45_000;
/** Wait before reopening a stream that ended or failed. */
const RETRY_MS = 2000;

/** A failed request: the device's `{ error: { code, message } }`, or `UNREACHABLE`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** Turns a reply that is not OK into an {@link ApiError}. */
async function errorOf(res: Response): Promise<ApiError> {
  let code = `HTTP_${res.status}`;
  let message = `The device answered HTTP ${res.status}`;
  try {
    const body = (await res.json()) as { error?: { code?: unknown; message?: unknown } };
    if (typeof body.error?.code === 'string') code = body.error.code;
    if (typeof body.error?.message === 'string') message = body.error.message;
  } catch {
    // not our JSON: keep the status line
  }
  return new ApiError(res.status, code, message);
}

/** Sends a request; resolves with the reply's JSON or throws an {@link ApiError}. */
async function request<T>(
  method: string,
  path: string,
  token: string | undefined,
  body?: unknown,
): Promise<T> {
  let res: Response;
  try {
    res = await fetch(`${BASE}${path}`, {
      method,
      headers: {
        accept: 'application/json',
        ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  } catch {
    throw new ApiError(0, 'UNREACHABLE', 'The device does not answer: is it still running?');
  }
  if (!res.ok) throw await errorOf(res);
  return (await res.json()) as T;
}

/** Encodes a folder-relative path for a URL, segment by segment. */
export function encodePath(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/');
}

/** Exchanges a one-time sign-in code (from `lockstep open`) for a session. */
export function exchangeCode(code: string): Promise<WebSession> {
  return request<WebSession>('POST', '/signin', undefined, { code });
}

/** A session for a user token (pasted into the sign-in form): the page keeps only the session. */
export function createSession(token: string): Promise<WebSession> {
  return request<WebSession>('POST', '/sessions', token, {});
}

/** The API as one signed-in user. */
export class Api {
  constructor(readonly token: string) {}

  whoami(): Promise<User> {
    return request('GET', '/whoami', this.token);
  }

  /** One directory's entries ('' for the folder root), by name. */
  list(dir: string): Promise<ListPage> {
    const q = new URLSearchParams({ dir, limit: '10000' });
    return request('GET', `/files?${q.toString()}`, this.token);
  }

  status(): Promise<Status> {
    return request('GET', '/status', this.token);
  }

  lock(path: string, opts: { ttlS?: number; reason?: string }): Promise<LockInfo> {
    return request('POST', '/locks', this.token, {
      path,
      ...(opts.ttlS === undefined ? {} : { ttl: opts.ttlS }),
      ...(opts.reason === undefined || opts.reason === '' ? {} : { reason: opts.reason }),
    });
  }

  unlock(path: string, force: boolean): Promise<LockInfo> {
    return request('DELETE', `/locks/${encodePath(path)}${force ? '?force=true' : ''}`, this.token);
  }

  /** Ends this session on the device; throws an {@link ApiError} if that failed. */
  async signOut(): Promise<void> {
    await request('POST', '/signout', this.token, {});
  }

  /**
   * Follows the device's live events until `signal` aborts, reopening the
   * stream after it ends, fails or goes silent. `onState` tells whether the
   * stream is open; a refused token ends it with `unauthorized`.
   */
  async follow(
    onEvent: (ev: ClientEvent) => void,
    onState: (state: 'live' | 'reconnecting' | 'unauthorized') => void,
    signal: AbortSignal,
  ): Promise<void> {
    while (!signal.aborted) {
      const ctl = new AbortController();
      const stop = () => ctl.abort();
      signal.addEventListener('abort', stop);
      let last = Date.now();
      const idle = setInterval(() => {
        if (Date.now() - last > IDLE_MS) ctl.abort();
      }, 5000);
      try {
        const res = await fetch(`${BASE}/events`, {
          headers: { authorization: `Bearer ${this.token}`, accept: 'text/event-stream' },
          signal: ctl.signal,
          cache: 'no-store',
        });
        if (res.status === 401) {
          onState('unauthorized');
          return;
        }
        if (res.ok && res.body !== null) {
          onState('live');
          await readSse(
            res.body,
            (msg) => {
              try {
                onEvent(JSON.parse(msg.data) as ClientEvent);
              } catch {
                // not an event of ours: skip it
              }
            },
            () => (last = Date.now()),
          );
        }
      } catch {
        // the stream failed or was aborted: reopen below unless asked to stop
      } finally {
        clearInterval(idle);
        signal.removeEventListener('abort', stop);
      }
      if (signal.aborted) return;
      onState('reconnecting');
      await new Promise((r) => setTimeout(r, RETRY_MS));
    }
  }
}

/**
 * The client API of a test device, reached over real HTTP on 127.0.0.1.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestDevice } from './cluster.js';

/** Where a device's client API listens, and the administrator's token. */
export interface Api {
  url: string;
  token: string;
}

export function apiOf(d: TestDevice): Api {
  const config = JSON.parse(readFileSync(join(d.home, 'config.json'), 'utf8')) as {
    apiListen: string;
  };
  return {
    url: `http://${config.apiListen}`,
    token: readFileSync(join(d.home, 'token'), 'utf8').trim(),
  };
}

/** One JSON request; resolves with the status and the parsed reply (or its text). */
export async function call(
  api: Api,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${api.url}/api/v1${path}`, {
    method,
    headers: {
      authorization: `Bearer ${api.token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    parsed = { text };
  }
  return { status: res.status, body: parsed };
}

/** The paths this device lists as locked. */
export async function lockedPaths(d: TestDevice): Promise<string[]> {
  const r = await call(apiOf(d), 'GET', '/locks');
  return ((r.body.locks ?? []) as { path: string }[]).map((l) => l.path).sort();
}

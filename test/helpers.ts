/**
 * Helpers for end-to-end tests that run the built `lockstep` binary.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { ServeProcess, runLockstep } from '../src/cli/local-cluster.js';

export const BIN = fileURLToPath(new URL('../bin/lockstep.js', import.meta.url));

/** The URL of the built module `rel` (under dist/), for a script run by {@link runModule}. */
export const distUrl = (rel: string): string => new URL(`../dist/${rel}`, import.meta.url).href;

/**
 * Runs `source` as an ES module in a child `node` (its own V8 flags and module
 * cache, untouched by the test runner) and returns what it printed.
 *
 * @throws with the child's stderr if it exits non-zero
 */
export function runModule(source: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-child-'));
  try {
    const file = join(dir, 'child.mjs');
    writeFileSync(file, source);
    const r = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 60_000 });
    if (r.status !== 0) throw new Error(`child exited ${r.status}: ${r.stderr}`);
    return r.stdout;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs `lockstep ARGS` to completion. */
export function lockstep(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 30_000,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** A running `lockstep serve` with its output collected (the product's harness). */
export type Served = ServeProcess;

/**
 * Starts `lockstep serve --home HOME`, run through `wrap` (a command and its
 * arguments, e.g. to drop privileges) when given.
 */
export function serve(home: string, wrap: readonly string[] = []): Served {
  return ServeProcess.start({ home, wrap });
}

/** Polls `cond` every 10 ms until it holds or `ms` pass; throws with `what` on timeout. */
export async function waitFor<T>(
  what: string,
  cond: () => T | undefined | false,
  ms = 10_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = cond();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** One local index row, read from the database of a running device. */
export interface Row {
  path: string;
  deleted: number;
  version: string;
  size: number;
  sequence: number;
}

/** Reads the local record of `path` from `db`, read-only, or undefined. */
export function indexRow(db: string, path: string): Row | undefined {
  let d: Database.Database;
  try {
    d = new Database(db, { readonly: true, fileMustExist: true });
  } catch {
    return undefined; // not created yet
  }
  try {
    return d
      .prepare(
        'SELECT path, deleted, version, size, sequence FROM files WHERE device = 1 AND path = ?',
      )
      .get(path) as Row | undefined;
  } catch (err) {
    // The device creates the database, then its schema: until then, nothing.
    if (err instanceof Error && /no such table/.test(err.message)) return undefined;
    throw err;
  } finally {
    d.close();
  }
}

/** Polls the async `cond` every `everyMs` until it holds or `ms` pass; throws with `what` on timeout. */
export async function waitUntil<T>(
  what: string,
  cond: () => Promise<T | undefined | false> | T | undefined | false,
  ms = 10_000,
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Ports handed out by {@link freePort} in this process. */
const handedOut = new Set<number>();

/** Whether `port` can be listened on at 127.0.0.1 right now. */
function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/**
 * A TCP port that was free a moment ago on 127.0.0.1, chosen below the
 * kernel's ephemeral range: a port from that range could be taken by an
 * outgoing connection (another device dialing) before the device listens.
 */
export async function freePort(): Promise<number> {
  let low = 32768;
  try {
    low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').split(/\s+/)[0]);
  } catch {
    // not Linux: keep the usual bound
  }
  const from = Math.max(10_000, low - 12_000);
  const span = Math.max(1, low - from);
  for (let i = 0; i < 200; i++) {
    const port = from + Math.floor(Math.random() * span);
    if (handedOut.has(port) || !(await canListen(port))) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error('no free port found');
}

/** Runs `lockstep ARGS` to completion without blocking the event loop (so several can run at once). */
export function lockstepAsync(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return runLockstep(args, { env, timeoutMs: 30_000 });
}

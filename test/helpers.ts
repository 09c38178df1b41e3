/**
 * Helpers for end-to-end tests that run the built `lockstep` binary.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';

export const BIN = fileURLToPath(new URL('../bin/lockstep.js', import.meta.url));

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

/** A running `lockstep serve` with its output collected. */
export interface Served {
  child: ChildProcess;
  output: () => string;
  /** Sends SIGTERM and resolves with the exit code. */
  stop: (signal?: NodeJS.Signals) => Promise<number | null>;
}

/** Starts `lockstep serve --home HOME`. */
export function serve(home: string): Served {
  const child = spawn(process.execPath, [BIN, 'serve', '--home', home], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    output: () => out,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null) child.kill(signal);
      return exited;
    },
  };
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

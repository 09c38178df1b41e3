/**
 * Real etcd members for tests (Debian's `etcd-server`, /usr/bin/etcd): a
 * three-member cluster on free ports of 127.0.0.1 with its data in a temp
 * dir, healthy before the test goes on, and every member stopped by its PID
 * after the test (registered with `afterEach`/`afterAll`, so also when the
 * test fails).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach } from 'vitest';
import { LocalEtcd } from '../src/cli/local-etcd.js';
import type { Logger } from '../src/base/log.js';
import { freePort } from './helpers.js';

const running = new Set<{ etcd: LocalEtcd; dir: string }>();

async function stopEvery(): Promise<void> {
  for (const r of [...running]) {
    running.delete(r);
    await r.etcd.stopAll('SIGKILL');
    rmSync(r.dir, { recursive: true, force: true });
  }
}

/** Stops every etcd started by {@link startEtcd} after each test (`each`) or after the file. */
export function etcdCleanup(when: 'each' | 'all' = 'each'): void {
  if (when === 'each') afterEach(stopEvery, 30_000);
  else afterAll(stopEvery, 30_000);
}

/** Starts a healthy three-member etcd on free ports. */
export async function startEtcd(size = 3): Promise<LocalEtcd> {
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-etcd-'));
  const etcd = await LocalEtcd.create(dir, size, freePort);
  running.add({ etcd, dir });
  await etcd.startAll();
  return etcd;
}

/** A logger that keeps nothing. */
export const quietLog: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  child: () => quietLog,
};

/**
 * `lockstep serve`: runs the device in the foreground until SIGINT/SIGTERM.
 */
import type { Command } from 'commander';
import { readFileSync, watch } from 'node:fs';
import { startApi, type RunningApi } from '../api/start.js';
import { errorMessage } from '../base/errors.js';
import { CONFIG_FILE, loadConfig, parseHostPort } from '../config/config.js';
import { Cluster } from '../daemon/cluster.js';
import { homePaths, readIdentity, resolveHome } from '../config/home.js';
import { formatBytes } from '../core/human.js';
import { createClientBackend } from '../daemon/client-backend.js';
import { Device } from '../daemon/device.js';
import { createLogger } from '../daemon/log.js';
import { FileLog } from '../daemon/file-log.js';
import { fail } from './output.js';

/** Adds the `serve` command. */
export function registerServe(program: Command): void {
  program
    .command('serve')
    .description(
      'Run this device in the foreground: index the folder and keep watching it, until SIGINT or SIGTERM',
    )
    .option('--home <dir>', 'the device home (default: $LOCKSTEP_HOME, else ~/.config/lockstep)')
    .action(async (opts: { home?: string }) => {
      try {
        await serve(resolveHome(opts.home));
      } catch (err) {
        fail(err);
      }
    });
}

async function serve(home: string): Promise<void> {
  const config = loadConfig(home);
  const { deviceId, keyPem, certPem } = readIdentity(home);
  const paths = homePaths(home);
  const log = createLogger({ dir: paths.logs });
  const device = new Device({
    deviceId,
    name: config.name,
    folder: config.folder,
    dbFile: paths.db,
    log,
    rescanIntervalMs: config.rescanIntervalS * 1000,
  });
  let cluster: Cluster | undefined = undefined;
  let api: RunningApi | undefined = undefined;
  let stopping = false;
  const fileLogs: FileLog[] = [];
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    // Stopping waits for work in flight; it must not wait forever.
    setTimeout(() => {
      log.error('stopping took more than 10 s; exiting anyway');
      log.flush();
      process.exit(1);
    }, 10_000).unref();
    void (api?.close() ?? Promise.resolve())
      .then(() => cluster?.close())
      .then(() => device.close())
      .then(
        () => {
          for (const l of fileLogs) l.flush();
          log.info('stopped cleanly');
          log.flush();
          setTimeout(() => process.exit(0), 50).unref();
        },
        (err: unknown) => {
          log.error({ err: String(err) }, 'error while stopping');
          process.exit(1);
        },
      );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  const indexLog = new FileLog(log, 'indexed');
  fileLogs.push(indexLog);
  device.on('indexed', (records, source) => {
    if (source !== 'watch') return;
    for (const r of records) {
      indexLog.add(
        r,
        r.deleted
          ? `deleted ${r.path}`
          : `indexed ${r.path} (${r.type === 'file' ? formatBytes(r.size) : r.type})`,
      );
    }
  });
  log.info(
    { device: deviceId, name: config.name, folder: config.folder },
    `device ${config.name} (${deviceId.slice(0, 7)}) starting`,
  );
  await device.start();
  if (stopping) return;
  const listen = parseHostPort(config.peerListen, 'peerListen');
  const peersNow = () => loadConfig(home).peers;
  cluster = new Cluster({
    device,
    deviceId,
    folder: config.folder,
    identity: { keyPem, certPem },
    listen,
    peers: config.peers,
    log,
    reloadPeers: peersNow,
    name: config.name,
    lockAuthority: config.lockAuthority,
  });
  const syncLog = new FileLog(log, 'synced');
  fileLogs.push(syncLog);
  cluster.on('applied', (r, kind, copy) => {
    if (copy !== undefined) {
      log.warn(
        { path: r.path, conflictCopy: copy },
        `conflict on ${r.path}: this device's version is kept as ${copy}`,
      );
    }
    // Version-only merges (the same content on both sides) change nothing on disk.
    if (kind === 'version' || kind === 'tombstone') {
      log.debug({ path: r.path, kind, seq: r.sequence }, `recorded the version of ${r.path}`);
    } else {
      syncLog.add(
        r,
        r.deleted
          ? `synced delete of ${r.path}`
          : `synced ${r.path} (${r.type === 'file' ? formatBytes(r.size) : r.type})`,
      );
    }
  });
  await cluster.start();
  // --- The client API (src/api): its one call site. It listens before the
  // line below, which tests and scripts take as "the device is up".
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  const backend = createClientBackend({
    device,
    cluster,
    deviceId,
    name: config.name,
    folder: config.folder,
    version: pkg.version,
  });
  api = await startApi({ backend, home, config, log });
  if (stopping) await api.close();
  // ---
  log.info({ port: cluster.port }, `listening for peers on ${listen.host}:${cluster.port}`);
  // `lockstep peer add` edits the configuration; adopt its peers at once.
  let reload: NodeJS.Timeout | undefined;
  const watcher = watch(home, (_event, name) => {
    if (name !== CONFIG_FILE) return;
    clearTimeout(reload);
    reload = setTimeout(() => {
      try {
        cluster?.setPeers(peersNow());
      } catch (err) {
        log.warn(
          { err: errorMessage(err) },
          'configuration changed but cannot be read; keeping the peers',
        );
      }
    }, 50);
  });
  watcher.unref();
  const t = device.store.totals();
  if (device.stoppedReason === undefined) {
    log.info(
      { files: t.files, bytes: t.bytes },
      `serving ${config.folder}: ${t.files} entries, ${formatBytes(t.bytes)}`,
    );
  }
}

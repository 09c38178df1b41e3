/**
 * The composition root: a device built from its home, in one place. `serve`
 * runs it in the foreground; the demo, the tests and the benchmarks start
 * `lockstep serve` processes (or call this for the local half alone), so
 * every way a device runs is wired here and nowhere else.
 *
 * Order: the index and watcher first (the local half), then peers, then the
 * client API, whose "listening" line callers take as "the device is up".
 * Everything started is owned here and closed in reverse.
 */
import { shortId } from '../core/device-id.js';
import { readFileSync, watch } from 'node:fs';
import { startApi, type RunningApi } from '../api/start.js';
import { Disposables } from '../base/disposable.js';
import { errorMessage } from '../base/errors.js';
import type { Logger } from '../base/log.js';
import {
  CONFIG_FILE,
  CONFIG_VERSION,
  loadConfig,
  parseHostPort,
  saveConfig,
  type Config,
} from '../config/config.js';
import { impliedAuthority, type AuthorityChoice } from '../core/lock-rules.js';
import { homePaths, readIdentity, secureHome } from '../config/home.js';
import { formatBytes } from '../core/human.js';
import type { FileRecord } from '../core/record.js';
import { createClientBackend } from './client-backend.js';
import { Cluster } from './cluster.js';
import { Device, type DeviceEvents } from './device.js';
import { FileLog } from './file-log.js';
import { createLogger } from './log.js';

/** Options of {@link startDevice}. */
export interface StartDeviceOptions {
  /** Where the device logs. @default the home's `logs/`, and the terminal */
  readonly log?: Logger;
  /**
   * `'local'`: the index, the scanner and the watcher only (no peers, no
   * client API), e.g. to measure indexing. @default 'full'
   */
  readonly parts?: 'full' | 'local';
  /** Aborting it stops a start under way: what was started is closed, and the promise resolves. */
  readonly signal?: AbortSignal;
}

/** A running device; {@link close} stops it. */
export interface RunningDevice {
  readonly config: Config;
  readonly deviceId: string;
  readonly log: Logger;
  readonly device: Device;
  /** Peers (absent with `parts: 'local'`, or when the start was aborted first). */
  readonly cluster: Cluster | undefined;
  /** The client API (likewise). */
  readonly api: RunningApi | undefined;
  /** Stops the API, peers and the device, in that order; safe to call twice. */
  close(): Promise<void>;
}

/** The package's version, as `status` reports it. */
function packageVersion(): string {
  const url = new URL('../../package.json', import.meta.url);
  return (JSON.parse(readFileSync(url, 'utf8')) as { version: string }).version;
}

/**
 * Builds and starts the device whose home is `home`.
 *
 * @throws LockstepError if the home or its configuration is unusable, or a
 *   listen address cannot be bound (what was started is closed first)
 */
export async function startDevice(
  home: string,
  opts: StartDeviceOptions = {},
): Promise<RunningDevice> {
  const loaded = loadConfig(home);
  const { deviceId, keyPem, certPem } = readIdentity(home);
  const paths = homePaths(home);
  const log: Logger = opts.log ?? createLogger({ dir: paths.logs });
  privateHome(home, log);
  const config = upgradeConfig(home, loaded, deviceId, log);
  const owned = new Disposables();
  const fileLogs: FileLog[] = [];
  const device = new Device({
    deviceId,
    name: config.name,
    folder: config.folder,
    dbFile: paths.db,
    log,
    rescanIntervalMs: config.rescanIntervalS * 1000,
  });
  let cluster: Cluster | undefined;
  let api: RunningApi | undefined;
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      await api?.close();
      await cluster?.close();
      owned.dispose();
      await device.close();
      for (const l of fileLogs) l.flush();
    })();
    return closing;
  };
  const running = (): RunningDevice => ({
    config,
    deviceId,
    log,
    device,
    cluster,
    api,
    close,
  });
  const aborted = () => opts.signal?.aborted === true;
  // A stop while the local half starts closes the device at once: the first
  // scan of a big folder is not waited for (one queued after it is skipped).
  // Later, stopping closes the parts in reverse order, through `close`.
  const stopEarly = () => void device.close();
  try {
    logIndexed(device, log, fileLogs, owned);
    log.info(
      { device: deviceId, name: config.name, folder: config.folder },
      `device ${config.name} (${shortId(deviceId)}) starting`,
    );
    opts.signal?.addEventListener('abort', stopEarly, { once: true });
    try {
      await device.start();
    } finally {
      opts.signal?.removeEventListener('abort', stopEarly);
    }
    if (aborted() || opts.parts === 'local') return running();
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
      saveAuthority: (choice) => saveAuthority(home, choice),
      home,
    });
    logSynced(cluster, log, fileLogs, owned);
    await cluster.start();
    if (aborted()) return running();
    const backend = createClientBackend({
      device,
      cluster,
      deviceId,
      name: config.name,
      folder: config.folder,
      version: packageVersion(),
    });
    api = await startApi({ backend, home, config, log, adminName: cluster.users.adminName });
    log.info({ port: cluster.port }, `listening for peers on ${listen.host}:${cluster.port}`);
    followPeerConfig(home, cluster, peersNow, log, owned);
  } catch (err) {
    await close().catch(() => undefined);
    throw err;
  }
  const t = device.store.totals();
  if (device.stoppedReason === undefined) {
    log.info(
      { files: t.files, bytes: t.bytes },
      `serving ${config.folder}: ${t.files} entries, ${formatBytes(t.bytes)}`,
    );
  }
  return running();
}

/**
 * Makes the home readable by its user only (files 0600, directories 0700),
 * as a home made by an older version or under a loose umask may not be, and
 * says what it changed or could not change.
 */
function privateHome(home: string, log: Logger): void {
  const { fixed, failed } = secureHome(home);
  if (fixed.length > 0) {
    const shown = fixed.slice(0, 20).map((f) => `${f.path} (was ${f.was.toString(8)})`);
    log.info(
      { fixed: shown, count: fixed.length },
      `made ${fixed.length} ${fixed.length === 1 ? 'entry' : 'entries'} of the home private (files 0600, directories 0700)`,
    );
  }
  for (const f of failed.slice(0, 20)) {
    log.warn(
      { path: f.path, err: f.why },
      `cannot make ${f.path} private (0600/0700): ${f.why}; fix its owner or mode by hand`,
    );
  }
}

/** Logs each locally indexed file (a summary per second past a human pace). */
function logIndexed(device: Device, log: Logger, logs: FileLog[], owned: Disposables): void {
  const indexLog = new FileLog(log, 'indexed');
  logs.push(indexLog);
  const on = (...[records, source]: DeviceEvents['indexed']): void => {
    if (source !== 'watch') return;
    for (const r of records) {
      indexLog.add(
        r,
        r.deleted
          ? `deleted ${r.path}`
          : `indexed ${r.path} (${r.type === 'file' ? formatBytes(r.size) : r.type})`,
      );
    }
  };
  device.on('indexed', on);
  owned.add(() => device.off('indexed', on));
}

/** Logs each file synced from a peer, and every conflict. */
function logSynced(cluster: Cluster, log: Logger, logs: FileLog[], owned: Disposables): void {
  const syncLog = new FileLog(log, 'synced');
  logs.push(syncLog);
  const on = (r: FileRecord, kind: string, copy: string | undefined): void => {
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
  };
  cluster.on('applied', on);
  owned.add(() => cluster.off('applied', on));
}

/**
 * A configuration of version 1 (made before the lock authority was
 * recorded) becomes version 2, recording the authority it implied (the
 * smallest device ID of this device and its peers), so nothing moves.
 */
function upgradeConfig(home: string, config: Config, deviceId: string, log: Logger): Config {
  if (config.version === CONFIG_VERSION) return config;
  if (config.lockAuthority !== undefined) {
    const upgraded: Config = { ...config, version: CONFIG_VERSION };
    saveConfig(home, upgraded);
    return upgraded;
  }
  const device = impliedAuthority(
    deviceId,
    config.peers.map((p) => p.id),
  );
  const upgraded: Config = {
    ...config,
    version: CONFIG_VERSION,
    lockAuthority: config.lockAuthority ?? { kind: 'device', device, epoch: 0 },
  };
  saveConfig(home, upgraded);
  log.info(
    { authority: device },
    `configuration upgraded to version ${CONFIG_VERSION}: lock authority ${device === deviceId ? 'this device' : shortId(device)} recorded (the device that granted locks before)`,
  );
  return upgraded;
}

/** Writes a new choice of lock authority into the configuration as it is on disk now. */
function saveAuthority(home: string, choice: AuthorityChoice): void {
  const now = loadConfig(home);
  const { lockAuthority: _was, ...rest } = now;
  saveConfig(
    home,
    choice.device === undefined
      ? rest
      : { ...rest, lockAuthority: { kind: 'device', device: choice.device, epoch: choice.epoch } },
  );
}

/** `lockstep peer add` edits the configuration: its peers are adopted at once. */
function followPeerConfig(
  home: string,
  cluster: Cluster,
  peersNow: () => Config['peers'],
  log: Logger,
  owned: Disposables,
): void {
  let reload: NodeJS.Timeout | undefined;
  const watcher = watch(home, (_event, name) => {
    if (name !== CONFIG_FILE) return;
    clearTimeout(reload);
    reload = setTimeout(() => {
      try {
        const now = loadConfig(home);
        cluster.setPeers(now.peers);
        cluster.editedAuthority(now.lockAuthority);
      } catch (err) {
        log.warn(
          { err: errorMessage(err) },
          'configuration changed but cannot be read; keeping the peers',
        );
      }
    }, 50);
  });
  watcher.unref();
  owned.add(() => {
    clearTimeout(reload);
    watcher.close();
  });
}

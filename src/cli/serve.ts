/**
 * `lockstep serve`: runs the device in the foreground until SIGINT/SIGTERM.
 */
import type { Command } from 'commander';
import { loadConfig } from '../config/config.js';
import { homePaths, readIdentity, resolveHome } from '../config/home.js';
import { formatBytes } from '../core/human.js';
import { Device } from '../daemon/device.js';
import { createLogger } from '../daemon/log.js';
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
  const { deviceId } = readIdentity(home);
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
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    void device.close().then(
      () => {
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
  device.on('indexed', (records, source) => {
    if (source !== 'watch') return;
    for (const r of records) {
      log.info(
        { path: r.path, seq: r.sequence },
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
  const t = device.store.totals();
  if (device.stoppedReason === undefined) {
    log.info(
      { files: t.files, bytes: t.bytes },
      `serving ${config.folder}: ${t.files} entries, ${formatBytes(t.bytes)}`,
    );
  }
}

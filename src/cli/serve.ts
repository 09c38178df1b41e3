/**
 * `lockstep serve`: runs the device in the foreground until SIGINT/SIGTERM.
 */
import type { Command } from 'commander';
import { loadConfig } from '../config/config.js';
import { homePaths, resolveHome } from '../config/home.js';
import { createLogger } from '../daemon/log.js';
import { startDevice, type RunningDevice } from '../daemon/start.js';
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
  // A home without a usable configuration fails here, before anything is created in it.
  loadConfig(home);
  const log = createLogger({ dir: homePaths(home).logs });
  const starting = new AbortController();
  let stopping = false;
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
    starting.abort();
    void running
      .then((d) => d.close())
      .then(
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
  // Signals arrive from the event loop, after this line has run.
  const running: Promise<RunningDevice> = startDevice(home, { log, signal: starting.signal });
  await running;
}

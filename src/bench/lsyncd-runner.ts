/**
 * lsyncd as a {@link SyncRunner}: on A `lsyncd` watching A's folder with
 * inotify and running rsync (`default.rsync`, delay 0) into the same rsync
 * daemon on B that {@link RsyncRunner} uses, through the counting proxy.
 * lsyncd starts with a full rsync of the folder, then syncs what inotify
 * reports: one-way and continuous, so it stands in for rsync in S4.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Proc, which } from './procs.js';
import { RSYNC_MODULE, RsyncDaemon, rsyncFsync, rsyncPartial } from './rsync-runner.js';
import type { Side, SyncEnv, SyncRunner } from './runner.js';

/** `s` as a Lua string literal. */
export function luaString(s: string): string {
  if ([...s].some((c) => c.charCodeAt(0) < 0x20))
    throw new Error(`control character in ${JSON.stringify(s)}`);
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** The lsyncd configuration: A's folder to the rsync daemon module on `port`, delay 0. */
export function lsyncdConf(o: {
  source: string;
  port: number;
  log: string;
  status: string;
  fsync: boolean;
}): string {
  const target = `rsync://127.0.0.1:${o.port}/${RSYNC_MODULE}/`;
  return [
    '-- Written by the Lockstep benchmark.',
    'settings {',
    '  nodaemon = true,',
    `  logfile = ${luaString(o.log)},`,
    `  statusFile = ${luaString(o.status)},`,
    '  statusInterval = 60,',
    '}',
    'sync {',
    '  default.rsync,',
    `  source = ${luaString(o.source.replace(/\/?$/, '/'))},`,
    `  target = ${luaString(target)},`,
    '  delay = 0,',
    '  delete = true,',
    '  rsync = {',
    '    archive = true,',
    '    whole_file = false,',
    ...(o.fsync ? ['    _extra = { "--fsync" },'] : []),
    '  },',
    '}',
    '',
  ].join('\n');
}

/** lsyncd (rsync backend) from A to an rsync daemon on B. */
export class LsyncdRunner implements SyncRunner {
  readonly name = 'lsyncd';
  readonly mtimeToleranceNs = 1_000_000n;
  private dirs: { A: string; B: string } | undefined;
  private env: SyncEnv | undefined;
  private daemon: RsyncDaemon | undefined;
  private aUp = false;
  private lsyncd: Proc | undefined;

  static available(): string | undefined {
    if (which('lsyncd') === undefined) return 'lsyncd is not installed';
    if (which('rsync') === undefined) return 'rsync (its backend) is not installed';
    return undefined;
  }

  own(): boolean {
    return false;
  }

  partial(rel: string): boolean {
    return rsyncPartial(rel);
  }

  async setup(dirA: string, dirB: string, env: SyncEnv): Promise<void> {
    this.dirs = { A: dirA, B: dirB };
    this.env = env;
  }

  async start(side?: Side): Promise<void> {
    const { dirs, env } = this;
    if (dirs === undefined || env === undefined) throw new Error('start before setup');
    if (side === undefined || side === 'B') {
      this.daemon = new RsyncDaemon(dirs.B, env.work, env.net.listen.B);
      await this.daemon.start();
    }
    if (side === undefined || side === 'A') this.aUp = true;
    if (!this.aUp || this.daemon === undefined || this.lsyncd !== undefined) return;
    const conf = join(env.work, 'lsyncd.conf.lua');
    writeFileSync(
      conf,
      lsyncdConf({
        source: dirs.A,
        port: env.net.reach.B,
        log: join(env.work, 'lsyncd.log'),
        status: join(env.work, 'lsyncd.status'),
        fsync: rsyncFsync(),
      }),
    );
    this.lsyncd = Proc.start('lsyncd', [conf]);
  }

  async waitSynced(): Promise<void> {
    // A daemon: the harness compares the folders; but fail at once if lsyncd died.
    const p = this.lsyncd;
    if (p !== undefined && !p.running) throw new Error(`lsyncd exited:\n${p.tail.text()}`);
  }

  async stop(): Promise<void> {
    await this.lsyncd?.stop();
    await this.daemon?.stop();
  }

  pids(): Partial<Record<Side, number>> {
    const out: Partial<Record<Side, number>> = {};
    if (this.lsyncd?.running && this.lsyncd.pid !== undefined) out.A = this.lsyncd.pid;
    const b = this.daemon?.pid;
    if (b !== undefined) out.B = b;
    return out;
  }
}

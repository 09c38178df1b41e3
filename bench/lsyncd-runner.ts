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
import { RSYNC_MODULE, ToRsyncDaemon, rsyncFsync } from './rsync-runner.js';
import type { SyncEnv, SyncRunner } from './runner.js';

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
export class LsyncdRunner extends ToRsyncDaemon implements SyncRunner {
  readonly name = 'lsyncd';
  private lsyncd: Proc | undefined;

  static available(): string | undefined {
    if (which('lsyncd') === undefined) return 'lsyncd is not installed';
    if (which('rsync') === undefined) return 'rsync (its backend) is not installed';
    return undefined;
  }

  protected bothUp(dirs: { A: string; B: string }, env: SyncEnv): void {
    if (this.lsyncd !== undefined) return;
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

  protected onA(): Proc | undefined {
    return this.lsyncd;
  }

  async waitSynced(): Promise<void> {
    // A daemon: the harness compares the folders; but fail at once if lsyncd died.
    const p = this.lsyncd;
    if (p !== undefined && !p.running) throw new Error(`lsyncd exited:\n${p.tail.text()}`);
  }
}

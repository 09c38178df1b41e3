/**
 * rsync as a {@link SyncRunner}: on B an rsync daemon (`rsync --daemon
 * --no-detach`) on 127.0.0.1 with one writable module for B's folder; on A
 * one `rsync -a --delete` run to that module through the counting proxy,
 * started when both sides are up and again after each change (S3). rsync
 * uses its delta-transfer algorithm for daemon transfers (`--whole-file` is
 * the default only when both paths are local); the client also says
 * `--no-whole-file` to make that explicit, and `--stats` shows it (S3's
 * "Matched data"). rsync is one-way and not continuous: no S4.
 *
 * The daemon is also the receiving end of {@link LsyncdRunner}.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { Proc, which } from './procs.js';
import type { Side, SyncEnv, SyncRunner } from './runner.js';

/** The module name for B's folder. */
export const RSYNC_MODULE = 'b';

/** rsyncd.conf for a daemon serving `dir` as module {@link RSYNC_MODULE}, read-write, as `uid`/`gid`. */
export function rsyncdConf(o: { dir: string; log: string; uid: number; gid: number }): string {
  return [
    '# Written by the Lockstep benchmark; one module for device B.',
    'use chroot = no',
    'numeric ids = yes',
    `log file = ${o.log}`,
    `[${RSYNC_MODULE}]`,
    `    path = ${o.dir}`,
    '    read only = no',
    '    list = no',
    `    uid = ${o.uid}`,
    `    gid = ${o.gid}`,
    '    munge symlinks = no',
    '',
  ].join('\n');
}

/** Whether `rel`'s last name looks like rsync's temp file (`.NAME.XXXXXX`). */
export function rsyncPartial(rel: string): boolean {
  const name = rel.slice(rel.lastIndexOf('/') + 1);
  return /^\..+\.[A-Za-z0-9]{6}$/.test(name);
}

/** The client arguments of a sync of `dirA` to the daemon at `port`. */
export function rsyncClientArgs(dirA: string, port: number, fsync: boolean): string[] {
  return [
    '-a',
    '--delete',
    '--no-whole-file',
    ...(fsync ? ['--fsync'] : []),
    '--stats',
    `${dirA.replace(/\/?$/, '/')}`,
    `rsync://127.0.0.1:${port}/${RSYNC_MODULE}/`,
  ];
}

/** Pulls "Literal data" and "Matched data" out of rsync's `--stats` output. */
export function rsyncStatsNote(lines: readonly string[]): string | undefined {
  const get = (label: string) =>
    lines.find((l) => l.startsWith(`${label}:`))?.replace(/^[^:]+:\s*/, '');
  const literal = get('Literal data');
  const matched = get('Matched data');
  if (literal === undefined || matched === undefined) return undefined;
  return `rsync --stats: literal data ${literal}, matched data ${matched}`;
}

/** Resolves once something accepts TCP connections on 127.0.0.1:`port` (10 s at most). */
export async function listening(port: number, proc?: Proc): Promise<void> {
  const until = Date.now() + 10_000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (proc !== undefined && !proc.running) {
      throw new Error(`${proc.name} exited before listening:\n${proc.tail.text()}`);
    }
    if (Date.now() > until) throw new Error(`nothing listens on 127.0.0.1:${port} after 10 s`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** rsync's daemon for B's folder, on 127.0.0.1. */
export class RsyncDaemon {
  private proc: Proc | undefined;
  constructor(
    private readonly dirB: string,
    private readonly work: string,
    private readonly port: number,
  ) {}

  async start(): Promise<void> {
    mkdirSync(this.dirB, { recursive: true });
    const conf = join(this.work, 'rsyncd.conf');
    writeFileSync(
      conf,
      rsyncdConf({
        dir: this.dirB,
        log: join(this.work, 'rsyncd.log'),
        uid: process.getuid?.() ?? 0,
        gid: process.getgid?.() ?? 0,
      }),
    );
    this.proc = Proc.start('rsync', [
      '--daemon',
      '--no-detach',
      `--config=${conf}`,
      '--address=127.0.0.1',
      `--port=${this.port}`,
    ]);
    await listening(this.port, this.proc);
  }

  get pid(): number | undefined {
    return this.proc?.running ? this.proc.pid : undefined;
  }

  async stop(): Promise<void> {
    await this.proc?.stop();
    this.proc = undefined;
  }
}

/** Whether to ask rsync (and lsyncd's rsync) to fsync each file, like Lockstep: BENCH_RSYNC_FSYNC=1. */
export const rsyncFsync = () => process.env.BENCH_RSYNC_FSYNC === '1';

/**
 * The part {@link RsyncRunner} and {@link LsyncdRunner} share: an rsync
 * daemon as B, and on A a process of the subclass's, started once both
 * sides are up.
 */
export abstract class ToRsyncDaemon {
  readonly mtimeToleranceNs = 1_000_000n;
  protected dirs: { A: string; B: string } | undefined;
  protected env: SyncEnv | undefined;
  protected daemon: RsyncDaemon | undefined;
  private aUp = false;

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
    if (this.aUp && this.daemon !== undefined) this.bothUp(dirs, env);
  }

  /** Both sides are up (again): start A's process. */
  protected abstract bothUp(dirs: { A: string; B: string }, env: SyncEnv): void;

  /** A's process, if one was started. */
  protected abstract onA(): Proc | undefined;

  async stop(): Promise<void> {
    await this.onA()?.stop();
    await this.daemon?.stop();
  }

  pids(): Partial<Record<Side, number>> {
    const out: Partial<Record<Side, number>> = {};
    const a = this.onA();
    if (a?.running && a.pid !== undefined) out.A = a.pid;
    const b = this.daemon?.pid;
    if (b !== undefined) out.B = b;
    return out;
  }
}

/** rsync to a daemon: one run per start and per change. */
export class RsyncRunner extends ToRsyncDaemon implements SyncRunner {
  readonly name = 'rsync';
  private client: Proc | undefined;
  private readonly finished = new Map<number, number>();
  /** What the last run's `--stats` said about delta transfer. */
  lastNote: string | undefined;

  static available(): string | undefined {
    return which('rsync') === undefined ? 'rsync is not installed' : undefined;
  }

  protected bothUp(): void {
    this.changed();
  }

  protected onA(): Proc | undefined {
    return this.client;
  }

  changed(): void {
    if (this.dirs === undefined || this.env === undefined) throw new Error('run before setup');
    const args = rsyncClientArgs(this.dirs.A, this.env.net.reach.B, rsyncFsync());
    const p = Proc.startMeasured('rsync', args);
    this.client = p;
    void p.exited.then(() => {
      if (p.pid !== undefined && p.finalCpuS !== undefined) this.finished.set(p.pid, p.finalCpuS);
      this.lastNote = rsyncStatsNote(p.tail.lines) ?? this.lastNote;
    });
  }

  async waitSynced(): Promise<void> {
    await this.client?.success();
  }

  note(): string | undefined {
    return this.lastNote;
  }

  finalCpu(): ReadonlyMap<number, number> {
    return this.finished;
  }
}

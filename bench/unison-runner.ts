/**
 * Unison as a {@link SyncRunner}: on B `unison -socket PORT -listen
 * 127.0.0.1` (the server); on A a client syncing A's folder with the server's
 * root through the counting proxy, `-batch -auto -times`. One-shot for S1–S3
 * (a run when both sides are up and after each change, like rsync);
 * continuous with `-repeat 1` for S4, as Debian ships no unison-fsmonitor.
 * Each side has its own UNISON (archives) and HOME directories.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Proc, which } from './procs.js';
import { listening } from './rsync-runner.js';
import type { Side, SyncEnv, SyncRunner } from './runner.js';

/** Whether `rel`'s last name is Unison's temp file (`.unison.NAME.HASH.unison.tmp`). */
export function unisonPartial(rel: string): boolean {
  const name = rel.slice(rel.lastIndexOf('/') + 1);
  return name.startsWith('.unison.') && name.endsWith('.unison.tmp');
}

/** The client's arguments: A's folder against B's root on the server reached at `port`. */
export function unisonClientArgs(
  dirA: string,
  dirB: string,
  port: number,
  continuous: boolean,
): string[] {
  return [
    dirA,
    `socket://127.0.0.1:${port}/${dirB}`,
    '-batch',
    '-auto',
    '-times',
    '-ui',
    'text',
    '-confirmbigdel=false',
    '-contactquietly',
    ...(continuous ? ['-repeat', '1'] : []),
  ];
}

/** Unison, client on A and socket server on B. */
export class UnisonRunner implements SyncRunner {
  readonly name = 'Unison';
  /** Unison keeps modification times to the second. */
  readonly mtimeToleranceNs = 1_000_000_000n;
  private dirs: { A: string; B: string } | undefined;
  private env: SyncEnv | undefined;
  private server: Proc | undefined;
  private aUp = false;
  private client: Proc | undefined;
  private readonly finished = new Map<number, number>();

  constructor(private readonly mode: 'once' | 'continuous') {}

  static available(): string | undefined {
    return which('unison') === undefined ? 'unison is not installed' : undefined;
  }

  own(): boolean {
    return false;
  }

  partial(rel: string): boolean {
    return unisonPartial(rel);
  }

  private sideEnv(side: Side): NodeJS.ProcessEnv {
    const work = this.env?.work ?? '.';
    const dir = join(work, `unison-${side}`);
    mkdirSync(dir, { recursive: true });
    return { ...process.env, UNISON: dir, HOME: dir };
  }

  async setup(dirA: string, dirB: string, env: SyncEnv): Promise<void> {
    this.dirs = { A: dirA, B: dirB };
    this.env = env;
    mkdirSync(dirA, { recursive: true });
    mkdirSync(dirB, { recursive: true });
  }

  async start(side?: Side): Promise<void> {
    const { env } = this;
    if (env === undefined) throw new Error('start before setup');
    if (side === undefined || side === 'B') {
      const port = env.net.listen.B;
      this.server = Proc.start('unison', ['-socket', String(port), '-listen', '127.0.0.1'], {
        env: this.sideEnv('B'),
      });
      await listening(port, this.server);
    }
    if (side === undefined || side === 'A') this.aUp = true;
    if (this.aUp && this.server !== undefined && this.client === undefined) this.run();
  }

  private run(): void {
    const { dirs, env } = this;
    if (dirs === undefined || env === undefined) throw new Error('run before setup');
    const args = unisonClientArgs(dirs.A, dirs.B, env.net.reach.B, this.mode === 'continuous');
    const p = Proc.startMeasured('unison', args, { env: this.sideEnv('A') });
    this.client = p;
    void p.exited.then(() => {
      if (p.pid !== undefined && p.finalCpuS !== undefined) this.finished.set(p.pid, p.finalCpuS);
    });
  }

  changed(): void {
    if (this.mode === 'once') this.run();
  }

  async waitSynced(): Promise<void> {
    const p = this.client;
    if (p === undefined) return;
    if (this.mode === 'once') await p.success();
    else if (!p.running) throw new Error(`unison exited:\n${p.tail.text()}`);
  }

  async stop(): Promise<void> {
    await this.client?.stop();
    await this.server?.stop();
  }

  pids(): Partial<Record<Side, number>> {
    const out: Partial<Record<Side, number>> = {};
    if (this.client?.running && this.client.pid !== undefined) out.A = this.client.pid;
    if (this.server?.running && this.server.pid !== undefined) out.B = this.server.pid;
    return out;
  }

  finalCpu(): ReadonlyMap<number, number> {
    return this.finished;
  }
}

/**
 * Lockstep as a {@link SyncRunner}: two real `lockstep serve` processes of the
 * built binary, set up with `lockstep init` and `lockstep peer add` exactly as
 * a user would, each reaching the other through the benchmark's proxy.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { MARKER_NAME, TEMP_PREFIX } from '../dist/core/path.js';
import { onInterrupt } from './procs.js';
import { freePort, type Side, type SyncEnv, type SyncRunner } from './runner.js';

const BIN = fileURLToPath(new URL('../bin/lockstep.js', import.meta.url));
/** How long a device may take to index its folder and start serving. */
const START_TIMEOUT_MS = 600_000;

/** Options of a {@link LockstepRunner}. */
export interface LockstepRunnerOptions {
  /** Extra `node` flags per side, e.g. `['--cpu-prof', '--cpu-prof-dir=DIR']` to profile one. */
  readonly nodeFlags?: Partial<Record<Side, readonly string[]>>;
}

interface Proc {
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
  /** The last lines of its output, for error messages. */
  readonly tail: string[];
}

/** Runs `lockstep ARGS` to completion; returns stdout, throws with stderr on failure. */
function lockstep(args: string[]): string {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) {
    throw new Error(`lockstep ${args.join(' ')} exited ${r.status}: ${r.stderr || r.stdout}`);
  }
  return r.stdout;
}

/** Lockstep between two devices on this machine. */
export class LockstepRunner implements SyncRunner {
  readonly name = 'Lockstep';
  readonly mtimeToleranceNs = 1_000_000n;
  private homes: Record<Side, string> | undefined;
  private readonly procs = new Map<Side, Proc>();

  constructor(private readonly opts: LockstepRunnerOptions = {}) {}

  /** The home of `side` (after {@link setup}), for client calls to its API. */
  home(side: Side): string {
    if (this.homes === undefined) throw new Error('LockstepRunner.home before setup');
    return this.homes[side];
  }

  own(rel: string): boolean {
    return rel === MARKER_NAME;
  }

  partial(rel: string): boolean {
    return rel.startsWith(TEMP_PREFIX, rel.lastIndexOf('/') + 1);
  }

  async setup(dirA: string, dirB: string, env: SyncEnv): Promise<void> {
    const homes = { A: join(env.work, 'home-A'), B: join(env.work, 'home-B') };
    const folders = { A: dirA, B: dirB };
    const ids = {} as Record<Side, string>;
    for (const side of ['A', 'B'] as const) {
      const out = lockstep([
        'init',
        '--home',
        homes[side],
        '--folder',
        folders[side],
        '--name',
        side,
        '--peer-listen',
        `127.0.0.1:${env.net.listen[side]}`,
        '--api-listen',
        `127.0.0.1:${await freePort()}`,
      ]);
      ids[side] = out.trim().split('\n').at(-1) as string;
    }
    lockstep(['peer', 'add', '--home', homes.A, ids.B, `127.0.0.1:${env.net.reach.B}`]);
    lockstep(['peer', 'add', '--home', homes.B, ids.A, `127.0.0.1:${env.net.reach.A}`]);
    this.homes = homes;
  }

  async start(side?: Side): Promise<void> {
    if (side === undefined) {
      await Promise.all([this.start('A'), this.start('B')]);
      return;
    }
    const homes = this.homes;
    if (homes === undefined) throw new Error('LockstepRunner.start before setup');
    if (this.procs.has(side)) throw new Error(`device ${side} is already running`);
    const flags = this.opts.nodeFlags?.[side] ?? [];
    const child = spawn(process.execPath, [...flags, BIN, 'serve', '--home', homes[side]], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const tail: string[] = [];
    // Not left running if the benchmark is interrupted.
    const off = onInterrupt(() => child.kill('SIGKILL'));
    const exited = new Promise<void>((resolve) =>
      child.once('exit', () => {
        off();
        resolve();
      }),
    );
    this.procs.set(side, { child, exited, tail });
    // Keep reading both pipes: a full pipe would stall the device.
    child.stderr.on('data', (d: Buffer) => keep(tail, d.toString()));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`device ${side} did not start within ${START_TIMEOUT_MS} ms`)),
        START_TIMEOUT_MS,
      );
      const done = (err?: Error) => {
        clearTimeout(timer);
        if (err) reject(err);
        else resolve();
      };
      createInterface({ input: child.stdout }).on('line', (line) => {
        keep(tail, line);
        if (line.includes('"msg":"serving ')) done();
      });
      child.once('exit', (code, signal) =>
        done(
          new Error(
            `device ${side} exited (${code ?? signal}) before serving:\n${tail.slice(-10).join('\n')}`,
          ),
        ),
      );
    });
  }

  async waitSynced(): Promise<void> {
    // A daemon: nothing to wait for; the harness compares the folders.
  }

  async stop(): Promise<void> {
    const all = [...this.procs.values()];
    this.procs.clear();
    await Promise.all(
      all.map(async ({ child, exited }) => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(timer);
      }),
    );
  }

  pids(): Partial<Record<Side, number>> {
    const out: Partial<Record<Side, number>> = {};
    for (const [side, p] of this.procs) {
      if (p.child.pid !== undefined && p.child.exitCode === null) out[side] = p.child.pid;
    }
    return out;
  }

  /** The last lines a device printed (for failure reports). */
  output(side: Side): string {
    return this.procs.get(side)?.tail.join('\n') ?? '';
  }
}

function keep(tail: string[], text: string): void {
  for (const line of text.split('\n')) if (line !== '') tail.push(line);
  if (tail.length > 200) tail.splice(0, tail.length - 200);
}

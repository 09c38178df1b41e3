/**
 * Lockstep as a {@link SyncRunner}: two real `lockstep serve` processes of the
 * built binary, set up with `lockstep init` and `lockstep peer add` exactly as
 * a user would, each reaching the other through the benchmark's proxy.
 */
/**
 * Lockstep as a {@link SyncRunner}: two real `lockstep serve` processes of the
 * built binary, set up with `lockstep init` and `lockstep peer add` exactly as
 * a user would (the product's local-cluster harness, which the demo and the
 * tests use too), each reaching the other through the benchmark's proxy.
 */
import { join } from 'node:path';
import { MARKER_NAME, TEMP_PREFIX } from '../dist/core/path.js';
import { LocalCluster, SERVING_LINE, type LocalDevice } from '../dist/cli/local-cluster.js';
import { onInterrupt } from './procs.js';
import { freePort, type Side, type SyncEnv, type SyncRunner } from './runner.js';

/** How long a device may take to index its folder and start serving. */
const START_TIMEOUT_MS = 600_000;
/** How long a device may take to stop on SIGTERM before it gets SIGKILL. */
const STOP_GRACE_MS = 15_000;

/** Options of a {@link LockstepRunner}. */
export interface LockstepRunnerOptions {
  /** Extra `node` flags per side, e.g. `['--cpu-prof', '--cpu-prof-dir=DIR']` to profile one. */
  readonly nodeFlags?: Partial<Record<Side, readonly string[]>>;
}

/** Lockstep between two devices on this machine. */
export class LockstepRunner implements SyncRunner {
  readonly name = 'Lockstep';
  readonly mtimeToleranceNs = 1_000_000n;
  private devices: Record<Side, LocalDevice> | undefined;
  private readonly cluster = new LocalCluster();
  /** The sides started since the last {@link stop}. */
  private readonly started = new Set<Side>();

  constructor(private readonly opts: LockstepRunnerOptions = {}) {}

  /** The home of `side` (after {@link setup}), for client calls to its API. */
  home(side: Side): string {
    if (this.devices === undefined) throw new Error('LockstepRunner.home before setup');
    return this.devices[side].home;
  }

  own(rel: string): boolean {
    return rel === MARKER_NAME;
  }

  partial(rel: string): boolean {
    return rel.startsWith(TEMP_PREFIX, rel.lastIndexOf('/') + 1);
  }

  async setup(dirA: string, dirB: string, env: SyncEnv): Promise<void> {
    const folders = { A: dirA, B: dirB };
    const added = {} as Record<Side, LocalDevice>;
    for (const side of ['A', 'B'] as const) {
      added[side] = await this.cluster.add({
        name: side,
        home: join(env.work, `home-${side}`),
        folder: folders[side],
        peerPort: env.net.listen[side],
        apiPort: await freePort(),
      });
    }
    await added.A.addPeer(added.B, `127.0.0.1:${env.net.reach.B}`, false);
    await added.B.addPeer(added.A, `127.0.0.1:${env.net.reach.A}`, false);
    this.devices = added;
  }

  async start(side?: Side): Promise<void> {
    if (side === undefined) {
      await Promise.all([this.start('A'), this.start('B')]);
      return;
    }
    if (this.devices === undefined) throw new Error('LockstepRunner.start before setup');
    const device = this.devices[side];
    if (this.started.has(side)) throw new Error(`device ${side} is already running`);
    this.started.add(side);
    const start = device.start({
      nodeFlags: this.opts.nodeFlags?.[side] ?? [],
      keepLines: 200,
      readyLine: SERVING_LINE,
      timeoutMs: START_TIMEOUT_MS,
    });
    // Not left running if the benchmark is interrupted.
    const served = device.served;
    if (served !== undefined) {
      const off = onInterrupt(() => served.child.kill('SIGKILL'));
      void served.exited.then(off);
    }
    await start;
  }

  async waitSynced(): Promise<void> {
    // A daemon: nothing to wait for; the harness compares the folders.
  }

  async stop(): Promise<void> {
    await this.cluster.stopAll('SIGTERM', STOP_GRACE_MS);
    for (const d of this.cluster.devices) d.served = undefined;
    this.started.clear();
  }

  pids(): Partial<Record<Side, number>> {
    const out: Partial<Record<Side, number>> = {};
    for (const d of this.cluster.devices) {
      const pid = d.served?.pid;
      if (pid !== undefined && d.running) out[d.name as Side] = pid;
    }
    return out;
  }

  /** The last lines a device printed (for failure reports). */
  output(side: Side): string {
    return this.devices?.[side].output() ?? '';
  }
}

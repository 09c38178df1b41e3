/**
 * The pluggable side of the peer-sync benchmarks: a {@link SyncRunner} is one
 * tool that keeps device A's folder and device B's folder identical (today
 * Lockstep; later rsync, Unison, Syncthing), and {@link ProcWatch} measures
 * its processes (peak RSS, CPU seconds) from /proc.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { TreeRules } from './tree.js';

/** The two devices of a benchmark. */
export type Side = 'A' | 'B';
export const SIDES: readonly Side[] = ['A', 'B'];

/** Where each device listens and where the other one reaches it (the counting proxy). */
export interface SyncNet {
  /** The port each device's sync listener binds on 127.0.0.1. */
  readonly listen: Readonly<Record<Side, number>>;
  /** The port on 127.0.0.1 at which the other device reaches this one (a proxy route). */
  readonly reach: Readonly<Record<Side, number>>;
}

/** What a runner gets besides the two folders. */
export interface SyncEnv {
  /** A scratch directory outside both folders for the tool's state (homes, configs, logs). */
  readonly work: string;
  readonly net: SyncNet;
}

/**
 * One sync tool between device A (folder `dirA`) and device B (`dirB`).
 *
 * A scenario goes: `setup` → (prepare A's data) → `start` sides as the
 * scenario needs → start the clock → … → the harness sees B's folder match A's
 * and `waitSynced` has resolved → stop the clock → `stop`.
 */
export interface SyncRunner extends TreeRules {
  readonly name: string;
  /** How far apart mtimes may be on the two sides and still count as synced. */
  readonly mtimeToleranceNs: bigint;
  /** Creates the tool's state: identities, configuration, peering. Nothing runs yet. */
  setup(dirA: string, dirB: string, env: SyncEnv): Promise<void>;
  /**
   * Starts the tool on `side` (both by default) and resolves when that side
   * is up and has indexed its folder. A one-shot tool starts a sync run here.
   */
  start(side?: Side): Promise<void>;
  /**
   * Resolves when the tool itself says it is done with what it has seen (a
   * one-shot run: its process exited). A daemon with no such signal resolves
   * at once; the harness decides by comparing the folders either way.
   */
  waitSynced(): Promise<void>;
  /** Stops every process this runner started, by its PID; resolves when they have exited. */
  stop(): Promise<void>;
  /** The running process of each side, for /proc measurements. */
  pids(): Partial<Record<Side, number>>;
}

/** Asks the kernel for a free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

let clockTicks: number | undefined;
/** Clock ticks per second of /proc/PID/stat times. */
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
    const n = Number(r.stdout?.trim());
    clockTicks = Number.isFinite(n) && n > 0 ? n : 100;
  }
  return clockTicks;
}

/** One reading of a process: peak RSS so far and CPU seconds used so far. */
export interface ProcSample {
  readonly peakRssMb: number;
  readonly cpuS: number;
}

/** Reads `/proc/PID` once; undefined if the process is gone. */
export function readProc(pid: number): ProcSample | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const hwm = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
    // Fields after the ")" that ends the command name: state is field 3, utime 14, stime 15.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(f[11]) + Number(f[12]);
    return { peakRssMb: hwm / 1024, cpuS: ticks / ticksPerSecond() };
  } catch {
    return undefined;
  }
}

/** Per device: peak RSS and CPU seconds over the timed phase. */
export type SideUsage = Partial<Record<Side, ProcSample>>;

/**
 * Measures the runner's processes over the timed phase: at `begin` the peak
 * RSS counter of each running process is reset (`/proc/PID/clear_refs`) and
 * its CPU time noted; `sample` (called while polling) keeps the last reading
 * of every process seen, so one that exits early still counts; `end` returns
 * per device the peak RSS and the CPU seconds used since `begin` (all of it
 * for a process started after `begin`).
 */
export class ProcWatch {
  private readonly cpuAtBegin = new Map<number, number>();
  private readonly last = new Map<number, { side: Side; s: ProcSample }>();
  private ownAtBegin: NodeJS.CpuUsage | undefined;
  /** CPU seconds of the benchmark process itself (proxy, polling) from `begin` to `end`. */
  ownCpuS = 0;

  constructor(private readonly runner: SyncRunner) {}

  begin(): void {
    this.ownAtBegin = process.cpuUsage();
    for (const [side, pid] of Object.entries(this.runner.pids()) as [Side, number][]) {
      try {
        writeFileSync(`/proc/${pid}/clear_refs`, '5');
      } catch {
        // Older kernels: the peak then covers the process's whole life.
      }
      const s = readProc(pid);
      if (s) {
        this.cpuAtBegin.set(pid, s.cpuS);
        this.last.set(pid, { side, s });
      }
    }
  }

  sample(): void {
    for (const [side, pid] of Object.entries(this.runner.pids()) as [Side, number][]) {
      const s = readProc(pid);
      if (s) this.last.set(pid, { side, s });
    }
  }

  end(): SideUsage {
    this.sample();
    const own = process.cpuUsage(this.ownAtBegin);
    this.ownCpuS = (own.user + own.system) / 1e6;
    const out: Partial<Record<Side, { peakRssMb: number; cpuS: number }>> = {};
    for (const [pid, { side, s }] of this.last) {
      const cpu = s.cpuS - (this.cpuAtBegin.get(pid) ?? 0);
      const o = out[side];
      if (o === undefined) out[side] = { peakRssMb: s.peakRssMb, cpuS: cpu };
      else {
        o.peakRssMb = Math.max(o.peakRssMb, s.peakRssMb);
        o.cpuS += cpu;
      }
    }
    return out;
  }
}

/**
 * The pluggable side of the peer-sync benchmarks: a {@link SyncRunner} is one
 * tool that keeps device A's folder and device B's folder identical (today
 * Lockstep; later rsync, Unison, Syncthing), and {@link ProcWatch} measures
 * its processes (peak RSS, CPU seconds) from /proc.
 */
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { parentMap, readTree } from './procs.js';
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
  /**
   * The running process of each side, for /proc measurements; each is
   * measured with all its descendants.
   */
  pids(): Partial<Record<Side, number>>;
  /**
   * Optional, for one-shot tools: the scenario has just changed A's folder
   * (S3's rename); start a sync run now. {@link waitSynced} then waits for it.
   */
  changed?(): void;
  /**
   * Optional: exact CPU seconds (with all descendants) of processes of
   * {@link pids} that have exited, by PID; they replace the last /proc reading.
   */
  finalCpu?(): ReadonlyMap<number, number>;
  /** Optional: what the tool said about its last run worth keeping (rsync's delta statistics). */
  note?(): string | undefined;
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

/** One reading of a process: peak RSS so far and CPU seconds used so far. */
export interface ProcSample {
  readonly peakRssMb: number;
  readonly cpuS: number;
}

/**
 * Reads `/proc` once for the process tree under `pid` (the process and all
 * its descendants); undefined if the process is gone. Peak RSS: the largest
 * VmHWM of one process of the tree, or the sum of the tree's current RSS if
 * that is more; CPU: {@link readTree}.
 */
export function readProc(
  pid: number,
  parents?: ReadonlyMap<number, number>,
): ProcSample | undefined {
  const t = readTree(pid, parents);
  if (t === undefined) return undefined;
  return { peakRssMb: Math.max(t.hwmMb, t.rssMb), cpuS: t.cpuS };
}

/** Per device: peak RSS and CPU seconds over the timed phase. */
export type SideUsage = Partial<Record<Side, ProcSample>>;

/**
 * Measures the runner's processes, each with its descendants, over the timed
 * phase: at `begin` the peak RSS counter of each running process is reset
 * (`/proc/PID/clear_refs`) and its CPU time noted; `sample` (called while
 * polling) keeps the highest reading of every process tree seen, so one that
 * exits early still counts; `end` returns per device the peak RSS and the CPU
 * seconds used since `begin` (all of it for a process started after `begin`).
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
    const parents = parentMap();
    for (const [side, pid] of Object.entries(this.runner.pids()) as [Side, number][]) {
      for (const p of readTree(pid, parents)?.pids ?? []) {
        try {
          writeFileSync(`/proc/${p}/clear_refs`, '5');
        } catch {
          // Older kernels: the peak then covers the process's whole life.
        }
      }
      const s = readProc(pid, parents);
      if (s) {
        this.cpuAtBegin.set(pid, s.cpuS);
        this.last.set(pid, { side, s });
      }
    }
  }

  sample(): void {
    const roots = Object.entries(this.runner.pids()) as [Side, number][];
    if (roots.length === 0) return;
    const parents = parentMap();
    for (const [side, pid] of roots) {
      const s = readProc(pid, parents);
      if (s === undefined) continue;
      const had = this.last.get(pid)?.s;
      // A tree's CPU total can dip when a child exits before its parent waits for it.
      this.last.set(pid, {
        side,
        s: had
          ? { peakRssMb: Math.max(had.peakRssMb, s.peakRssMb), cpuS: Math.max(had.cpuS, s.cpuS) }
          : s,
      });
    }
  }

  end(): SideUsage {
    this.sample();
    for (const [pid, cpuS] of this.runner.finalCpu?.() ?? []) {
      const had = this.last.get(pid);
      if (had) this.last.set(pid, { side: had.side, s: { peakRssMb: had.s.peakRssMb, cpuS } });
    }
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

/**
 * Processes of the other tools' runners: each started in its own process
 * group (so that stopping it also stops the children it forked, the rsync
 * daemon's per-connection children say, and nothing else), its output kept
 * for error messages, and its CPU time and memory read from /proc over the
 * whole process tree.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants, readdirSync, readFileSync } from 'node:fs';

/** The last lines of a process's output. */
export class Tail {
  readonly lines: string[] = [];
  add(text: string): void {
    for (const line of text.split('\n')) if (line.trim() !== '') this.lines.push(line);
    if (this.lines.length > 200) this.lines.splice(0, this.lines.length - 200);
  }
  text(n = 15): string {
    return this.lines.slice(-n).join('\n');
  }
}

/** Options of {@link Proc.start}. */
export interface ProcOptions {
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  /** The name in messages (default: the command's file name). */
  readonly name?: string;
  /** Called with every line of output (stdout and stderr); `true` keeps it out of the tail. */
  readonly onLine?: (line: string) => boolean | void;
}

/**
 * One process this benchmark started, leader of its own process group. The
 * group's ID is the process's PID, so {@link stop} signals exactly the
 * processes that descend from it and did not leave the group.
 */
export class Proc {
  readonly tail = new Tail();
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    this.exited = new Promise((resolve) => {
      // 'close': exited and its output read to the end.
      child.once('close', (code, signal) => resolve({ code, signal }));
      child.once('error', (err) => {
        this.tail.add(String(err));
        resolve({ code: -1, signal: null });
      });
    });
  }

  /** Starts `cmd args` in a new process group, output piped and kept. */
  static start(cmd: string, args: readonly string[], opts: ProcOptions = {}): Proc {
    const child = spawn(cmd, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
      env: opts.env ?? process.env,
      ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
    });
    const p = new Proc(opts.name ?? cmd.split('/').at(-1) ?? cmd, child);
    let partial = { out: '', err: '' };
    const feed = (which: 'out' | 'err', d: Buffer) => {
      const text = partial[which] + d.toString();
      const lines = text.split('\n');
      partial = { ...partial, [which]: lines.pop() ?? '' };
      for (const line of lines) if (opts.onLine?.(line) !== true) p.tail.add(line);
    };
    child.stdout?.on('data', (d: Buffer) => feed('out', d));
    child.stderr?.on('data', (d: Buffer) => feed('err', d));
    if (live.size === 0) endOnInterrupt();
    live.add(p);
    void p.exited.then(() => live.delete(p));
    return p;
  }

  /**
   * Like {@link start}, through `sh`, which on `cmd`'s exit prints its own
   * /proc stat line: its cutime + cstime then hold everything `cmd` and its
   * children used, read into {@link finalCpuS}, so a short-lived process's
   * CPU time is exact rather than as of the last sample.
   */
  static startMeasured(cmd: string, args: readonly string[], opts: ProcOptions = {}): Proc {
    const script = `"$@"; rc=$?; echo "${STAT_MARK} $(cat /proc/$$/stat)"; exit $rc`;
    const box: { p?: Proc } = {};
    const onLine = (line: string) => {
      if (line.startsWith(STAT_MARK) && box.p !== undefined) {
        const f = parseStat(line.slice(STAT_MARK.length + 1));
        box.p.finalCpuS = (f.selfTicks + f.childTicks) / ticksPerSecond();
        return true;
      }
      return opts.onLine?.(line);
    };
    const p = Proc.start('/bin/sh', ['-c', script, 'sh', cmd, ...args], {
      name: cmd,
      ...opts,
      onLine,
    });
    box.p = p;
    return p;
  }

  /** For {@link startMeasured}: CPU seconds of the whole run, once it has exited. */
  finalCpuS: number | undefined;

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /**
   * Stops the process group: SIGTERM, then SIGKILL after `graceMs`; resolves
   * once the leader has exited. Children left in the group get SIGKILL too.
   */
  async stop(graceMs = 10_000): Promise<void> {
    const pid = this.child.pid;
    if (pid === undefined) return;
    if (this.running) {
      signalGroup(pid, 'SIGTERM');
      const timer = setTimeout(() => signalGroup(pid, 'SIGKILL'), graceMs);
      await this.exited;
      clearTimeout(timer);
    }
    // Whatever the leader left behind in its group.
    signalGroup(pid, 'SIGKILL');
    live.delete(this);
  }

  /** Resolves on exit; rejects unless it exited 0 (or with one of `okCodes`). */
  async success(okCodes: readonly number[] = [0]): Promise<void> {
    const { code, signal } = await this.exited;
    if (code === null || !okCodes.includes(code)) {
      throw new Error(`${this.name} exited ${code ?? signal}:\n${this.tail.text()}`);
    }
  }
}

function signalGroup(pgid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pgid, sig);
  } catch {
    // already gone
  }
}

const STAT_MARK = 'LOCKSTEP-BENCH-STAT';

/** Every process group started and not yet stopped: ended if the benchmark itself is interrupted. */
const live = new Set<Proc>();
/** More to do on an interrupt: first the `early` ones (stopping processes), then the rest (removing data). */
const cleanups = { early: new Set<() => void>(), late: new Set<() => void>() };
let handlersSet = false;
function endOnInterrupt(): void {
  if (handlersSet) return;
  handlersSet = true;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      for (const p of live) if (p.pid !== undefined) signalGroup(p.pid, 'SIGKILL');
      for (const set of [cleanups.early, cleanups.late]) {
        for (const fn of set) {
          try {
            fn();
          } catch {
            // go on with the rest
          }
        }
      }
      process.exit(130);
    });
  }
}

/**
 * Runs `fn` if the benchmark is interrupted (SIGINT, SIGTERM), after stopping
 * the processes started with {@link Proc}; `late` ones after the others.
 * Returns a function that unregisters it.
 */
export function onInterrupt(fn: () => void, late = false): () => void {
  endOnInterrupt();
  const set = late ? cleanups.late : cleanups.early;
  set.add(fn);
  return () => set.delete(fn);
}

/**
 * Runs `cmd args` to completion (60 s at most); returns its output (stdout,
 * then stderr), throws with it otherwise.
 */
export function run(cmd: string, args: readonly string[], env?: NodeJS.ProcessEnv): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000, env: env ?? process.env });
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  if (r.status !== 0)
    throw new Error(`${cmd} ${args.join(' ')} exited ${r.status ?? r.signal}: ${out}`);
  return out;
}

/** The absolute path of `cmd` on PATH, or undefined. */
export function which(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir === '') continue;
    const p = `${dir}/${cmd}`;
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

let clockTicks: number | undefined;
/** Clock ticks per second of /proc/PID/stat times. */
export function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
    const n = Number(r.stdout?.trim());
    clockTicks = Number.isFinite(n) && n > 0 ? n : 100;
  }
  return clockTicks;
}

/** The fields of /proc/PID/stat that the tree measurements use. */
export interface StatFields {
  readonly ppid: number;
  /** utime + stime, in clock ticks. */
  readonly selfTicks: number;
  /** cutime + cstime: children that have exited and been waited for, in ticks. */
  readonly childTicks: number;
}

/** Parses one /proc/PID/stat line. */
export function parseStat(stat: string): StatFields {
  // Fields after the ")" that ends the command name: state is field 3, ppid 4,
  // utime 14, stime 15, cutime 16, cstime 17.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return {
    ppid: Number(f[1]),
    selfTicks: Number(f[11]) + Number(f[12]),
    childTicks: Number(f[13]) + Number(f[14]),
  };
}

/** One reading of a process tree. */
export interface TreeSample {
  /** PIDs in the tree (the root first). */
  readonly pids: readonly number[];
  /** CPU seconds of the tree: every live process plus every child it has waited for. */
  readonly cpuS: number;
  /** Sum of the current RSS of the live processes, MB. */
  readonly rssMb: number;
  /** The largest VmHWM (peak RSS) of any one process of the tree, MB. */
  readonly hwmMb: number;
}

/** PID → parent PID of every process now, from /proc. */
export function parentMap(): Map<number, number> {
  const out = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    const c = name.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      out.set(Number(name), parseStat(stat).ppid);
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** `root` and all its descendants, given a PID → parent map. */
export function descendants(root: number, parents: ReadonlyMap<number, number>): number[] {
  const kids = new Map<number, number[]>();
  for (const [pid, ppid] of parents) {
    const list = kids.get(ppid);
    if (list) list.push(pid);
    else kids.set(ppid, [pid]);
  }
  const out = [root];
  for (let i = 0; i < out.length; i++)
    for (const k of kids.get(out[i] as number) ?? []) out.push(k);
  return out;
}

/**
 * Reads the tree under `root` once; undefined if the root is gone. CPU counts
 * each live process's own time and the time of its children that exited and
 * were waited for (cutime + cstime), so nothing is counted twice and nothing
 * a waited-for child used is lost.
 */
export function readTree(
  root: number,
  parents: ReadonlyMap<number, number> = parentMap(),
): TreeSample | undefined {
  let ticks = 0;
  let rssKb = 0;
  let hwmKb = 0;
  const pids: number[] = [];
  for (const pid of descendants(root, parents)) {
    try {
      const f = parseStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      ticks += f.selfTicks + f.childTicks;
      rssKb += Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
      hwmKb = Math.max(hwmKb, Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0));
      pids.push(pid);
    } catch {
      if (pid === root) return undefined;
    }
  }
  return { pids, cpuS: ticks / ticksPerSecond(), rssMb: rssKb / 1024, hwmMb: hwmKb / 1024 };
}

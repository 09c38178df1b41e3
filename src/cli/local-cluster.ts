/**
 * Several devices on this machine, each a real `lockstep serve` process of
 * this build, set up the way a user sets them up (`lockstep init`, `lockstep
 * peer add`). The demo starts its two devices with it, and the end-to-end
 * tests and the benchmarks start theirs with it too, so there is one way of
 * starting devices, of telling that they are up and connected, and of
 * stopping them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { shortId } from '../core/device-id.js';

/** The `lockstep` command of this build. */
export const LOCKSTEP_BIN = fileURLToPath(new URL('../../bin/lockstep.js', import.meta.url));

/**
 * The line `lockstep serve` prints once its peer listener and client API
 * listen: scripts and tests take it as "the device is up".
 */
export const LISTENING_LINE = 'listening for peers';
/** The line `lockstep serve` prints right after, with its folder's totals. */
export const SERVING_LINE = '"msg":"serving ';

/** What one `lockstep` command printed, and how it ended. */
export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `lockstep ARGS` to completion without blocking the event loop, so that
 * several devices can be set up at once.
 */
export function runLockstep(
  args: readonly string[],
  opts: { readonly env?: NodeJS.ProcessEnv; readonly timeoutMs?: number } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [LOCKSTEP_BIN, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...opts.env },
      timeout: opts.timeoutMs ?? 60_000,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** Runs `lockstep ARGS` and returns its output; throws with its error output unless it exits 0. */
async function lockstepOk(args: readonly string[], timeoutMs?: number): Promise<string> {
  const r = await runLockstep(args, timeoutMs === undefined ? {} : { timeoutMs });
  if (r.code !== 0) {
    throw new Error(`lockstep ${args.join(' ')} exited ${r.code}: ${r.stderr || r.stdout}`);
  }
  return r.stdout;
}

/** How to run one `lockstep serve`. */
export interface ServeOptions {
  readonly home: string;
  /** The name in error messages (default: the home). */
  readonly name?: string;
  /** Flags for `node` itself, e.g. `--cpu-prof`. */
  readonly nodeFlags?: readonly string[];
  /** A command that `lockstep serve` runs through (e.g. to drop privileges). */
  readonly wrap?: readonly string[];
  /** The environment (default: this process's). */
  readonly env?: NodeJS.ProcessEnv;
  /** `inherit` sends the device's error output to this process's (default: kept, like stdout). */
  readonly stderr?: 'pipe' | 'inherit';
  /** Its own process group, so that a Ctrl-C meant for this terminal does not reach it. */
  readonly detached?: boolean;
  /** Keep only this many last lines of output (default: all of it, for tests that read it all). */
  readonly keepLines?: number;
  /** Called with every line the device prints (on the streams that are kept). */
  readonly onLine?: (line: string) => void;
}

/**
 * One running `lockstep serve`: its output kept, its readiness awaited by a
 * line it prints, and stopped by its PID.
 */
export class ServeProcess {
  /** Resolves when the process has exited (or could not be started: code -1). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private text = '';
  private readonly lines: string[] = [];
  private readonly listeners = new Set<(line: string) => void>();

  private constructor(
    readonly name: string,
    readonly child: ChildProcess,
    private readonly keepLines: number | undefined,
  ) {
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal }));
      child.once('error', (err) => {
        if (keepLines === undefined) this.text += `${String(err)}\n`;
        else this.line(String(err));
        resolve({ code: -1, signal: null });
      });
    });
  }

  /** Starts `lockstep serve --home HOME` as `opts` say. */
  static start(opts: ServeOptions): ServeProcess {
    const node = [process.execPath, ...(opts.nodeFlags ?? []), LOCKSTEP_BIN, 'serve'];
    // Through `wrap` when given: its command first, then node's.
    const [cmd = process.execPath, ...args] = [...(opts.wrap ?? []), ...node, '--home', opts.home];
    const child = spawn(cmd, args, {
      stdio: ['ignore', 'pipe', opts.stderr ?? 'pipe'],
      detached: opts.detached ?? false,
      env: opts.env ?? process.env,
    });
    const p = new ServeProcess(opts.name ?? opts.home, child, opts.keepLines);
    if (opts.onLine) p.listeners.add(opts.onLine);
    // Both pipes are read to the end: a full pipe would stall the device.
    for (const stream of [child.stdout, child.stderr]) {
      let partial = '';
      stream?.on('data', (d: Buffer) => {
        const chunk = d.toString();
        if (p.keepLines === undefined) p.text += chunk;
        const parts = (partial + chunk).split('\n');
        partial = parts.pop() ?? '';
        for (const line of parts) p.line(line);
      });
      stream?.on('end', () => {
        if (partial !== '') p.line(partial);
      });
    }
    return p;
  }

  /** The process ID (undefined if it could not be started). */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Whether it has not exited yet. */
  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** What it printed (all of it, or the last lines when told to keep only those). */
  output(): string {
    return this.keepLines === undefined ? this.text : this.lines.join('\n');
  }

  /**
   * Resolves once the device prints a line containing `marker` (at once if it
   * has); rejects if it exits first or `timeoutMs` pass.
   */
  ready(marker: string, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.output().includes(marker)) return resolve();
      let timer: NodeJS.Timeout | undefined;
      const done = (err?: Error) => {
        clearTimeout(timer);
        this.listeners.delete(onLine);
        this.child.off('exit', onExit);
        if (err) reject(err);
        else resolve();
      };
      const onLine = (line: string) => {
        if (line.includes(marker)) done();
      };
      const onExit = () => {
        const how = this.child.exitCode ?? this.child.signalCode;
        const last = this.output().trimEnd().split('\n').slice(-10).join('\n');
        done(new Error(`${this.name} exited (${how}) before it was up:\n${last}`));
      };
      this.listeners.add(onLine);
      this.child.once('exit', onExit);
      if (!this.running) onExit();
      else if (Number.isFinite(timeoutMs)) {
        timer = setTimeout(
          () => done(new Error(`${this.name} was not up within ${timeoutMs} ms`)),
          timeoutMs,
        );
      }
    });
  }

  /**
   * Sends `signal` to the process (by its PID) unless it has exited, and
   * SIGKILL after `killAfterMs` if given; resolves with its exit code.
   */
  async stop(signal: NodeJS.Signals = 'SIGTERM', killAfterMs?: number): Promise<number | null> {
    let timer: NodeJS.Timeout | undefined;
    if (this.running) {
      this.child.kill(signal);
      if (killAfterMs !== undefined)
        timer = setTimeout(() => this.child.kill('SIGKILL'), killAfterMs);
    }
    const { code } = await this.exited;
    clearTimeout(timer);
    return code;
  }

  /** One whole line of output: kept (when only the last lines are) and handed to the listeners. */
  private line(line: string): void {
    if (this.keepLines !== undefined && line.trim() !== '') {
      this.lines.push(line);
      if (this.lines.length > this.keepLines) this.lines.shift();
    }
    for (const fn of this.listeners) fn(line);
  }
}

/** A device to create: where its home and folder go, where it listens. */
export interface DeviceSpec {
  readonly name: string;
  readonly home: string;
  readonly folder: string;
  readonly peerPort: number;
  readonly apiPort: number;
}

/** How a device's `lockstep serve` is started and awaited. */
export interface StartOptions extends Omit<ServeOptions, 'home' | 'name'> {
  /** The line that means it is up (default {@link LISTENING_LINE}). */
  readonly readyLine?: string;
  /** How long it may take to be up (default 20 s; `Infinity` waits for the line or its exit). */
  readonly timeoutMs?: number;
}

/** One device of a {@link LocalCluster}: its home, folder and ports, and its current run. */
export class LocalDevice {
  /** The current (or last) run of `lockstep serve`. */
  served: ServeProcess | undefined;

  constructor(
    readonly name: string,
    readonly home: string,
    readonly folder: string,
    readonly id: string,
    readonly peerPort: number,
    readonly apiPort: number,
  ) {}

  /** Where other devices on this machine reach it. */
  get address(): string {
    return `127.0.0.1:${this.peerPort}`;
  }

  /** Whether its current run has not exited. */
  get running(): boolean {
    return this.served?.running ?? false;
  }

  /** Output of the current run only. */
  output(): string {
    return this.served?.output() ?? '';
  }

  /** Starts `lockstep serve` and waits until it prints its ready line. */
  async start(opts: StartOptions = {}): Promise<void> {
    if (this.running) throw new Error(`${this.name} is already running`);
    const { readyLine = LISTENING_LINE, timeoutMs = 20_000, ...serve } = opts;
    const s = ServeProcess.start({ ...serve, home: this.home, name: this.name });
    this.served = s;
    await s.ready(readyLine, timeoutMs);
  }

  /** Stops the current run by its PID (see {@link ServeProcess.stop}); null if none runs. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', killAfterMs?: number): Promise<number | null> {
    const s = this.served;
    if (s === undefined || !s.running) return null;
    return s.stop(signal, killAfterMs);
  }

  /**
   * Records `other` as a peer with `lockstep peer add`, at `address` (default:
   * its own) and, if `named`, under its name.
   */
  async addPeer(other: LocalDevice, address = other.address, named = true): Promise<void> {
    const name = named ? ['--name', other.name] : [];
    await lockstepOk(['peer', 'add', '--home', this.home, other.id, address, ...name]);
  }

  /** Waits until the current run says it is connected to `other` (which it knows by name). */
  async connectedTo(other: LocalDevice, ms = 20_000): Promise<void> {
    const line = `connected to peer ${other.name} (${shortId(other.id)})`;
    const deadline = Date.now() + ms;
    while (!this.output().includes(line)) {
      if (Date.now() > deadline) {
        throw new Error(
          `timed out after ${ms} ms waiting for ${this.name} to connect to ${other.name}`,
        );
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/** Creates a device home with `lockstep init`; resolves with its device ID. */
export async function initDevice(spec: DeviceSpec): Promise<string> {
  const out = await lockstepOk([
    'init',
    '--home',
    spec.home,
    '--folder',
    spec.folder,
    '--name',
    spec.name,
    '--peer-listen',
    `127.0.0.1:${spec.peerPort}`,
    '--api-listen',
    `127.0.0.1:${spec.apiPort}`,
  ]);
  return out.trim().split('\n').at(-1) as string;
}

/**
 * Devices on this machine: created with {@link add}, peered with
 * {@link mesh}, started with {@link startAll}, stopped with {@link stopAll}.
 * `make` builds each device object (a subclass, for callers that add their own
 * helpers to it).
 */
export class LocalCluster<D extends LocalDevice = LocalDevice> {
  readonly devices: D[] = [];

  constructor(
    private readonly make: (spec: DeviceSpec, id: string) => D = (spec, id) =>
      new LocalDevice(spec.name, spec.home, spec.folder, id, spec.peerPort, spec.apiPort) as D,
  ) {}

  /** Inits one more device (not peered, not started). */
  async add(spec: DeviceSpec): Promise<D> {
    const d = this.make(spec, await initDevice(spec));
    this.devices.push(d);
    return d;
  }

  /** The device named `name`. */
  get(name: string): D {
    const d = this.devices.find((x) => x.name === name);
    if (!d) throw new Error(`no device ${name}`);
    return d;
  }

  /**
   * Makes every device a peer of every other: one command at a time per
   * device (each rewrites its configuration), devices in parallel.
   */
  async mesh(): Promise<void> {
    await Promise.all(
      this.devices.map(async (a) => {
        for (const b of this.devices) if (a !== b) await a.addPeer(b);
      }),
    );
  }

  /**
   * Starts every device and waits until each is up and every pair is
   * connected; if one fails, stops them all (SIGKILL) and throws.
   */
  async startAll(opts: StartOptions = {}): Promise<void> {
    try {
      await Promise.all(this.devices.map((d) => d.start(opts)));
      await this.connected(this.devices);
    } catch (err) {
      await this.stopAll('SIGKILL');
      throw err;
    }
  }

  /** Waits until each of `devices` is connected to each other one (all peered with each other). */
  async connected(devices: readonly D[], ms?: number): Promise<void> {
    const waits: Promise<void>[] = [];
    for (const a of devices) for (const b of devices) if (a !== b) waits.push(a.connectedTo(b, ms));
    await Promise.all(waits);
  }

  /** Stops every running device by its PID; resolves with their exit codes (null: was not running). */
  stopAll(signal: NodeJS.Signals = 'SIGTERM', killAfterMs?: number): Promise<(number | null)[]> {
    return Promise.all(this.devices.map((d) => d.stop(signal, killAfterMs)));
  }
}

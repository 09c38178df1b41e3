/**
 * A three-member etcd cluster on this machine, for `lockstep demo --etcd`,
 * the end-to-end tests and the benchmarks: real `etcd` processes (Debian's
 * `etcd-server` package) on 127.0.0.1, data in a given directory, each
 * member stopped (and started again) by its PID.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';

/** Where `etcd` is looked for when `$LOCKSTEP_ETCD` does not say. */
const ETCD_BIN = existsSync('/usr/bin/etcd') ? '/usr/bin/etcd' : 'etcd';

/** A port that was free a moment ago on 127.0.0.1 (the kernel's pick). */
export function pickPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** One member: its name, ports and current process. */
export interface EtcdMember {
  readonly name: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly dataDir: string;
  child: ChildProcess | undefined;
  /** Its last lines of output, for errors. */
  log: string[];
}

/** A local etcd cluster. */
export class LocalEtcd {
  /** Start members in their own process group (a Ctrl-C meant for a shell then does not reach them). */
  detached = false;

  private constructor(
    readonly members: readonly EtcdMember[],
    private readonly token: string,
  ) {}

  /**
   * Creates (does not start) `size` members with data directories below
   * `dir`, on ports from `port` (default: free ports picked now).
   */
  static async create(
    dir: string,
    size = 3,
    port: () => Promise<number> = pickPort,
  ): Promise<LocalEtcd> {
    const members: EtcdMember[] = [];
    for (let i = 0; i < size; i++) {
      const dataDir = join(dir, `etcd-${i}`);
      mkdirSync(dir, { recursive: true });
      members.push({
        name: `m${i}`,
        clientPort: await port(),
        peerPort: await port(),
        dataDir,
        child: undefined,
        log: [],
      });
    }
    return new LocalEtcd(members, `lockstep-${Date.now().toString(36)}`);
  }

  /** The client URLs, in member order. */
  get endpoints(): string[] {
    return this.members.map((m) => `http://127.0.0.1:${m.clientPort}`);
  }

  /** Starts every member and waits until the cluster is healthy. */
  async startAll(timeoutMs = 20_000): Promise<void> {
    for (let i = 0; i < this.members.length; i++) this.startMember(i);
    await this.healthy(
      this.members.map((_, i) => i),
      timeoutMs,
    );
  }

  /** Starts member `i` (again, on the same data: it rejoins). */
  startMember(i: number): void {
    const m = this.members[i] as EtcdMember;
    if (m.child && m.child.exitCode === null && m.child.signalCode === null) return;
    const peer = (x: EtcdMember) => `http://127.0.0.1:${x.peerPort}`;
    const client = `http://127.0.0.1:${m.clientPort}`;
    const args = [
      '--name', m.name,
      '--data-dir', m.dataDir,
      '--listen-client-urls', client,
      '--advertise-client-urls', client,
      '--listen-peer-urls', peer(m),
      '--initial-advertise-peer-urls', peer(m),
      '--initial-cluster', this.members.map((x) => `${x.name}=${peer(x)}`).join(','),
      '--initial-cluster-state', 'new',
      '--initial-cluster-token', this.token,
      // Faster elections than the defaults (100/1000 ms): one machine, no WAN.
      '--heartbeat-interval', '50',
      '--election-timeout', '500',
      '--log-level', 'warn',
      '--logger', 'zap',
    ]; // prettier-ignore
    const child = spawn(process.env.LOCKSTEP_ETCD ?? ETCD_BIN, args, {
      stdio: ['ignore', 'ignore', 'pipe'],
      detached: this.detached,
    });
    m.child = child;
    m.log = [];
    child.stderr?.on('data', (d: Buffer) => {
      m.log.push(...d.toString().split('\n').filter(Boolean));
      if (m.log.length > 30) m.log.splice(0, m.log.length - 30);
    });
    child.on('error', (err) => m.log.push(String(err)));
  }

  /** Stops member `i` by its PID (SIGKILL by default: a machine lost); resolves once it exited. */
  async stopMember(i: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = (this.members[i] as EtcdMember).child;
    if (!child || child.pid === undefined) return;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill(signal);
    await exited;
  }

  /** Pauses member `i` (SIGSTOP by its PID): it hangs, neither answering nor closing connections. */
  pauseMember(i: number): void {
    (this.members[i] as EtcdMember).child?.kill('SIGSTOP');
  }

  /** Resumes a paused member (SIGCONT). */
  resumeMember(i: number): void {
    (this.members[i] as EtcdMember).child?.kill('SIGCONT');
  }

  /** Stops every member by its PID. */
  async stopAll(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    await Promise.all(this.members.map((_, i) => this.stopMember(i, signal)));
  }

  /** Waits until each of the members `which` answers healthy (it has a leader and a quorum). */
  async healthy(which: readonly number[], timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (const i of which) {
      const m = this.members[i] as EtcdMember;
      for (;;) {
        if (await memberHealthy(m.clientPort)) break;
        if (m.child?.exitCode != null || Date.now() > deadline) {
          throw new Error(
            `etcd member ${m.name} (127.0.0.1:${m.clientPort}) is not healthy: ${m.log.slice(-5).join('\n')}`,
          );
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }
}

/** Whether the member on `port` answers /health with true. */
async function memberHealthy(port: number): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/health`, {
      signal: AbortSignal.timeout(1000),
    });
    const body = (await res.json()) as { health?: string };
    return body.health === 'true';
  } catch {
    return false;
  }
}

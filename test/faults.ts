/**
 * Fault injection for end-to-end tests: a TCP proxy that can cut, stall and
 * delay the peer connections that pass through it, and helpers to wire a
 * test cluster so that every peer connection goes through one.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { TestCluster, TestDevice } from './cluster.js';

/** What a {@link FaultProxy} does with the traffic. */
export type FaultMode =
  /** Carries everything. */
  | 'pass'
  /** Closes every connection and refuses new ones (accepts and closes at once). */
  | 'cut'
  /** Keeps connections open but carries nothing (like a dead route). */
  | 'stall';

/**
 * A TCP proxy to one target port on 127.0.0.1 that counts the bytes it
 * carries each way, and whose traffic can be cut, stalled or delayed.
 */
export class FaultProxy {
  port = 0;
  /** Bytes received from the dialing side (toward the target). */
  up = 0;
  /** Bytes received from the target (back toward the dialing side). */
  down = 0;
  /** Connections accepted so far. */
  accepted = 0;
  private modeNow: FaultMode = 'pass';
  /** Delay added to every piece of data, each way, ms. */
  delayMs = 0;
  private readonly server: Server;
  private readonly pairs = new Set<{ client: Socket; upstream: Socket }>();

  constructor(private readonly targetPort: number) {
    this.server = createServer((client) => this.accept(client));
  }

  get mode(): FaultMode {
    return this.modeNow;
  }

  /** Changes the mode; `cut` closes every open connection. */
  set(mode: FaultMode, delayMs = this.delayMs): void {
    this.modeNow = mode;
    this.delayMs = delayMs;
    if (mode === 'cut') {
      for (const p of this.pairs) {
        p.client.destroy();
        p.upstream.destroy();
      }
      this.pairs.clear();
    } else if (mode === 'pass') {
      for (const p of this.pairs) {
        p.client.resume();
        p.upstream.resume();
      }
    }
  }

  private accept(client: Socket): void {
    this.accepted++;
    client.on('error', () => undefined);
    if (this.modeNow === 'cut') {
      client.destroy();
      return;
    }
    const upstream = connect(this.targetPort, '127.0.0.1');
    upstream.on('error', () => undefined);
    const pair = { client, upstream };
    this.pairs.add(pair);
    const forward = (from: Socket, to: Socket) => {
      from.on('data', (d: Buffer) => {
        if (from === client) this.up += d.length;
        else this.down += d.length;
        if (this.modeNow === 'stall') {
          // Hold it back (unread data stays in the kernel; this piece waits here).
          from.pause();
          const wait = setInterval(() => {
            if (this.modeNow === 'stall') return;
            clearInterval(wait);
            if (this.modeNow === 'pass') {
              to.write(d);
              from.resume();
            }
          }, 20);
          return;
        }
        if (this.delayMs > 0) {
          from.pause();
          setTimeout(() => {
            if (!to.destroyed) to.write(d);
            from.resume();
          }, this.delayMs);
        } else {
          to.write(d);
        }
      });
    };
    forward(client, upstream);
    forward(upstream, client);
    const end = () => {
      client.destroy();
      upstream.destroy();
      this.pairs.delete(pair);
    };
    client.on('close', end);
    upstream.on('close', end);
  }

  get total(): number {
    return this.up + this.down;
  }

  /** Starts counting again from zero. */
  reset(): void {
    this.up = 0;
    this.down = 0;
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    const addr = this.server.address();
    this.port = typeof addr === 'object' && addr !== null ? addr.port : 0;
    return this.port;
  }

  close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const p of this.pairs) {
      p.client.destroy();
      p.upstream.destroy();
    }
    this.pairs.clear();
    return closed;
  }
}

/**
 * The proxies of a cluster wired through {@link meshThroughProxies}: one per
 * ordered pair (the dialing device, the device dialed).
 */
export class ProxiedMesh {
  readonly proxies = new Map<string, FaultProxy>();

  /** The proxy that `from` dials `to` through. */
  get(from: TestDevice, to: TestDevice): FaultProxy {
    const p = this.proxies.get(`${from.name}>${to.name}`);
    if (p === undefined) throw new Error(`no proxy from ${from.name} to ${to.name}`);
    return p;
  }

  /** Sets both directions between `a` and `b`. */
  link(a: TestDevice, b: TestDevice, mode: FaultMode, delayMs?: number): void {
    this.get(a, b).set(mode, delayMs);
    this.get(b, a).set(mode, delayMs);
  }

  /** Cuts (or sets `mode` on) every connection of `d`. */
  isolate(d: TestDevice, others: readonly TestDevice[], mode: FaultMode = 'cut'): void {
    for (const o of others) if (o !== d) this.link(d, o, mode);
  }

  /** Every proxy back to `pass` with no delay. */
  heal(): void {
    for (const p of this.proxies.values()) p.set('pass', 0);
  }

  async close(): Promise<void> {
    await Promise.all([...this.proxies.values()].map((p) => p.close()));
  }
}

/**
 * Peers every device of `cluster` with every other through its own
 * {@link FaultProxy} (create the cluster with `mesh: false`).
 */
export async function meshThroughProxies(cluster: TestCluster): Promise<ProxiedMesh> {
  const mesh = new ProxiedMesh();
  for (const from of cluster.devices) {
    for (const to of cluster.devices) {
      if (from === to) continue;
      const p = new FaultProxy(to.peerPort);
      await p.listen();
      mesh.proxies.set(`${from.name}>${to.name}`, p);
    }
  }
  await Promise.all(
    cluster.devices.map(async (from) => {
      for (const to of cluster.devices) {
        if (from !== to) await from.addPeer(to, `127.0.0.1:${mesh.get(from, to).port}`);
      }
    }),
  );
  return mesh;
}

/**
 * A counting TCP proxy for the peer-sync benchmarks: each route listens on a
 * free port of 127.0.0.1 and forwards to a target port, counting the bytes
 * (TCP payload: TLS records and all, no IP or TCP headers) both ways. Devices
 * are configured to reach each other through it, so the bytes on the wire are
 * counted the same way for every tool. It runs in a worker thread.
 */
import { Worker } from 'node:worker_threads';
import type { ProxyWorkerData } from './proxy-worker.js';

/** Bytes through one route since the last {@link CountingProxy.reset}. */
export interface RouteBytes {
  /** From the connecting side to the target. */
  readonly toTarget: number;
  /** From the target back to the connecting side. */
  readonly fromTarget: number;
}

/** A running counting proxy. */
export class CountingProxy {
  private readonly count: BigInt64Array;
  private base: bigint[];

  private constructor(
    private readonly worker: Worker,
    counters: SharedArrayBuffer,
    /** The listening port of each route, in the order of the targets given. */
    readonly ports: readonly number[],
  ) {
    this.count = new BigInt64Array(counters);
    this.base = this.raw();
  }

  /** Starts one route per target port; resolves once every route listens. */
  static async start(targets: readonly number[]): Promise<CountingProxy> {
    const counters = new SharedArrayBuffer(targets.length * 2 * 8);
    const data: ProxyWorkerData = { targets, counters };
    const worker = new Worker(new URL('./proxy-worker.js', import.meta.url), { workerData: data });
    const ports = await new Promise<number[]>((resolve, reject) => {
      worker.once('message', (m: { ports: number[] }) => resolve(m.ports));
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`proxy worker exited with code ${code}`)));
    });
    worker.on('error', () => undefined);
    return new CountingProxy(worker, counters, ports);
  }

  private raw(): bigint[] {
    return Array.from({ length: this.count.length }, (_, i) => Atomics.load(this.count, i));
  }

  /** Counts from zero again. */
  reset(): void {
    this.base = this.raw();
  }

  /** Bytes through route `i` since the last reset. */
  route(i: number): RouteBytes {
    const now = this.raw();
    const d = (j: number) => Number((now[j] as bigint) - (this.base[j] as bigint));
    return { toTarget: d(i * 2), fromTarget: d(i * 2 + 1) };
  }

  /** Bytes through every route, both ways, since the last reset. */
  total(): number {
    let n = 0;
    for (let i = 0; i < this.ports.length; i++) {
      const r = this.route(i);
      n += r.toTarget + r.fromTarget;
    }
    return n;
  }

  /** Closes every connection and the listeners, and ends the worker. */
  async close(): Promise<void> {
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.postMessage('close');
    const timer = setTimeout(() => void this.worker.terminate(), 2000);
    await exited;
    clearTimeout(timer);
  }
}

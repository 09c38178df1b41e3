/**
 * The worker thread of {@link CountingProxy}: one TCP listener per route on
 * 127.0.0.1, each connection forwarded to the route's target port, every
 * byte counted into shared memory. It runs off the benchmark's main thread
 * so that tree walks and hashing there never stall the traffic it measures.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';

/** What the main thread hands the worker. */
export interface ProxyWorkerData {
  /** The target port of each route. */
  readonly targets: readonly number[];
  /** Per route two counters: [bytes to the target, bytes from the target]. */
  readonly counters: SharedArrayBuffer;
}

const { targets, counters } = workerData as ProxyWorkerData;
const count = new BigInt64Array(counters);
const servers: Server[] = [];
const sockets = new Set<Socket>();

/** Copies `from` to `to` with backpressure, adding each chunk's size to counter `slot`. */
function forward(from: Socket, to: Socket, slot: number): void {
  from.on('data', (b: Buffer) => {
    Atomics.add(count, slot, BigInt(b.length));
    if (!to.write(b)) from.pause();
  });
  to.on('drain', () => from.resume());
  from.on('end', () => to.end());
}

function track(s: Socket): void {
  sockets.add(s);
  s.setNoDelay(true);
  s.on('close', () => sockets.delete(s));
}

async function listen(route: number, target: number): Promise<number> {
  const server = createServer((client) => {
    const upstream = createConnection({ host: '127.0.0.1', port: target });
    track(client);
    track(upstream);
    forward(client, upstream, route * 2);
    forward(upstream, client, route * 2 + 1);
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close);
    upstream.on('error', close);
    client.on('close', close);
    upstream.on('close', close);
  });
  servers.push(server);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const addr = server.address();
      resolve(typeof addr === 'object' && addr !== null ? addr.port : 0);
    });
  });
}

parentPort?.on('message', (msg: unknown) => {
  if (msg !== 'close') return;
  for (const s of sockets) s.destroy();
  for (const s of servers) s.close();
  parentPort?.close();
});

const ports = await Promise.all(targets.map((t, i) => listen(i, t)));
parentPort?.postMessage({ ports });

// End to end: a flood of connections that never authenticate, against a
// real device of a two-device cluster. Its peer port closes them within
// seconds (capped per address and in all, and timed out) instead of holding
// them for Node's 120 s until its file descriptors run out; meanwhile its
// client API answers and a file written on the other device syncs to it.
// The client API times out its own idle connections and caps their number.
import { writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { apiOf, call } from './api-client.js';
import { TestCluster, converged, type TestDevice } from './cluster.js';
import { waitUntil } from './helpers.js';

/** Idle connections opened to the peer port. */
const FLOOD = 5_000;
/** Connections opened at once, per wave (a bounded loop). */
const WAVE = 250;
/** Idle connections to the client API. */
const API_IDLE = 20;
/** The client API's cap on connections (src/api/server.ts). */
const API_MAX_CONNECTIONS = 1024;

/** A connection of the test and what the device did to it. */
interface Conn {
  socket: Socket;
  /** It connected (else it failed to). */
  opened: boolean;
  /** Closed by the device (not by this test). */
  closedByDevice: boolean;
  /** Bytes the device sent before closing it. */
  bytes: number;
}

/** Opens `n` TCP connections to 127.0.0.1:`port` that send nothing, in waves; resolves once all connected or failed. */
async function openIdle(port: number, n: number, all: Conn[]): Promise<Conn[]> {
  const mine: Conn[] = [];
  for (let done = 0; done < n; done += WAVE) {
    const wave = Array.from(
      { length: Math.min(WAVE, n - done) },
      () =>
        new Promise<void>((resolve) => {
          const socket = connect({ host: '127.0.0.1', port });
          const c: Conn = { socket, opened: false, closedByDevice: false, bytes: 0 };
          all.push(c);
          mine.push(c);
          socket.on('connect', () => {
            c.opened = true;
            resolve();
          });
          socket.on('data', (b: Buffer) => (c.bytes += b.length));
          socket.on('error', () => resolve());
          socket.on('close', () => {
            // Destroyed by this test only in the cleanup, after every check.
            c.closedByDevice = c.opened;
            resolve();
          });
        }),
    );
    await Promise.all(wave);
  }
  return mine;
}

describe('a flood of unauthenticated connections', () => {
  let cluster: TestCluster | undefined;
  const conns: Conn[] = [];
  afterEach(async () => {
    for (const c of conns.splice(0)) c.socket.destroy();
    await cluster?.close();
    cluster = undefined;
  });

  it(`closes ${FLOOD} idle peer connections within seconds while the API answers and sync goes on`, async () => {
    cluster = await TestCluster.create(['A', 'B']);
    const [a, b] = cluster.devices as [TestDevice, TestDevice];
    await cluster.startAll();
    writeFileSync(join(b.folder, 'before.txt'), 'before\n');
    await converged([a, b], 'before.txt on both', (t) => t['before.txt'] !== undefined, 20_000);
    const api = apiOf(a);
    const apiPort = Number(new URL(api.url).port);

    const apiIdle = await openIdle(apiPort, API_IDLE, conns);
    const flood = await openIdle(a.peerPort, FLOOD, conns);
    const opened = flood.filter((c) => c.opened).length;
    expect(opened, 'flood connections that connected').toBeGreaterThan(FLOOD * 0.9);

    // Meanwhile the client API answers, and a change on B reaches A.
    const status = await call(api, 'GET', '/status');
    expect(status.status, JSON.stringify(status.body)).toBe(200);
    writeFileSync(join(b.folder, 'during.txt'), 'written during the flood\n');
    await converged([a, b], 'during.txt on both', (t) => t['during.txt'] !== undefined, 20_000);

    // Every flood connection is closed by A, well before Node's 120 s.
    const open = () => flood.filter((c) => c.opened && !c.closedByDevice).length;
    await waitUntil(`A to close all ${opened} flood connections`, () => open() === 0, 30_000);
    expect(
      flood.every((c) => c.bytes === 0),
      'nothing revealed before the handshake',
    ).toBe(true);
    // Idle API connections are timed out too (with a 408), not held for minutes.
    await waitUntil(
      'the API to close its idle connections',
      () => apiIdle.every((c) => c.closedByDevice),
      30_000,
    );
    expect(apiIdle.every((c) => c.bytes > 0)).toBe(true);

    // The flood took a few warning lines, not one per connection.
    const floodLines = a
      .messages()
      .filter((m) => /peer (connections|handshakes?|TLS)|unfinished peer/.test(m));
    expect(floodLines.length, floodLines.join('\n')).toBeGreaterThan(0);
    expect(floodLines.length, floodLines.join('\n')).toBeLessThanOrEqual(4);
    expect(a.running).toBe(true);
    expect((await call(api, 'GET', '/status')).status).toBe(200);
  }, 120_000);

  it('closes client API connections over its cap at once', async () => {
    cluster = await TestCluster.create(['A'], { mesh: false });
    const a = cluster.get('A');
    await a.start();
    const api = apiOf(a);
    const extra = 20;
    const idle = await openIdle(Number(new URL(api.url).port), API_MAX_CONNECTIONS + extra, conns);
    // Over the cap: closed without an answer (timed-out ones get a 408).
    await waitUntil(
      'the connections over the cap to be closed',
      () => idle.filter((c) => c.closedByDevice && c.bytes === 0).length >= extra,
      30_000,
    );
    expect(idle.filter((c) => c.closedByDevice && c.bytes === 0).length).toBeLessThanOrEqual(
      extra + 2,
    );
    expect(a.running).toBe(true);
  }, 60_000);
});

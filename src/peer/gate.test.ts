// The peer gate on a real TLS listener on 127.0.0.1, with time on a manual
// clock for its own deadline.
import { EventEmitter } from 'node:events';
import http2, { type ServerHttp2Session } from 'node:http2';
import { connect as netConnect, type AddressInfo, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../base/clock.js';
import type { Logger } from '../base/log.js';
import { createIdentity, type Identity } from '../identity/identity.js';
import {
  HANDSHAKE_TIMEOUT_MS,
  MAX_HANDSHAKES_PER_ADDRESS,
  MAX_SESSIONS_PER_PEER,
} from './admission.js';
import { PeerGate } from './gate.js';
import { tlsOptions } from './tls.js';

/** A logger that keeps its warning messages (and their fields). */
function recorder(): { log: Logger; warnings: string[]; fields: object[] } {
  const warnings: string[] = [];
  const fields: object[] = [];
  const nop = () => undefined;
  const log: Logger = {
    debug: nop,
    info: nop,
    error: nop,
    warn: (a: object | string, b?: string) => {
      fields.push(typeof a === 'string' ? {} : a);
      warnings.push(typeof a === 'string' ? a : (b ?? ''));
    },
    child: () => log,
  };
  return { log, warnings, fields };
}

async function until(what: string, cond: () => boolean): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** A client socket and whether the server closed it (and sent anything before). */
interface Client {
  socket: Socket;
  closed: boolean;
  bytes: number;
}

function watch(socket: Socket): Client {
  const c: Client = { socket, closed: false, bytes: 0 };
  socket.on('data', (b: Buffer) => (c.bytes += b.length));
  socket.on('error', () => undefined);
  socket.on('close', () => (c.closed = true));
  return c;
}

describe('PeerGate', () => {
  let identity: Identity;
  let server: http2.Http2SecureServer | undefined;
  let gate: PeerGate | undefined;
  const clients: Socket[] = [];
  beforeAll(async () => {
    identity = await createIdentity('gate-test');
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.destroy();
    gate?.close();
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    server = undefined;
  });

  /** A listener with the gate (without Node's own handshake timeout unless `nodeTimeout`). */
  async function listen(log: Logger, clock: ManualClock, nodeTimeout = false): Promise<number> {
    server = http2.createSecureServer({
      ...tlsOptions(identity),
      ...(nodeTimeout ? PeerGate.serverOptions : {}),
      requestCert: true,
      allowHTTP1: false,
    });
    const g = new PeerGate(server, log, clock);
    gate = g;
    server.on('connection', (s: Socket) => g.admit(s));
    await new Promise<void>((r) => server?.listen(0, '127.0.0.1', r));
    return (server.address() as AddressInfo).port;
  }

  /** Opens `n` TCP connections one after another, each accepted before the next. */
  async function idle(port: number, n: number): Promise<Client[]> {
    const out: Client[] = [];
    for (let i = 0; i < n; i++) {
      const admitted = gate?.stats.admitted ?? 0;
      const s = netConnect(port, '127.0.0.1');
      clients.push(s);
      out.push(watch(s));
      await until('the connection to be accepted', () => gate?.stats.admitted === admitted + 1);
    }
    return out;
  }

  it('lets at most the per-address cap wait, closing the oldest at once, with one warning', async () => {
    const { log, warnings } = recorder();
    const port = await listen(log, new ManualClock());
    const extra = 4;
    const conns = await idle(port, MAX_HANDSHAKES_PER_ADDRESS + extra);
    await until('the oldest to be closed', () => conns.slice(0, extra).every((c) => c.closed));
    expect(conns.slice(0, extra).every((c) => c.bytes === 0)).toBe(true);
    expect(conns.slice(extra).some((c) => c.closed)).toBe(false);
    expect(gate?.waiting).toBe(MAX_HANDSHAKES_PER_ADDRESS);
    expect(gate?.stats.displaced).toBe(extra);
    expect(warnings.filter((w) => /arriving faster than they authenticate/.test(w))).toHaveLength(
      1,
    );
    expect(warnings).toHaveLength(1);
  });

  it('lets a real handshake through a full per-address cap and frees its slot when done', async () => {
    const port = await listen(recorder().log, new ManualClock());
    const full = await idle(port, MAX_HANDSHAKES_PER_ADDRESS);
    expect(gate?.waiting).toBe(MAX_HANDSHAKES_PER_ADDRESS);
    const tls = tlsConnect({
      ...tlsOptions(identity),
      host: '127.0.0.1',
      port,
      ALPNProtocols: ['h2'],
      checkServerIdentity: () => undefined,
    });
    clients.push(tls);
    tls.on('error', () => undefined);
    await new Promise<void>((r) => tls.once('secureConnect', () => r()));
    // It took the place of the oldest idle one, then gave it up.
    await until('the slot to be freed', () => gate?.waiting === MAX_HANDSHAKES_PER_ADDRESS - 1);
    await until('the oldest idle one to be closed', () => full[0]?.closed === true);
    expect(full.slice(1).some((c) => c.closed)).toBe(false);
  });

  it('closes a connection still in its handshake at its deadline', async () => {
    const clock = new ManualClock();
    const port = await listen(recorder().log, clock);
    const [first] = await idle(port, 1);
    clock.advance(HANDSHAKE_TIMEOUT_MS);
    await new Promise((r) => setTimeout(r, 50));
    expect(first?.closed).toBe(false);
    clock.advance(1_000);
    await until('the connection to be closed', () => first?.closed === true);
    expect(gate?.stats.timedOut).toBe(1);
    expect(gate?.waiting).toBe(0);
    expect(clock.pending).toBe(0);
  });

  it('sets the TLS layer to time a handshake out after HANDSHAKE_TIMEOUT_MS', () => {
    expect(PeerGate.serverOptions.handshakeTimeout).toBe(HANDSHAKE_TIMEOUT_MS);
    expect(HANDSHAKE_TIMEOUT_MS).toBeLessThanOrEqual(10_000);
  });

  it('refuses a client that does not offer HTTP/2 at once', async () => {
    const { log, warnings, fields } = recorder();
    const port = await listen(log, new ManualClock());
    const tls = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false });
    clients.push(tls);
    const c = watch(tls);
    await until('the client to be closed', () => c.closed);
    expect(c.bytes).toBe(0);
    expect(gate?.stats.refused).toBe(1);
    expect(gate?.waiting).toBe(0);
    expect(warnings).toEqual(['refused a peer connection that does not offer HTTP/2']);
    expect(fields[0]).toMatchObject({
      remote: expect.stringMatching(/^127\.0\.0\.1:\d+$/),
      device: 'none',
    });
  });

  it("keeps a peer's newest connections, closing its oldest past the cap", () => {
    const g = new PeerGate(
      new EventEmitter() as unknown as http2.Http2SecureServer,
      recorder().log,
      new ManualClock(),
    );
    const fake = () => {
      const s = Object.assign(new EventEmitter(), {
        destroyed: false,
        destroy: () => {
          s.destroyed = true;
          s.emit('close');
        },
      });
      return s;
    };
    const add = (peer: string, s: ReturnType<typeof fake>) =>
      g.authenticated(peer, s as unknown as ServerHttp2Session);
    const sessions = Array.from({ length: MAX_SESSIONS_PER_PEER + 1 }, fake);
    for (const s of sessions) add('peer-a', s);
    const other = fake();
    add('peer-b', other);
    expect(sessions.map((s) => s.destroyed)).toEqual([
      true,
      ...Array<boolean>(MAX_SESSIONS_PER_PEER).fill(false),
    ]);
    expect(other.destroyed).toBe(false);
    // One that closes frees its place.
    sessions[1]?.destroy();
    add('peer-a', fake());
    expect(sessions.slice(2).some((s) => s.destroyed)).toBe(false);
  });
});

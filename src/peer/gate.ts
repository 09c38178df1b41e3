/**
 * What a connection to the peer port passes before it is served, and the
 * limits on the way (the numbers are in `admission.ts`):
 *
 * - from its accept until its TLS handshake ends (done, failed or timed out)
 *   it holds a handshake slot, capped in all and per remote address, so
 *   connections that never authenticate cannot use up the device's file
 *   descriptors; the handshake has {@link HANDSHAKE_TIMEOUT_MS};
 * - a finished handshake frees its slot at once; the peer server then
 *   refuses (closes) it unless it is a configured device ({@link refuse});
 * - a configured device keeps at most {@link MAX_SESSIONS_PER_PEER}
 *   connections, the oldest closed for a new one ({@link authenticated}).
 *
 * Refusals are logged a line per kind and interval, the rest counted.
 */
import type { Http2SecureServer, ServerHttp2Session } from 'node:http2';
import { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { systemClock, type Clock, type Timer } from '../base/clock.js';
import { errorMessage } from '../base/errors.js';
import type { Logger } from '../base/log.js';
import {
  Admission,
  HANDSHAKE_TIMEOUT_MS,
  MAX_HANDSHAKES,
  MAX_HANDSHAKES_PER_ADDRESS,
  MAX_SESSIONS_PER_PEER,
  WarnLimiter,
  addressGroup,
} from './admission.js';

/**
 * Extra time past the handshake timeout after which the gate itself closes
 * a connection still in its handshake (the TLS layer's own timeout, set by
 * {@link PeerGate.serverOptions}, should have closed it already).
 */
const BACKSTOP_MS = 1_000;

/** Counts since the listener started. */
export interface GateStats {
  /** Connections accepted into a handshake slot. */
  admitted: number;
  /** Connections closed in their handshake because newer ones came over a cap. */
  displaced: number;
  /** Handshakes that failed (the TLS layer's timeout included; not a client hanging up). */
  failed: number;
  /** Connections the gate closed itself at the backstop deadline. */
  timedOut: number;
  /** Connections refused after their handshake (unknown device, no certificate, …). */
  refused: number;
}

/** Why a connection was refused after its handshake, and what each kind's summary says. */
const REFUSALS = {
  'no-certificate': 'without a device certificate',
  'unknown-device': 'from unknown devices',
  certificate: 'with a certificate out of its validity period',
  protocol: 'not offering HTTP/2',
} as const;

/** A kind of refusal. */
export type Refusal = keyof typeof REFUSALS;

/** A connection in its handshake. */
interface Pending {
  readonly socket: Socket;
  readonly ends: string;
  readonly at: number;
}

/** Both ends of a connection: the same for the TCP socket and the TLS socket over it. */
function endsOf(s: Socket): string {
  return `${s.remoteAddress}|${s.remotePort}|${s.localAddress}|${s.localPort}`;
}

/** The gate of one peer listener. */
export class PeerGate {
  /** Options the listener must be created with. */
  static readonly serverOptions = { handshakeTimeout: HANDSHAKE_TIMEOUT_MS } as const;

  readonly stats: GateStats = { admitted: 0, displaced: 0, failed: 0, timedOut: 0, refused: 0 };
  private readonly pending = new Admission<Pending>(MAX_HANDSHAKES, MAX_HANDSHAKES_PER_ADDRESS);
  private readonly byEnds = new Map<string, Pending>();
  private readonly sessions = new Admission<ServerHttp2Session>(Infinity, MAX_SESSIONS_PER_PEER);
  private readonly warnings: WarnLimiter;
  private sweep: Timer | undefined;

  /** Hooks `server`'s handshake events; pass every accepted TCP socket to {@link admit}. */
  constructor(
    server: Http2SecureServer,
    private readonly log: Logger,
    private readonly clock: Clock = systemClock,
  ) {
    this.warnings = new WarnLimiter(log, clock);
    // Before the HTTP/2 layer's listener, which may close the socket at once.
    server.prependListener('secureConnection', (tls: TLSSocket) => {
      const p = this.byEnds.get(endsOf(tls));
      if (p !== undefined) this.forget(p);
    });
    server.on('tlsClientError', (err, tls) => {
      // The client went away (or the gate closed it): nothing to report.
      if ((err as NodeJS.ErrnoException).code === 'ECONNRESET') return;
      this.stats.failed++;
      this.warnings.warn(
        'handshake',
        { remote: tls.remoteAddress, err: errorMessage(err) },
        `a peer TLS handshake failed: ${errorMessage(err)}`,
        (n, s) => `${n} more peer TLS handshakes failed or timed out in the last ${s} s`,
      );
    });
    // A client that does not offer HTTP/2 is no Lockstep device (left to
    // Node, it would get an HTTP/1 answer and 10 s more).
    server.on('unknownProtocol', (tls) =>
      this.refuse(tls, 'protocol', 'refused a peer connection that does not offer HTTP/2'),
    );
  }

  /** Connections in their handshake now. */
  get waiting(): number {
    return this.pending.size;
  }

  /** Takes a newly accepted connection into a handshake slot, closing what it displaces. */
  admit(socket: Socket): void {
    if (socket.destroyed) return;
    const p: Pending = { socket, ends: endsOf(socket), at: this.clock.now() };
    const group = addressGroup(socket.remoteAddress);
    for (const old of this.pending.admit(group, p)) {
      this.warnings.warn(
        'cap',
        { remote: old.socket.remoteAddress ?? group, waiting: this.pending.size },
        `peer connections are arriving faster than they authenticate: closed the oldest unfinished ` +
          `handshake (at most ${MAX_HANDSHAKES_PER_ADDRESS} per address and ${MAX_HANDSHAKES} in all ` +
          `may wait). If this goes on, limit who can reach the peer port (peerListen), e.g. with a firewall`,
        (n, s) =>
          `closed ${n} more unfinished peer handshakes over the limits in the last ${s} s (a flood of connections to the peer port?)`,
      );
      this.forget(old);
      old.socket.destroy();
      this.stats.displaced++;
    }
    this.stats.admitted++;
    this.byEnds.set(p.ends, p);
    socket.once('close', () => this.forget(p));
    this.arm();
  }

  /** Logs why a connection that finished its handshake is refused, then closes it. */
  refuse(conn: ServerHttp2Session | Socket, kind: Refusal, message: string, device?: string): void {
    const socket = conn instanceof Socket ? conn : conn.socket;
    this.stats.refused++;
    this.warnings.warn(
      kind,
      { remote: `${socket.remoteAddress}:${socket.remotePort}`, device: device ?? 'none' },
      message,
      (n, s) => `refused ${n} more peer connections ${REFUSALS[kind]} in the last ${s} s`,
    );
    conn.destroy();
  }

  /** Counts a configured peer's new connection, closing its oldest past the cap. */
  authenticated(device: string, session: ServerHttp2Session): void {
    for (const old of this.sessions.admit(device, session)) {
      this.log.info({ peer: device }, 'closed an older connection of the peer for its new one');
      old.destroy();
    }
    session.once('close', () => this.sessions.release(session));
  }

  /** Stops the timers and logs pending summaries (the listener is closing). */
  close(): void {
    this.sweep?.cancel();
    this.sweep = undefined;
    this.warnings.close();
  }

  private forget(p: Pending): void {
    this.pending.release(p);
    if (this.byEnds.get(p.ends) === p) this.byEnds.delete(p.ends);
  }

  /** Runs the backstop at the oldest waiting connection's deadline. */
  private arm(): void {
    if (this.sweep !== undefined) return;
    const oldest = this.pending.items().next().value;
    if (oldest === undefined) return;
    const due = oldest.at + HANDSHAKE_TIMEOUT_MS + BACKSTOP_MS;
    this.sweep = this.clock.after(due - this.clock.now(), () => {
      this.sweep = undefined;
      const now = this.clock.now();
      for (const p of [...this.pending.items()]) {
        if (p.at + HANDSHAKE_TIMEOUT_MS + BACKSTOP_MS > now) break;
        this.forget(p);
        p.socket.destroy();
        this.stats.timedOut++;
      }
      this.arm();
    });
  }
}

/**
 * The peer listener: HTTP/2 over mutual TLS. Serves this device's index (a
 * backlog from a sequence number, then live changes) and chunks by hash.
 * Only configured devices get past the handshake; until then, connections
 * are capped and timed out by the {@link PeerGate}.
 */
import http2 from 'node:http2';
import type { TLSSocket } from 'node:tls';
import type { AddressInfo, Socket } from 'node:net';
import { LockstepError, errorMessage } from '../base/errors.js';
import { systemClock, type Clock } from '../base/clock.js';
import { HASH_ALGORITHM, type FileRecord } from '../core/record.js';
import type { Logger } from '../base/log.js';
import type { LockRow } from '../core/lock-rules.js';
import type { LockChange, LockStreamMessage } from '../locks/lock-wire.js';
import type { IndexStore } from '../store/index-store.js';
import {
  SESSION_WINDOW,
  peerCertProblem,
  peerDeviceId,
  tlsOptions,
  type TlsIdentity,
} from './tls.js';
import { CHUNK_HEADER_BYTES, putChunkHeader, putChunkMissing } from './chunk-reply.js';
import { PeerGate } from './gate.js';
import { readBody, serveUserStream } from './request-body.js';
import {
  DELTA_MIN_CHUNKS,
  PROTOCOL_VERSION,
  decodeChunkFetch,
  encodeFrame,
  encodeIndexMessage,
  toWire,
  toWireDelta,
  type ChunkHint,
  type WireRecord,
} from './wire.js';

/** What the listener needs from the device. */
export interface PeerHost {
  readonly deviceId: string;
  readonly store: IndexStore;
  readonly log: Logger;
  /** Whether `deviceId` is a configured peer (may re-read the configuration). */
  isPeer(deviceId: string): boolean;
  /** A configured peer connected to this device (so it is up: dial it back now). */
  peerConnected?(deviceId: string): void;
  /**
   * This device's choice of lock authority (sent in hello, and again with
   * {@link PeerServer.announceAuthority} when it changes).
   */
  lockAuthority(): { device: string; decided: boolean; epoch: number };
  /** Locks, served to peers: the table, its changes, and forwarded requests. */
  readonly locks: {
    snapshot(): readonly LockRow[];
    subscribe(fn: (change: LockChange) => void): () => void;
    /** Executes a forwarded request; throws LockstepError with the code to return. */
    /** Executes a request forwarded by peer `from` (its full device ID, from its certificate). */
    handle(body: unknown, from: string): LockRow;
    /** A move of the lock authority asked or handed over by peer `from` (see locks/handover.ts). */
    handover(body: unknown, from: string): Promise<unknown>;
  };
  /** The cluster's users (their stream; requests, which throw as `locks.handle` does). */
  readonly users?: {
    subscribe(fn: (message: unknown) => void): () => void;
    handle(body: unknown, from: string): unknown;
  };
  /** Calls `fn` after each local index change; returns the unsubscribe function. */
  onLocalChange(fn: () => void): () => void;
  /**
   * The bytes of chunk `hash` from the local disk, or undefined if this
   * device does not have it. `hint` says where the asking device expects it;
   * the asker verifies every chunk against its hash. With `into`, the bytes
   * may be read into it at `at` (when they fit), the result then a view of it.
   */
  readChunk(hash: string, hint: ChunkHint | null, into?: Buffer, at?: number): Buffer | undefined;
}

/** Records per index frame. */
const RECORDS_PER_FRAME = 1000;
/** Chunk entries per index frame (a 14 GB file alone fills one). */
const CHUNKS_PER_FRAME = 100_000;
/** Largest accepted request body (a chunk request of 1,024 hashes is ~70 KiB). */
const MAX_BODY = 256 * 1024;
/** The largest handover of the lock table a peer may send (about 200,000 locks). */
const MAX_HANDOVER_BODY = 64 * 1024 * 1024;

/**
 * Chunk replies are written in slabs of this size (headers and chunks packed
 * together): reused once sent, so that serving a GiB neither allocates a
 * Buffer per chunk nor leaves a GiB of garbage for the collector.
 */
const SLAB = 1024 * 1024;
/** Slabs a chunk reply may have queued before it waits for the peer to take them. */
const SLABS_PER_STREAM = 4;
/** Sent slabs kept for reuse (more are garbage once sent). */
const SLABS_KEPT = 16;
/** Chunks of big files' records last sent on an index stream, kept as delta bases (~10 MB). */
const LAST_SENT_CHUNKS = 100_000;
/** Index streams one peer may have open at once (the oldest is ended for a new one). */
const MAX_INDEX_STREAMS = 2;
/** A chunk's header in a reply: status byte and u32 length. */
const HEAD = CHUNK_HEADER_BYTES;

/** The peer listener of one device. */
export class PeerServer {
  private readonly server: http2.Http2SecureServer;
  private readonly peerOf = new WeakMap<http2.ServerHttp2Session, string>();
  /** Open index streams per peer device ID. */
  private readonly indexStreams = new Map<string, Set<http2.ServerHttp2Stream>>();
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private readonly sockets = new Set<Socket>();
  /** Limits before authentication, refusals, connections per peer. */
  private readonly gate: PeerGate;
  private closing = false;
  /** Sent chunk-reply slabs, for reuse. */
  private readonly freeSlabs: Buffer[] = [];

  constructor(
    private readonly host: PeerHost,
    identity: TlsIdentity,
    /** Time for the handshake deadline and the warnings' interval. */
    clock: Clock = systemClock,
  ) {
    this.server = http2.createSecureServer({
      ...tlsOptions(identity),
      ...PeerGate.serverOptions,
      requestCert: true,
      allowHTTP1: false,
    });
    this.gate = new PeerGate(this.server, host.log, clock);
    this.server.on('connection', (socket: Socket) => {
      if (this.closing) {
        socket.destroy();
        return;
      }
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      this.gate.admit(socket);
    });
    this.server.on('session', (session) => this.onSession(session));
    this.server.on('stream', (stream, headers) => this.onStream(stream, headers));
  }

  /** Starts listening; resolves with the bound port. */
  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve((this.server.address() as AddressInfo).port);
      });
    });
  }

  /**
   * Stops listening and closes every connection, also those still in their
   * handshake (a peer redialing while this device stops must not keep it up).
   */
  close(): Promise<void> {
    this.closing = true;
    this.gate.close();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sessions) s.destroy();
    for (const socket of this.sockets) socket.destroy();
    return closed;
  }

  private onSession(session: http2.ServerHttp2Session): void {
    if (this.closing) {
      session.destroy();
      return;
    }
    const socket = session.socket as TLSSocket;
    const id = peerDeviceId(socket);
    if (id === undefined) {
      this.gate.refuse(
        session,
        'no-certificate',
        'refused a peer connection without a device certificate',
      );
      return;
    }
    if (!this.host.isPeer(id)) {
      const add = 'add it with `lockstep peer add`';
      const why = `refused a peer connection from unknown device ${id}; ${add}`;
      this.gate.refuse(session, 'unknown-device', why, id);
      return;
    }
    const problem = peerCertProblem(socket);
    if (problem !== undefined) {
      const why = `refused a peer connection from device ${id}: ${problem}`;
      this.gate.refuse(session, 'certificate', why, id);
      return;
    }
    this.peerOf.set(session, id);
    this.host.peerConnected?.(id);
    this.sessions.add(session);
    this.gate.authenticated(id, session);
    session.on('close', () => this.sessions.delete(session));
    session.on('error', (err) =>
      this.host.log.debug({ peer: id, err: errorMessage(err) }, 'peer session error'),
    );
    try {
      session.setLocalWindowSize(SESSION_WINDOW);
    } catch {
      // The session may already be closing.
    }
  }

  private onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    const peer = this.peerOf.get(stream.session as http2.ServerHttp2Session);
    stream.on('error', () => undefined);
    if (peer === undefined) {
      stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    const url = new URL(headers[':path'] ?? '/', 'https://peer');
    const method = headers[':method'];
    if (method === 'GET' && url.pathname === '/v1/index') {
      this.serveIndex(stream, peer, url.searchParams);
    } else if (method === 'POST' && url.pathname === '/v1/chunks') {
      void this.serveChunks(stream, peer);
    } else if (method === 'GET' && url.pathname === '/v1/locks') {
      this.serveLocks(stream);
    } else if (method === 'POST' && url.pathname === '/v1/locks') {
      void this.serveLockRequest(stream, peer);
    } else if (method === 'POST' && url.pathname === '/v1/locks/authority') {
      void this.serveLockRequest(stream, peer, 'handover');
    } else if (method === 'GET' && url.pathname === '/v1/users' && this.host.users) {
      serveUserStream(stream, this.host.users);
    } else if (method === 'POST' && url.pathname === '/v1/users' && this.host.users) {
      void this.serveLockRequest(stream, peer, 'users');
    } else {
      stream.respond({ ':status': 404, 'content-type': 'text/plain' });
      stream.end(`No such peer endpoint: ${method ?? ''} ${url.pathname}\n`);
    }
  }

  /**
   * Streams this device's records after `since` (everything when the peer
   * names another index ID), then `caughtUp`, then live changes.
   */
  private serveIndex(stream: http2.ServerHttp2Stream, peer: string, q: URLSearchParams): void {
    // A peer needs one index stream (two while it reconnects and the old
    // connection is not yet known dead); each holds delta bases, so a new
    // one past that ends the oldest.
    let mine = this.indexStreams.get(peer);
    if (mine === undefined) this.indexStreams.set(peer, (mine = new Set()));
    for (const old of mine) {
      if (mine.size < MAX_INDEX_STREAMS) break;
      this.host.log.info({ peer }, 'ended an older index stream of the peer for its new one');
      mine.delete(old);
      old.close(http2.constants.NGHTTP2_CANCEL);
    }
    mine.add(stream);
    stream.once('close', () => {
      mine.delete(stream);
      if (mine.size === 0 && this.indexStreams.get(peer) === mine) this.indexStreams.delete(peer);
    });
    const store = this.host.store;
    const ownIndex = store.indexId;
    const asked = Number(q.get('since') ?? '0');
    let sent =
      q.get('indexId') === ownIndex && Number.isSafeInteger(asked) && asked > 0 ? asked : 0;
    // A receiver that asks for deltas gets a big file's chunk list told
    // against a version of the path it holds: the one last sent to it on this
    // stream (it stores every record it gets, in order, so it always has
    // that one), else the one it last said it holds itself (which it may
    // have replaced meanwhile: it then asks again for full records).
    const deltas = q.get('delta') === '1';
    const lastSent = new Map<string, FileRecord>();
    let lastSentChunks = 0;
    const wire = (r: FileRecord) => {
      if (!deltas || r.type !== 'file' || r.chunks.length < DELTA_MIN_CHUNKS) {
        if (lastSent.has(r.path)) forget(r.path);
        return toWire(r);
      }
      const w = toWireDelta(r, lastSent.get(r.path) ?? store.peerRecord(peer, r.path));
      forget(r.path);
      lastSent.set(r.path, r);
      lastSentChunks += r.chunks.length;
      // Bounded: the oldest go first (Map keeps insertion order).
      for (const [path] of lastSent) {
        if (lastSentChunks <= LAST_SENT_CHUNKS) break;
        forget(path);
      }
      return w;
    };
    const forget = (path: string) => {
      const had = lastSent.get(path);
      if (had === undefined) return;
      lastSentChunks -= had.chunks.length;
      lastSent.delete(path);
    };
    stream.respond({ ':status': 200, 'content-type': 'application/octet-stream' });
    stream.write(
      encodeIndexMessage({
        type: 'hello',
        protocol: PROTOCOL_VERSION,
        hashAlgorithm: HASH_ALGORITHM,
        indexId: ownIndex,
        deviceId: this.host.deviceId,
        sequence: store.sequence,
        ...this.authorityFields(),
      }),
    );
    let pumping = false;
    let again = false;
    let caughtUp = false;
    const pump = async (): Promise<void> => {
      if (pumping) {
        again = true;
        return;
      }
      pumping = true;
      try {
        do {
          again = false;
          for (;;) {
            if (stream.destroyed) return;
            const rows = store.changedBatch(sent, RECORDS_PER_FRAME);
            if (rows.length === 0) break;
            // A frame holds at most ~16 MiB: split by chunk count (~75 bytes each).
            for (let i = 0; i < rows.length;) {
              const batch: WireRecord[] = [];
              let chunks = 0;
              while (i < rows.length) {
                const r = rows[i] as FileRecord;
                // (A delta is shorter, so counting the full list is safe.)
                if (batch.length > 0 && chunks + r.chunks.length > CHUNKS_PER_FRAME) break;
                const w = wire(r);
                batch.push(w);
                chunks += w.chunks.length;
                i++;
              }
              const ok = stream.write(encodeIndexMessage({ type: 'records', records: batch }));
              sent = (batch.at(-1) as WireRecord).sequence;
              if (!ok) await new Promise<void>((r) => stream.once('drain', r));
            }
          }
          if (!caughtUp) {
            caughtUp = true;
            stream.write(encodeIndexMessage({ type: 'caughtUp', sequence: sent }));
          }
        } while (again);
      } catch (err) {
        this.host.log.warn({ peer, err: errorMessage(err) }, 'index stream to peer failed');
        stream.destroy();
      } finally {
        pumping = false;
      }
    };
    const off = this.host.onLocalChange(() => void pump());
    stream.on('close', off);
    void pump();
  }

  /** Tells every peer with an open index stream that this device's choice of authority changed. */
  announceAuthority(): void {
    const frame = encodeIndexMessage({ type: 'authority', ...this.authorityFields() });
    for (const streams of this.indexStreams.values()) {
      for (const stream of streams) if (!stream.destroyed) stream.write(frame);
    }
  }

  private authorityFields() {
    const { device, decided, epoch } = this.host.lockAuthority();
    return { lockAuthority: device, authorityDecided: decided, authorityEpoch: epoch };
  }

  /** Streams the lock table: a snapshot, then every change. */
  private serveLocks(stream: http2.ServerHttp2Stream): void {
    stream.respond({ ':status': 200, 'content-type': 'application/octet-stream' });
    // Typed as the lock stream's decoder expects them (locks/lock-wire.ts).
    const send = (msg: LockStreamMessage) => stream.write(encodeFrame(msg));
    send({ type: 'locks', locks: this.host.locks.snapshot() });
    const off = this.host.locks.subscribe((change) => {
      if (!stream.destroyed) send({ type: 'change', change });
    });
    stream.on('close', off);
  }

  /** Executes a lock request forwarded by a peer, a move of the authority, or a user request. */
  private async serveLockRequest(stream: http2.ServerHttp2Stream, peer: string, kind = 'lock') {
    let status = 200;
    let reply: unknown;
    try {
      const limit = kind === 'handover' ? MAX_HANDOVER_BODY : MAX_BODY;
      const body = JSON.parse((await readBody(stream, limit)).toString('utf8')) as unknown;
      if (kind === 'users') reply = this.host.users?.handle(body, peer);
      else if (kind === 'handover') reply = await this.host.locks.handover(body, peer);
      else reply = this.host.locks.handle(body, peer);
    } catch (err) {
      const code = err instanceof LockstepError ? err.code : 'INTERNAL';
      status = code === 'PEER_INVALID' ? 400 : code === 'FORBIDDEN' ? 403 : 409;
      if (code === 'PEER_INVALID') {
        this.host.log.warn({ peer, err: errorMessage(err) }, 'rejected a malformed lock request');
      } else if (code === 'FORBIDDEN') {
        this.host.log.warn({ peer, err: errorMessage(err) }, 'refused a lock request from a peer');
      }
      reply = {
        error: { code, message: err instanceof LockstepError ? err.message : 'internal error' },
      };
    }
    if (stream.destroyed) return;
    stream.respond({ ':status': status, 'content-type': 'application/json' });
    stream.end(JSON.stringify(reply));
  }

  /** Answers a chunk request: per hash a status byte, then a u32 length and the bytes. */
  private async serveChunks(stream: http2.ServerHttp2Stream, peer: string): Promise<void> {
    let req: { hashes: string[]; at: (ChunkHint | null)[] };
    try {
      req = decodeChunkFetch(JSON.parse((await readBody(stream, MAX_BODY)).toString('utf8')));
    } catch (err) {
      const message = errorMessage(err);
      this.host.log.warn({ peer, err: message }, 'rejected a malformed chunk request');
      if (!stream.destroyed) {
        stream.respond({ ':status': 400, 'content-type': 'text/plain' });
        stream.end(`${message}\n`);
      }
      return;
    }
    stream.respond({ ':status': 200, 'content-type': 'application/octet-stream' });
    let slab = this.slab();
    let used = 0;
    let queued = 0; // slabs written to the stream and not yet sent
    let wake: (() => void) | undefined;
    stream.once('close', () => wake?.());
    const send = () => {
      const full = slab;
      queued++;
      stream.write(full.subarray(0, used), (err) => {
        queued--;
        // A slab is reused only once it was sent (not when its write failed).
        if (!err && this.freeSlabs.length < SLABS_KEPT) this.freeSlabs.push(full);
        wake?.();
      });
      slab = this.slab();
      used = 0;
    };
    try {
      for (let i = 0; i < req.hashes.length; i++) {
        if (stream.destroyed) return;
        const hint = req.at[i] ?? null;
        // Room for the expected chunk after its header, or start a new slab.
        if (used > 0 && used + HEAD + (hint?.[2] ?? 0) > SLAB) send();
        while (queued >= SLABS_PER_STREAM && !stream.destroyed) {
          // Reads go on while the slabs before are sent, but only so far
          // ahead (HTTP/2 flow control paces the peer).
          await new Promise<void>((r) => (wake = r));
          wake = undefined;
        }
        if (stream.destroyed) return;
        const data = this.host.readChunk(req.hashes[i] as string, hint, slab, used + HEAD);
        if (data === undefined) {
          used = putChunkMissing(slab, used);
          continue;
        }
        if (data.buffer === slab.buffer && data.byteOffset === slab.byteOffset + used + HEAD) {
          used = putChunkHeader(slab, used, data.length) + data.length;
          continue;
        }
        // Read elsewhere (not where the asker expected it): copied in, or
        // written on its own when it does not fit a slab.
        if (used > 0 && used + HEAD + data.length > SLAB) send();
        used = putChunkHeader(slab, used, data.length);
        if (used + data.length <= SLAB) {
          used += data.copy(slab, used);
        } else {
          send();
          stream.write(data);
        }
      }
      if (used > 0) send();
      if (this.freeSlabs.length < SLABS_KEPT) this.freeSlabs.push(slab);
      stream.end();
    } catch (err) {
      this.host.log.warn({ peer, err: errorMessage(err) }, 'serving chunks failed');
      stream.destroy();
    }
  }

  /** A slab for a chunk reply: a sent one, or a new one. */
  private slab(): Buffer {
    return this.freeSlabs.pop() ?? Buffer.allocUnsafeSlow(SLAB);
  }
}

/**
 * The dialing side of a peer connection: connects to one configured peer,
 * checks that it is the device it should be, follows its index (backlog,
 * then live changes) into the local store, and fetches chunks from it.
 * Reconnects with exponential backoff when the connection breaks.
 */
import { EventEmitter } from 'node:events';
import http2 from 'node:http2';
import type { TLSSocket } from 'node:tls';
import { LockstepError, errorMessage } from '../base/errors.js';
import { systemClock, type Clock, type Timer } from '../base/clock.js';
import type { Logger } from '../base/log.js';
import type { IndexStore } from '../store/index-store.js';
import { readChunkReply } from './chunk-reply.js';
import {
  SESSION_WINDOW,
  peerCertProblem,
  peerDeviceId,
  tlsOptions,
  type TlsIdentity,
} from './tls.js';
import {
  DeltaBaseMissing,
  FrameDecoder,
  decodeIndexMessage,
  encodeChunkFetch,
  type ChunkHint,
} from './wire.js';
import { shortId } from '../core/device-id.js';
import type { Vector } from '../core/vector.js';

/** A peer's choice of lock authority, as it announces it. */
export interface PeerAuthority {
  /** The device it takes (itself, provisionally, while undecided). */
  readonly device: string;
  /** Whether its choice is recorded. */
  readonly decided: boolean;
  /** How many times its recorded authority was moved on purpose. */
  readonly epoch: number;
}

/** A configured peer. */
export interface PeerAddress {
  readonly id: string;
  readonly address: string;
  readonly name?: string | undefined;
}

/** Events of a {@link PeerLink}. */
export interface LinkEvents {
  /** Records received from the peer and stored: the paths whose version differs from ours. */
  records: [paths: string[]];
  /** The peer's backlog has been received; live updates follow. */
  caughtUp: [];
  connected: [];
  disconnected: [reason: string];
  /** The peer's choice of lock authority: from its hello, and each time it changes. */
  authority: [choice: PeerAuthority];
  /** A message of the peer's lock stream (unchecked: the caller decodes it). */
  lockMessage: [message: unknown];
  /** A message of the peer's users stream (unchecked: the caller decodes it). */
  userMessage: [message: unknown];
}

const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 30_000;
const PING_EVERY_MS = 10_000;

/** One peer, dialed by this device. */
export class PeerLink extends EventEmitter<LinkEvents> {
  private session: http2.ClientHttp2Session | undefined;
  private backoff = BACKOFF_MIN_MS;
  /** Ask the next index stream for full records (a delta could not be decoded). */
  private wholeRecordsOnce = false;
  private retryTimer: Timer | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /** True between a verified connection and its loss. */
  connected = false;
  /** When the connection was last up. */
  lastSeen: Date | undefined;
  /** Why the last attempt failed, if it did. */
  lastError: string | undefined;
  /** The peer's choice of lock authority, from its hello on this connection (or since). */
  peerAuthority: PeerAuthority | undefined;
  /** Whether to follow this peer's lock stream (it is the lock authority). */
  followLocks: () => boolean = () => false;
  /** Whether this connection follows the peer's lock stream. */
  following = false;
  /** The lock stream being followed on this connection. */
  private lockStream: http2.ClientHttp2Stream | undefined;
  /** The users stream followed beside the lock stream (the authority keeps both). */
  private userStream: http2.ClientHttp2Stream | undefined;
  /** Ends the current connection as failed (set once it is connected). */
  private failNow: ((reason: string) => void) | undefined;

  constructor(
    readonly peer: PeerAddress,
    private readonly identity: TlsIdentity,
    private readonly store: IndexStore,
    private readonly log: Logger,
    /** Time for the redial backoff. */
    private readonly clock: Clock = systemClock,
  ) {
    super();
  }

  /** The peer's short ID (its key in version vectors). */
  get short(): string {
    return shortId(this.peer.id);
  }

  /** Starts dialing. */
  start(): void {
    this.connect();
  }

  /**
   * Dials again now instead of at the end of the backoff: the peer just
   * showed it is up (it connected to us, or its address was configured).
   */
  redial(): void {
    if (this.closed || this.connected || this.retryTimer === undefined) return;
    this.retryTimer.cancel();
    this.retryTimer = undefined;
    this.backoff = BACKOFF_MIN_MS;
    this.connect();
  }

  /**
   * The lock authority changed: follows this peer's lock stream, or stops,
   * on the connection as it is (requests in flight go on).
   */
  refollow(): void {
    const session = this.session;
    if (!this.connected || session === undefined || this.failNow === undefined) return;
    const want = this.followLocks();
    if (want === this.following) return;
    if (want) {
      this.followLockStream(session, this.failNow);
      return;
    }
    const stream = this.lockStream;
    const users = this.userStream;
    this.lockStream = undefined;
    this.userStream = undefined;
    this.following = false;
    stream?.close(http2.constants.NGHTTP2_CANCEL);
    users?.close(http2.constants.NGHTTP2_CANCEL);
  }

  /** Connects again at once. */
  reconnect(): void {
    if (this.closed) return;
    this.backoff = BACKOFF_MIN_MS;
    if (this.connected) this.session?.destroy();
    else this.redial();
  }

  /** Closes the connection and stops reconnecting. */
  close(): void {
    this.closed = true;
    this.retryTimer?.cancel();
    clearInterval(this.pingTimer);
    this.session?.destroy();
  }

  /**
   * Asks the peer for chunks. `onChunk` gets each chunk's bytes (unverified:
   * the caller checks the hash) or null when the peer does not have it, in
   * request order. The bytes are valid only during the call (they may be in
   * a buffer reused for the next chunk): copy them to keep them.
   */
  fetchChunks(
    hashes: readonly string[],
    at: readonly (ChunkHint | null)[],
    onChunk: (hash: string, data: Buffer | null) => void,
  ): Promise<void> {
    const session = this.session;
    if (session === undefined || !this.connected) {
      return Promise.reject(
        new LockstepError('PEER_UNREACHABLE', `Peer ${this.name} is not connected`),
      );
    }
    let req: http2.ClientHttp2Stream;
    try {
      req = session.request({
        ':method': 'POST',
        ':path': '/v1/chunks',
        'content-type': 'application/json',
      });
    } catch (err) {
      return Promise.reject(err as Error);
    }
    const done = readChunkReply(req, hashes, onChunk, this.name);
    req.end(encodeChunkFetch({ hashes, at }));
    return done;
  }

  /** A name for logs: the configured name and the short ID. */
  get name(): string {
    return this.peer.name ? `${this.peer.name} (${this.short})` : this.short;
  }

  private connect(): void {
    if (this.closed) return;
    const session = http2.connect(`https://${this.peer.address}`, {
      ...tlsOptions(this.identity),
      checkServerIdentity: () => undefined,
    });
    this.session = session;
    let failed = false;
    const fail = (reason: string) => {
      if (failed) return;
      failed = true;
      session.destroy();
      clearInterval(this.pingTimer);
      const was = this.connected;
      this.connected = false;
      this.following = false;
      this.lockStream = undefined;
      this.userStream = undefined;
      this.failNow = undefined;
      this.peerAuthority = undefined;
      this.lastError = reason;
      if (was) this.emit('disconnected', reason);
      if (this.closed) return;
      (was ? this.log.warn.bind(this.log) : this.log.debug.bind(this.log))(
        { peer: this.peer.id, address: this.peer.address, retryMs: this.backoff },
        `connection to peer ${this.name} lost: ${reason}`,
      );
      this.retryTimer = this.clock.after(this.backoff, () => {
        this.retryTimer = undefined;
        this.connect();
      });
      this.backoff = Math.min(this.backoff * 2, BACKOFF_MAX_MS);
    };
    session.on('error', (err) => fail(errorMessage(err)));
    session.on('close', () => fail('connection closed'));
    session.on('goaway', () => fail('peer closed the connection'));
    session.once('connect', () => {
      const seen = peerDeviceId(session.socket as TLSSocket);
      if (seen !== this.peer.id) {
        this.log.error(
          { peer: this.peer.id, presented: seen ?? 'none', address: this.peer.address },
          `the device at ${this.peer.address} is ${seen ?? 'unidentified'}, not the configured peer ${this.name}; refusing it`,
        );
        fail('wrong device at that address');
        return;
      }
      const problem = peerCertProblem(session.socket as TLSSocket);
      if (problem !== undefined) {
        this.log.error(
          { peer: this.peer.id, address: this.peer.address },
          `refusing peer ${this.name} at ${this.peer.address}: ${problem}`,
        );
        fail(problem);
        return;
      }
      try {
        session.setLocalWindowSize(SESSION_WINDOW);
      } catch {
        // closing
      }
      this.connected = true;
      this.lastSeen = new Date();
      this.lastError = undefined;
      this.log.info(
        { peer: this.peer.id, address: this.peer.address },
        `connected to peer ${this.name}`,
      );
      this.emit('connected');
      this.pingTimer = setInterval(() => {
        session.ping((err) => {
          if (err) fail(`no answer to ping: ${errorMessage(err)}`);
          else this.lastSeen = new Date();
        });
      }, PING_EVERY_MS);
      this.failNow = fail;
      this.followIndex(session, fail);
    });
  }

  /** Sends a JSON request and resolves with the JSON reply (rejecting with its error). */
  request(path: string, body: unknown, timeoutMs: number): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const session = this.session;
      if (session === undefined || !this.connected) {
        reject(new LockstepError('PEER_UNREACHABLE', `peer ${this.name} is not connected`));
        return;
      }
      const req = session.request({
        ':method': 'POST',
        ':path': path,
        'content-type': 'application/json',
      });
      const timer = setTimeout(() => {
        req.close(http2.constants.NGHTTP2_CANCEL);
        reject(
          new LockstepError(
            'PEER_UNREACHABLE',
            `peer ${this.name} did not answer within ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      const parts: Buffer[] = [];
      let status = 0;
      req.on('response', (h) => (status = Number(h[':status'])));
      req.on('data', (b: Buffer) => parts.push(b));
      req.on('end', () => {
        clearTimeout(timer);
        let reply: unknown;
        try {
          reply = JSON.parse(Buffer.concat(parts).toString('utf8'));
        } catch {
          reject(
            new LockstepError('PEER_INVALID', `peer ${this.name} answered ${status} without JSON`),
          );
          return;
        }
        if (status === 200) {
          resolve(reply);
          return;
        }
        const e = (reply as { error?: { code?: unknown; message?: unknown } }).error;
        const known = [
          'NOT_FOUND',
          'NOT_A_FILE',
          'LOCKED',
          'NOT_LOCK_OWNER',
          'AUTHORITY_DISAGREE',
          'FORBIDDEN',
          'USAGE',
          'AUTHORITY_UNREACHABLE',
          'REQUEST_FAILED',
          'USER_EXISTS',
        ];
        const code =
          typeof e?.code === 'string' && known.includes(e.code) ? e.code : 'PEER_INVALID';
        const message =
          typeof e?.message === 'string' ? e.message.slice(0, 2000) : `peer answered ${status}`;
        reject(new LockstepError(code as 'LOCKED', message));
      });
      req.on('error', (err) => {
        clearTimeout(timer);
        reject(new LockstepError('PEER_UNREACHABLE', errorMessage(err)));
      });
      req.end(JSON.stringify(body));
    });
  }

  /** Takes the peer's choice of lock authority from its hello or an authority message. */
  private takeAuthority(msg: {
    lockAuthority: string;
    authorityDecided: boolean;
    authorityEpoch: number;
  }): void {
    this.peerAuthority = {
      device: msg.lockAuthority,
      decided: msg.authorityDecided,
      epoch: msg.authorityEpoch,
    };
    this.emit('authority', this.peerAuthority);
  }

  /** Follows the peer's lock stream (the peer is the lock authority). */
  private followLockStream(
    session: http2.ClientHttp2Session,
    fail: (reason: string) => void,
  ): void {
    const req = session.request({ ':path': '/v1/locks' });
    this.following = true;
    this.lockStream = req;
    const decoder = new FrameDecoder();
    req.on('data', (buf: Buffer) => {
      try {
        for (const value of decoder.push(buf)) this.emit('lockMessage', value);
      } catch (err) {
        this.log.error(
          { peer: this.peer.id, err: errorMessage(err) },
          `bad lock data from peer ${this.name}`,
        );
        fail(errorMessage(err));
      }
    });
    req.on('error', (err) => {
      // A stream closed on purpose (see refollow) is not a failure.
      if (this.lockStream === req) fail(`lock stream: ${errorMessage(err)}`);
    });
    this.followUserStream(session, fail);
  }

  /**
   * Follows the peer's users stream (the lock authority keeps the cluster's
   * users). A peer without one (an older Lockstep) answers 404: nothing to follow.
   */
  private followUserStream(
    session: http2.ClientHttp2Session,
    fail: (reason: string) => void,
  ): void {
    const req = session.request({ ':path': '/v1/users' });
    this.userStream = req;
    const decoder = new FrameDecoder();
    let ok = false;
    req.on('response', (h) => (ok = Number(h[':status']) === 200));
    req.on('data', (buf: Buffer) => {
      if (!ok) return;
      try {
        for (const value of decoder.push(buf)) this.emit('userMessage', value);
      } catch (err) {
        this.log.error(
          { peer: this.peer.id, err: errorMessage(err) },
          `bad user data from peer ${this.name}`,
        );
        fail(errorMessage(err));
      }
    });
    req.on('error', (err) => {
      if (this.userStream === req) fail(`users stream: ${errorMessage(err)}`);
    });
  }

  /** Opens the index stream and stores what arrives. */
  private followIndex(session: http2.ClientHttp2Session, fail: (reason: string) => void): void {
    const known = this.store.peerState(this.peer.id);
    // Chunk-list deltas, unless the last stream sent one this device could
    // not decode: then one stream of full records.
    const delta = this.wholeRecordsOnce ? '0' : '1';
    this.wholeRecordsOnce = false;
    const req = session.request({
      ':path': `/v1/index?since=${known.sequence}&indexId=${encodeURIComponent(known.indexId)}&delta=${delta}`,
    });
    const resolveBase =
      delta === '1'
        ? (path: string, version: Vector) => this.store.baseCandidates(this.peer.id, path, version)
        : undefined;
    const decoder = new FrameDecoder();
    let hello = false;
    req.on('data', (buf: Buffer) => {
      try {
        for (const value of decoder.push(buf)) {
          const msg = decodeIndexMessage(value, resolveBase);
          if (msg.type === 'hello') {
            if (msg.deviceId !== this.peer.id) {
              throw new LockstepError('PEER_INVALID', `Peer says it is ${msg.deviceId}`);
            }
            if (msg.indexId !== known.indexId) {
              if (known.indexId !== '')
                this.log.info(
                  { peer: this.peer.id },
                  `peer ${this.name} has a new index; exchanging everything`,
                );
              this.store.resetPeer(this.peer.id, msg.indexId);
            }
            hello = true;
            this.takeAuthority(msg);
            if (this.followLocks()) this.followLockStream(session, fail);
          } else if (!hello) {
            throw new LockstepError('PEER_INVALID', 'Index stream did not start with hello');
          } else if (msg.type === 'authority') {
            this.takeAuthority(msg);
          } else if (msg.type === 'records') {
            for (const r of msg.rejected) {
              this.log.warn(
                { peer: this.peer.id, path: r.path, reason: r.reason },
                `rejected a record from peer ${this.name}: ${r.reason}`,
              );
            }
            const differ = this.store.applyRemote(this.peer.id, msg.records);
            if (differ.length > 0) this.emit('records', differ);
          } else if (msg.type === 'caughtUp') {
            this.store.applyRemote(this.peer.id, [], msg.sequence);
            this.backoff = BACKOFF_MIN_MS;
            this.emit('caughtUp');
          }
        }
      } catch (err) {
        if (err instanceof DeltaBaseMissing) {
          // Nothing of the message was stored: reconnect and take the rest
          // as full records.
          this.wholeRecordsOnce = true;
          this.log.info(
            { peer: this.peer.id, path: err.path },
            `peer ${this.name} sent a delta against a version this device no longer holds; asking again for full records`,
          );
          fail(err.message);
          return;
        }
        this.log.error(
          { peer: this.peer.id, err: errorMessage(err) },
          `bad index data from peer ${this.name}; dropping the connection`,
        );
        fail(errorMessage(err));
      }
    });
    req.on('error', (err) => fail(`index stream: ${errorMessage(err)}`));
    req.on('end', () => fail('index stream ended'));
  }
}

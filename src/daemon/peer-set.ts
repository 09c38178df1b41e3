/**
 * The peers of a running device: one {@link PeerLink} per configured peer,
 * kept in step with the configuration, with the choices of lock authority
 * they announce. It dials and drops links and names devices; what the links
 * bring (records, lock streams) is handed to the callbacks it is given.
 */
import { EventEmitter } from 'node:events';
import { LockstepError, errorMessage } from '../base/errors.js';
import type { Logger } from '../base/log.js';
import { shortId } from '../core/device-id.js';
import { choicesDisagree, type AuthorityChoice } from '../core/lock-rules.js';
import { PeerLink, type PeerAddress, type PeerAuthority } from '../peer/link.js';
import type { TlsIdentity } from '../peer/tls.js';
import type { IndexStore } from '../store/index-store.js';

/** Options of a {@link PeerSet}. */
export interface PeerSetOptions {
  /** This device's full ID and human name. */
  readonly self: { readonly id: string; readonly name: string };
  readonly identity: TlsIdentity;
  readonly store: IndexStore;
  readonly log: Logger;
  /** Re-reads the configured peers (e.g. after `lockstep peer add`); asked for unknown devices. */
  readonly reloadPeers?: () => readonly PeerAddress[];
  /** The lock authority this device takes now. */
  authority(): string;
  /** This device's recorded choice of authority. */
  choice(): AuthorityChoice;
  /** A connected peer announced its choice of authority (in its hello, or since). */
  onPeerAuthority(peer: string, theirs: AuthorityChoice): void;
  /** A peer sent records for these paths. */
  onRecords(paths: readonly string[]): void;
  /** A peer's backlog has arrived: what waited for a reachable peer may be tried again. */
  onCaughtUp(): void;
  /**
   * A message of `from`'s lock stream (unchecked).
   *
   * @throws LockstepError `PEER_INVALID` when it is malformed (logged here)
   */
  onLockMessage(from: string, value: unknown): void;
  /**
   * A message of `from`'s users stream (unchecked).
   *
   * @throws LockstepError `PEER_INVALID` when it is malformed (logged here)
   */
  onUserMessage?(from: string, value: unknown): void;
  /** The set of peers changed such that the authority may be another device. */
  onAuthorityMayHaveChanged(): void;
}

/** Events of a {@link PeerSet}. */
export interface PeerSetEvents {
  peerConnected: [peer: PeerAddress];
  peerDisconnected: [peer: PeerAddress, reason: string];
}

/** The links to every configured peer. */
export class PeerSet extends EventEmitter<PeerSetEvents> {
  private readonly links = new Map<string, PeerLink>();
  private closed = false;

  constructor(private readonly o: PeerSetOptions) {
    super();
  }

  /** Every link, in configuration order. */
  all(): IterableIterator<PeerLink> {
    return this.links.values();
  }

  /** The configured peers' device IDs. */
  ids(): IterableIterator<string> {
    return this.links.keys();
  }

  /** How many peers are configured. */
  get size(): number {
    return this.links.size;
  }

  /** The link to the peer with this full device ID. */
  get(id: string): PeerLink | undefined {
    return this.links.get(id);
  }

  /** The link to the peer with this short device ID. */
  byShort(short: string): PeerLink | undefined {
    for (const l of this.links.values()) if (l.short === short) return l;
    return undefined;
  }

  /**
   * Whether `id` is a configured peer. An unknown device re-reads the
   * configuration first (it may have just been added on this side).
   */
  isPeer(id: string): boolean {
    if (this.links.has(id)) return true;
    if (this.o.reloadPeers) {
      try {
        this.setPeers(this.o.reloadPeers());
      } catch (err) {
        this.o.log.warn({ err: errorMessage(err) }, 'cannot re-read the configured peers');
      }
    }
    return this.links.has(id);
  }

  /** A device's human name: its configured name, else its short ID. */
  deviceName(id: string): string {
    if (id === this.o.self.id) return this.o.self.name;
    if (id.startsWith('etcd:')) return `etcd (prefix ${id.slice(5)})`;
    return this.links.get(id)?.peer.name ?? shortId(id);
  }

  /**
   * Connected peers whose recorded choice of lock authority conflicts with
   * this device's (see `choicesDisagree`), with their choice.
   */
  disagreements(): { peer: string; choice: string }[] {
    const mine = this.o.choice();
    const now = this.o.authority();
    const out: { peer: string; choice: string }[] = [];
    for (const l of this.links.values()) {
      const theirs = l.peerAuthority;
      if (!l.connected || theirs === undefined) continue;
      // Locks in etcd and locks at a device (decided or not) never mix.
      const etcd = now.startsWith('etcd:') || theirs.device.startsWith('etcd:');
      if (etcd ? now !== theirs.device : choicesDisagree(mine, asChoice(theirs))) {
        out.push({ peer: l.peer.id, choice: theirs.device });
      }
    }
    return out;
  }

  /** Whether a peer is connected and has said which authority it takes. */
  metAny(): boolean {
    for (const l of this.links.values())
      if (l.connected && l.peerAuthority !== undefined) return true;
    return false;
  }

  /** The authority changed: follow the new one's lock stream, and no longer the old one's. */
  authorityChanged(): void {
    for (const l of this.links.values()) l.refollow();
  }

  /**
   * Sends a lock request to device `id` over its link.
   *
   * @throws LockstepError `PEER_UNREACHABLE` (rejected) when it is not a configured peer
   */
  sendLockRequest(
    id: string,
    req: unknown,
    timeoutMs: number,
    path: '/v1/locks' | '/v1/locks/authority' | '/v1/users' = '/v1/locks',
  ): Promise<unknown> {
    const link = this.links.get(id);
    if (link === undefined) {
      return Promise.reject(new LockstepError('PEER_UNREACHABLE', 'it is not a configured peer'));
    }
    return link.request(path, req, timeoutMs);
  }

  /** Adopts a new list of peers: new ones are dialed, removed (or moved) ones dropped. */
  setPeers(peers: readonly PeerAddress[]): void {
    if (this.closed) return;
    const before = this.o.authority();
    const want = new Map(peers.map((p) => [p.id, p]));
    for (const [id, link] of this.links) {
      const p = want.get(id);
      if (p === undefined || p.address !== link.peer.address) {
        link.close();
        this.links.delete(id);
        this.o.log.info({ peer: id }, `peer ${link.name} removed from the configuration`);
      }
    }
    for (const p of peers) if (!this.links.has(p.id)) this.dial(p);
    if (this.o.authority() !== before) {
      this.o.onAuthorityMayHaveChanged();
      this.authorityChanged();
    }
  }

  /** Drops every link; no more are dialed. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const l of this.links.values()) l.close();
  }

  private dial(p: PeerAddress): void {
    const o = this.o;
    const link = new PeerLink(p, o.identity, o.store, o.log);
    link.on('records', (paths) => o.onRecords(paths));
    link.on('caughtUp', () => o.onCaughtUp());
    link.on('connected', () => this.emit('peerConnected', p));
    link.followLocks = () => link.peer.id === o.authority();
    link.on('authority', (theirs) => {
      o.onPeerAuthority(p.id, asChoice(theirs));
      if (choicesDisagree(o.choice(), asChoice(theirs))) {
        o.log.warn(
          { peer: p.id, theirs: theirs.device, ours: o.authority() },
          `peer ${link.name} takes ${this.deviceName(theirs.device)} as lock authority, this device takes ${this.deviceName(o.authority())}: locking is refused until their configurations agree`,
        );
      }
    });
    link.on('lockMessage', (value) => {
      try {
        // Only the authority's stream counts (one followed before it changed is dropped).
        o.onLockMessage(p.id, value);
      } catch (err) {
        o.log.warn({ peer: p.id, err: errorMessage(err) }, `rejected lock data from ${link.name}`);
      }
    });
    link.on('userMessage', (value) => {
      try {
        o.onUserMessage?.(p.id, value);
      } catch (err) {
        o.log.warn({ peer: p.id, err: errorMessage(err) }, `rejected user data from ${link.name}`);
      }
    });
    link.on('disconnected', (reason) => this.emit('peerDisconnected', p, reason));
    this.links.set(p.id, link);
    link.start();
  }
}

/** A peer's announced choice as a recorded one (undecided: no device). */
function asChoice(a: PeerAuthority): AuthorityChoice {
  return { device: a.decided ? a.device : undefined, epoch: a.epoch };
}

/**
 * A device among its peers: the peer listener, one link per configured peer,
 * the chunk fetcher and the puller, attached to a running {@link Device}.
 */
import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import { LockstepError, errorMessage } from '../base/errors.js';
import type { LockAuthoritySetting } from '../config/config.js';
import { winner, type Action } from '../core/plan.js';
import { FolderWriter } from '../folder/writer.js';
import type { LockService } from '../locks/lock-service.js';
import { decodeLockRequest } from '../locks/lock-wire.js';
import type { FileRecord } from '../core/record.js';
import { PeerLink, type PeerAddress } from '../peer/link.js';
import { PeerServer } from '../peer/server.js';
import type { TlsIdentity } from '../peer/tls.js';
import type { ChunkHint } from '../peer/wire.js';
import { ChunkFetcher } from '../sync/fetcher.js';
import { FdCache } from '../sync/fd-cache.js';
import { readLocalChunk } from '../sync/local-chunks.js';
import { Puller } from '../sync/puller.js';
import type { Device } from './device.js';
import type { Logger } from '../base/log.js';
import { folderLockFiles } from './lock-files.js';
import { LockWiring } from './lock-wiring.js';

/** How long a path checked to be a live local file is trusted for serving chunk hints. */
const HINT_CHECK_MS = 1000;

/** Options of a {@link Cluster}. */
export interface ClusterOptions {
  readonly device: Device;
  readonly deviceId: string;
  readonly folder: string;
  readonly identity: TlsIdentity;
  readonly listen: { readonly host: string; readonly port: number };
  readonly peers: readonly PeerAddress[];
  readonly log: Logger;
  /** Re-reads the configured peers (e.g. after `lockstep peer add`); called for unknown devices. */
  readonly reloadPeers?: () => readonly PeerAddress[];
  /** This device's human name. */
  readonly name: string;
  /** The configured lock authority, if any (else the smallest device ID). */
  readonly lockAuthority?: LockAuthoritySetting | undefined;
}

/** Events of a {@link Cluster}. */
export interface ClusterEvents {
  /** A change from a peer is on disk and recorded. */
  applied: [
    record: FileRecord,
    kind: Exclude<Action['kind'], 'none'>,
    conflictCopy: string | undefined,
    /** From planning to recorded, ms. */
    ms: number,
  ];
  peerConnected: [peer: PeerAddress];
  peerDisconnected: [peer: PeerAddress, reason: string];
  /** A change to a file locked elsewhere was undone here; `copy` keeps it (none for a delete). */
  lockedChange: [path: string, copy: string | undefined];
}

/** Peer sync for one device. */
export class Cluster extends EventEmitter<ClusterEvents> {
  readonly server: PeerServer;
  readonly links = new Map<string, PeerLink>();
  readonly fetcher: ChunkFetcher;
  readonly puller: Puller;
  /** Every change this device makes to its folder goes through it. */
  readonly writer: FolderWriter;
  readonly locks: LockService;
  private readonly lockWiring: LockWiring;
  /** Descriptors for reading chunks, shared by serving peers and local copies. */
  readonly fds = new FdCache();
  /** Paths recently checked to be live local files, for serving chunk hints. */
  private readonly hintOk = new Map<string, { ok: boolean; at: number }>();
  private readonly changeListeners = new Set<() => void>();
  private changeSoon = false;
  private readonly log: Logger;
  private closed = false;
  /** The bound peer port. */
  port = 0;

  constructor(private readonly opts: ClusterOptions) {
    super();
    this.log = opts.log;
    const device = opts.device;
    this.server = new PeerServer(
      {
        deviceId: opts.deviceId,
        store: device.store,
        log: opts.log,
        isPeer: (id) => this.isPeer(id),
        peerConnected: (id) => this.links.get(id)?.redial(),
        onLocalChange: (fn) => {
          this.changeListeners.add(fn);
          return () => this.changeListeners.delete(fn);
        },
        readChunk: (hash, hint, into, at) => this.readChunk(hash, hint, into, at),
        lockAuthority: () => this.authority(),
        locks: {
          snapshot: () => this.locks.all(),
          subscribe: (fn) => {
            this.locks.on('change', fn);
            return () => this.locks.off('change', fn);
          },
          handle: (body) => this.locks.handle(decodeLockRequest(body)),
        },
      },
      opts.identity,
    );
    this.writer = new FolderWriter({
      root: opts.folder,
      store: device.store,
      queue: device.queue,
      noteWrite: (rec) => device.wrote(rec),
      isLocked: (path) => this.locks.get(path) !== undefined,
    });
    this.lockWiring = new LockWiring({
      store: device.store,
      deviceId: opts.deviceId,
      folder: opts.folder,
      log: opts.log,
      setting: opts.lockAuthority,
      peers: () => this.links.keys(),
      disagreements: (mine) =>
        [...this.links.values()]
          .filter((l) => l.connected && l.peerAuthority !== undefined && l.peerAuthority !== mine)
          .map((l) => ({ peer: l.peer.id, choice: l.peerAuthority as string })),
      send: (auth, req, timeoutMs) => {
        const link = this.links.get(auth);
        if (link === undefined) {
          return Promise.reject(
            new LockstepError('PEER_UNREACHABLE', 'it is not a configured peer'),
          );
        }
        return link.request('/v1/locks', req, timeoutMs);
      },
      checkFile: (path) => this.checkLockable(path),
      deviceName: (id) => this.deviceName(id),
      serially: (fn) => void device.queue.run(fn),
      scanNow: (paths) => device.scanNow(paths),
      pullAgain: (paths) => this.puller.schedule(paths),
      lockedChange: (path, copy) => this.emit('lockedChange', path, copy),
      files: folderLockFiles(this.writer, device.store.localShort),
    });
    this.locks = this.lockWiring.service;
    this.fetcher = new ChunkFetcher(
      (short) => {
        for (const l of this.links.values()) if (l.short === short) return l;
        return undefined;
      },
      {
        onRejected: (peer, hash, reason) =>
          this.log.warn(
            { peer, hash },
            `rejected chunk ${hash.slice(0, 12)}… from peer ${peer}: ${reason}`,
          ),
      },
    );
    this.puller = new Puller({
      root: opts.folder,
      store: device.store,
      log: opts.log,
      queue: device.queue,
      fetcher: this.fetcher,
      fds: this.fds,
      ignores: (p, isDir) => device.ignores(p, isDir),
      stopped: () => device.stoppedReason !== undefined,
      lockHolder: (path) => this.locks.get(path)?.device.slice(0, 7),
      scanNow: (paths) => device.scanNow(paths),
      writer: this.writer,
      applied: (rec, kind, copy, ms) => {
        this.localChanged();
        this.emit('applied', rec, kind, copy, ms);
      },
    });
    device.on('indexed', (records) => {
      this.localChanged();
      if (this.links.size > 0) this.puller.schedule(records.map((r) => r.path));
    });
    device.on('folderState', (reason) => {
      if (reason === undefined) this.puller.scheduleAll();
    });
  }

  /** Listens for peers, dials every configured peer, and plans what is already known. */
  async start(): Promise<void> {
    this.lockWiring.start();
    this.on('applied', (r) => this.lockWiring.applied(r.path));
    this.port = await this.server.listen(this.opts.listen.host, this.opts.listen.port);
    this.setPeers(this.opts.peers);
    this.locks.authorityMayHaveChanged();
    this.puller.scheduleAll();
  }

  /** Adopts a new list of peers: new ones are dialed, removed ones dropped. */
  setPeers(peers: readonly PeerAddress[]): void {
    if (this.closed) return;
    const before = this.authority();
    const want = new Map(peers.map((p) => [p.id, p]));
    for (const [id, link] of this.links) {
      const p = want.get(id);
      if (p === undefined || p.address !== link.peer.address) {
        link.close();
        this.links.delete(id);
        this.log.info({ peer: id }, `peer ${link.name} removed from the configuration`);
      }
    }
    for (const p of peers) {
      if (this.links.has(p.id)) continue;
      const link = new PeerLink(p, this.opts.identity, this.opts.device.store, this.log);
      link.on('records', (paths) => this.puller.schedule(paths));
      // What waited for a peer to be reachable is tried again now.
      link.on('caughtUp', () => this.puller.retryNow());
      link.on('connected', () => this.emit('peerConnected', p));
      link.followLocks = () => link.peer.id === this.authority();
      link.on('hello', (choice) => {
        if (choice !== this.authority()) {
          this.log.warn(
            { peer: p.id, theirs: choice, ours: this.authority() },
            `peer ${link.name} takes ${this.deviceName(choice)} as lock authority, this device takes ${this.deviceName(this.authority())}: locking is refused until they agree`,
          );
        }
      });
      link.on('lockMessage', (value) => {
        try {
          // Only the authority's stream counts (one followed before it changed is dropped).
          this.lockWiring.deliver(p.id, value);
        } catch (err) {
          this.log.warn(
            { peer: p.id, err: errorMessage(err) },
            `rejected lock data from ${link.name}`,
          );
        }
      });
      link.on('disconnected', (reason) => this.emit('peerDisconnected', p, reason));
      this.links.set(p.id, link);
      link.start();
    }
    if (this.authority() !== before) {
      this.locks.authorityMayHaveChanged();
      // Follow the new authority's lock stream, and no longer the old one's.
      for (const l of this.links.values()) {
        if (l.connected && l.following !== l.followLocks()) l.reconnect();
      }
    }
  }

  /** Stops dialing, listening and pulling. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.lockWiring.close();
    this.puller.close();
    for (const l of this.links.values()) l.close();
    await this.server.close();
    this.fds.close();
  }

  private isPeer(id: string): boolean {
    if (this.links.has(id)) return true;
    if (this.opts.reloadPeers) {
      try {
        this.setPeers(this.opts.reloadPeers());
      } catch (err) {
        this.log.warn({ err: errorMessage(err) }, 'cannot re-read the configured peers');
      }
    }
    return this.links.has(id);
  }

  /** The lock authority device (see `electAuthority`). */
  authority(): string {
    return this.lockWiring.authority();
  }

  /** A device's human name: its configured name, else its short ID. */
  deviceName(id: string): string {
    if (id === this.opts.deviceId) return this.opts.name;
    return this.links.get(id)?.peer.name ?? id.slice(0, 7);
  }

  /** Throws unless `path` is a live file in the global view. */
  private checkLockable(path: string): void {
    const { local, remotes } = this.opts.device.store.candidates(path);
    const w = winner([...(local ? [local] : []), ...remotes.map((c) => c.record)]);
    if (w === undefined || w.deleted) {
      throw new LockstepError('NOT_FOUND', `${path} does not exist in the folder`);
    }
    if (w.type !== 'file') {
      throw new LockstepError('NOT_A_FILE', `${path} is a ${w.type}; only files can be locked`);
    }
  }

  /**
   * Serves a chunk: from where the asking peer expects it when that is a
   * live local file (no lookup, and no re-hash: the asker verifies), else
   * from wherever the chunk table says, verified.
   */
  private readChunk(
    hash: string,
    hint: ChunkHint | null,
    into?: Buffer,
    at = 0,
  ): Buffer | undefined {
    if (hint !== null) {
      const [path, offset, length] = hint;
      const now = Date.now();
      let known = this.hintOk.get(path);
      if (known === undefined || now - known.at > HINT_CHECK_MS) {
        const rec = this.opts.device.store.get(path);
        known = { ok: rec !== undefined && !rec.deleted && rec.type === 'file', at: now };
        if (this.hintOk.size >= 1024) this.hintOk.clear();
        this.hintOk.set(path, known);
      }
      if (known.ok) {
        const room = into !== undefined && at + length <= into.length;
        const file = join(this.opts.folder, path);
        const data = room
          ? this.fds.read(file, offset, length, into, at)
          : this.fds.read(file, offset, length);
        if (data !== undefined) return data;
      }
    }
    return readLocalChunk(this.opts.folder, this.opts.device.store, this.fds, hash);
  }

  /**
   * Tells the index streams that local records changed: once per turn of the
   * event loop, so a batch of pulled files goes out in one frame, not one
   * database read and one frame per file.
   */
  private localChanged(): void {
    if (this.changeSoon) return;
    this.changeSoon = true;
    setImmediate(() => {
      this.changeSoon = false;
      for (const fn of this.changeListeners) fn();
    });
  }
}

/**
 * A device among its peers: what a running {@link Device} gains once it
 * syncs. The cluster owns and wires four parts and holds no logic of its
 * own beyond that:
 *
 * - the peer set ({@link PeerSet}): one link per configured peer;
 * - the peer listener ({@link PeerServer}) with the {@link ChunkServer};
 * - the puller ({@link Puller}) and the folder writer ({@link FolderWriter})
 *   every change this device makes to its folder goes through;
 * - the locks ({@link LockWiring}): authority, replica and enforcement.
 */
import { EventEmitter } from 'node:events';
import { Disposables } from '../base/disposable.js';
import { LockstepError } from '../base/errors.js';
import type { Logger } from '../base/log.js';
import type { LockAuthoritySetting } from '../config/config.js';
import { shortId } from '../core/device-id.js';
import { meetAuthority, type AuthorityChoice, type LockScope } from '../core/lock-rules.js';
import { winner, type Action } from '../core/plan.js';
import type { FileRecord } from '../core/record.js';
import { FolderWriter } from '../folder/writer.js';
import type { LockService } from '../locks/lock-service.js';
import { decodeLockRequest } from '../locks/lock-wire.js';
import type { PeerAddress } from '../peer/link.js';
import { PeerServer } from '../peer/server.js';
import type { TlsIdentity } from '../peer/tls.js';
import { ChunkFetcher } from '../sync/fetcher.js';
import { FdCache } from '../sync/fd-cache.js';
import { confinedFs } from '../confined/fs.js';
import { ConfinedRoot } from '../confined/root.js';
import { Puller } from '../sync/puller.js';
import { AuthorityRecord } from './authority-record.js';
import { ChunkServer } from './chunk-server.js';
import type { Device, DeviceEvents } from './device.js';
import { folderLockFiles } from './lock-files.js';
import { LockFollower } from './lock-follow.js';
import { LockWiring } from './lock-wiring.js';
import { PeerSet } from './peer-set.js';
import { ClusterUsers } from './cluster-users.js';

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
  /** The recorded lock authority (undefined: not decided yet; it is adopted from the peers). */
  readonly lockAuthority?: LockAuthoritySetting | undefined;
  /** Records a new choice of lock authority in the configuration. */
  readonly saveAuthority?: (choice: AuthorityChoice) => void;
  /** The device's home: its `users.json` keeps the cluster's users (or this device's copy). */
  readonly home: string;
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
  readonly peers: PeerSet;
  readonly server: PeerServer;
  readonly fetcher: ChunkFetcher;
  readonly puller: Puller;
  /** Every change this device makes to its folder goes through it. */
  readonly writer: FolderWriter;
  readonly locks: LockService;
  /** Moves and ends locks held here as their holder renames and deletes their files. */
  private readonly follower: LockFollower;
  /** The cluster's users, kept by the lock authority (see cluster-users.ts). */
  readonly users: ClusterUsers;
  /** This device's recorded choice of lock authority. */
  readonly authorityRecord: AuthorityRecord;
  private readonly lockWiring: LockWiring;
  /** Descriptors for reading chunks, shared by serving peers and local copies. */
  private readonly fds: FdCache;
  /** The folder's directories, held for the confined filesystem (closed with the cluster). */
  private readonly confined: ConfinedRoot;
  /** Listeners this cluster added to the device; removed on close. */
  private readonly owned = new Disposables();
  private readonly changeListeners = new Set<() => void>();
  private changeSoon = false;
  private closed = false;
  /** The bound peer port. */
  port = 0;

  constructor(private readonly opts: ClusterOptions) {
    super();
    const device = opts.device;
    const log = opts.log;
    // One view of the folder, confined beneath its root, for every read and
    // write this cluster makes in it (see confined/root.ts).
    this.confined = new ConfinedRoot(opts.folder);
    const folderFs = confinedFs(this.confined);
    this.fds = new FdCache(folderFs);
    this.authorityRecord = new AuthorityRecord({
      self: opts.deviceId,
      initial: choiceOf(opts.lockAuthority),
      save: (choice) => opts.saveAuthority?.(choice),
      log,
      deviceName: (id) => this.deviceName(id),
    });
    this.peers = new PeerSet({
      self: { id: opts.deviceId, name: opts.name },
      identity: opts.identity,
      store: device.store,
      log,
      ...(opts.reloadPeers ? { reloadPeers: opts.reloadPeers } : {}),
      authority: () => this.authority(),
      choice: () => this.authorityRecord.choice,
      onPeerAuthority: (peer, theirs) => this.meetAuthority(peer, theirs),
      onRecords: (paths) => this.puller.schedule(paths),
      // What waited for a peer to be reachable is tried again now.
      onCaughtUp: () => this.puller.retryNow(),
      onLockMessage: (from, value) => this.lockWiring.deliver(from, value),
      onUserMessage: (from, value) => this.users.deliver(from, value),
      onAuthorityMayHaveChanged: () => {
        this.locks.authorityMayHaveChanged();
        this.users.authorityMayHaveChanged();
      },
    });
    this.peers.on('peerConnected', (p) => this.emit('peerConnected', p));
    this.peers.on('peerDisconnected', (p, why) => this.emit('peerDisconnected', p, why));
    const chunks = new ChunkServer(opts.folder, device.store, this.fds);
    this.server = this.peerServer(chunks);
    this.writer = new FolderWriter({
      root: opts.folder,
      fs: folderFs,
      store: device.store,
      queue: device.queue,
      noteWrite: (rec) => device.wrote(rec),
      isLocked: (path) => this.locks.covering(path) !== undefined,
    });
    this.lockWiring = new LockWiring({
      store: device.store,
      deviceId: opts.deviceId,
      folder: opts.folder,
      log,
      record: this.authorityRecord,
      setting: opts.lockAuthority,
      peers: () => this.peers.ids(),
      metPeer: () => this.peers.metAny(),
      disagreements: () => this.peers.disagreements(),
      send: (auth, req, timeoutMs) => this.peers.sendLockRequest(auth, req, timeoutMs),
      sendHandover: (to, req, timeoutMs) =>
        this.peers.sendLockRequest(to, req, timeoutMs, '/v1/locks/authority'),
      checkLockable: (path) => this.checkLockable(path),
      deviceName: (id) => this.deviceName(id),
      serially: (fn) => void device.queue.run(fn),
      scanNow: (paths) => device.scanNow(paths),
      pullAgain: (paths) => this.puller.schedule(paths),
      lockedChange: (path, copy) => this.emit('lockedChange', path, copy),
      files: folderLockFiles(this.writer, device.store.localShort),
      userProblem: (req, from) =>
        req.op === 'lock'
          ? this.users.claimProblem(req.owner, false, from)
          : this.users.claimProblem(req.user, req.op === 'unlock' && req.admin, from),
    });
    this.users = this.clusterUsers();
    this.locks = this.lockWiring.service;
    this.follower = new LockFollower({
      self: opts.deviceId,
      locks: this.locks,
      record: (path) => device.store.get(path),
      log,
    });
    this.fetcher = new ChunkFetcher((short) => this.peers.byShort(short), {
      onRejected: (peer, hash, reason) =>
        log.warn(
          { peer, hash },
          `rejected chunk ${hash.slice(0, 12)}… from peer ${peer}: ${reason}`,
        ),
    });
    this.puller = new Puller({
      root: opts.folder,
      store: device.store,
      log,
      queue: device.queue,
      fetcher: this.fetcher,
      fds: this.fds,
      ignores: (p, isDir) => device.ignores(p, isDir),
      stopped: () => device.stoppedReason !== undefined,
      lockOf: (path) => {
        const lock = this.locks.covering(path);
        return lock && { holder: shortId(lock.device), token: lock.token };
      },
      scanNow: (paths) => device.scanNow(paths),
      writer: this.writer,
      applied: (rec, kind, copy, ms) => {
        this.localChanged();
        this.emit('applied', rec, kind, copy, ms);
      },
    });
    const indexed = (...[records]: DeviceEvents['indexed']) => {
      this.follower.indexed(records);
      this.localChanged();
      if (this.peers.size > 0) this.puller.schedule(records.map((r) => r.path));
    };
    const folderState = (...[reason]: DeviceEvents['folderState']) => {
      if (reason === undefined) this.puller.scheduleAll();
    };
    device.on('indexed', indexed);
    device.on('folderState', folderState);
    this.owned.add(() => device.off('indexed', indexed));
    this.owned.add(() => device.off('folderState', folderState));
  }

  /** The cluster's users, kept by the lock authority (see cluster-users.ts). */
  private clusterUsers(): ClusterUsers {
    return new ClusterUsers({
      home: this.opts.home,
      self: this.opts.deviceId,
      log: this.opts.log,
      // With locks in etcd, each device keeps its own users for now.
      authority: () =>
        this.opts.lockAuthority?.kind === 'etcd' ? this.opts.deviceId : this.authority(),
      send: (to, req, timeoutMs) => this.peers.sendLockRequest(to, req, timeoutMs, '/v1/users'),
      deviceName: (id) => this.deviceName(id),
      members: () => this.peers.ids(),
      decided: () => this.opts.lockAuthority?.kind === 'etcd' || this.authorityRecord.decided,
    });
  }

  /** The peer listener, serving this device's index, chunks and locks. */
  private peerServer(chunks: ChunkServer): PeerServer {
    const { opts } = this;
    const device = opts.device;
    const log = opts.log;
    return new PeerServer(
      {
        deviceId: opts.deviceId,
        store: device.store,
        log,
        isPeer: (id) => this.peers.isPeer(id),
        peerConnected: (id) => this.peers.get(id)?.redial(),
        onLocalChange: (fn) => {
          this.changeListeners.add(fn);
          return () => this.changeListeners.delete(fn);
        },
        readChunk: (hash, hint, into, at) => chunks.read(hash, hint, into, at),
        lockAuthority: () => ({
          device: this.authority(),
          decided: this.authorityRecord.decided,
          epoch: this.authorityRecord.choice.epoch,
        }),
        locks: {
          snapshot: () => this.locks.all(),
          subscribe: (fn) => {
            this.locks.on('change', fn);
            return () => this.locks.off('change', fn);
          },
          handle: (body, from) => this.locks.handle(decodeLockRequest(body), from),
          handover: (body, from) => this.locks.handover(body, from),
        },
        users: {
          subscribe: (fn) => this.users.subscribe(fn),
          handle: (body, from) => this.users.handle(body, from),
        },
      },
      opts.identity,
    );
  }

  /** Listens for peers, dials every configured peer, and plans what is already known. */
  async start(): Promise<void> {
    this.lockWiring.start();
    const changed = () => {
      this.locks.authorityMayHaveChanged();
      this.users.authorityMayHaveChanged();
      this.peers.authorityChanged();
      this.server.announceAuthority();
    };
    this.authorityRecord.on('changed', changed);
    this.owned.add(() => this.authorityRecord.off('changed', changed));
    this.on('applied', (r) => this.lockWiring.applied(r.path));
    this.port = await this.server.listen(this.opts.listen.host, this.opts.listen.port);
    this.setPeers(this.opts.peers);
    this.locks.authorityMayHaveChanged();
    this.users.authorityMayHaveChanged();
    this.puller.scheduleAll();
  }

  /** Adopts a new list of peers: new ones are dialed, removed ones dropped. */
  setPeers(peers: readonly PeerAddress[]): void {
    if (!this.closed) this.peers.setPeers(peers);
  }

  /** Stops dialing, listening and pulling, and lets go of the device. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.owned.dispose();
    this.follower.close();
    this.lockWiring.close();
    this.puller.close();
    this.peers.close();
    await this.server.close();
    this.fds.close();
    this.confined.close();
  }

  /** The lock authority device: the recorded one (this device while undecided). */
  authority(): string {
    return this.lockWiring.authority();
  }

  /** A configuration edited by hand: its choice of authority is taken at once. */
  editedAuthority(setting: LockAuthoritySetting | undefined): void {
    // An edit never un-decides; a switch to or from etcd takes a restart.
    if (setting?.kind !== 'device') return;
    this.authorityRecord.edited(choiceOf(setting));
  }

  /** Peer `peer` announced `theirs`: an undecided device adopts, a later move is followed. */
  private meetAuthority(peer: string, theirs: AuthorityChoice): void {
    // Locks in etcd are configured, never adopted (and an etcd peer is never adopted).
    if (this.opts.lockAuthority?.kind === 'etcd' || theirs.device?.startsWith('etcd:') === true) {
      return;
    }
    const mine = this.authorityRecord.choice;
    const next = meetAuthority(mine, theirs);
    if (next === undefined) return;
    const why =
      mine.device === undefined
        ? `adopted from ${this.deviceName(peer)}, as its cluster decided`
        : `moved on purpose, as ${this.deviceName(peer)} says`;
    this.authorityRecord.record(next, why);
  }

  /** A device's human name: its configured name, else its short ID. */
  deviceName(id: string): string {
    return this.peers.deviceName(id);
  }

  /**
   * The full ID of this device or a configured peer, named by its ID, short
   * ID or configured name.
   *
   * @throws LockstepError `NOT_FOUND` when none is, `USAGE` when several are
   */
  deviceIdOf(name: string): string {
    const all = [this.opts.deviceId, ...this.peers.ids()];
    const upper = name.toUpperCase();
    const found = all.filter(
      (id) => id === upper || shortId(id) === upper || this.deviceName(id) === name,
    );
    if (found.length === 1) return found[0] as string;
    if (found.length === 0) {
      throw new LockstepError(
        'NOT_FOUND',
        `No device ${JSON.stringify(name)}: give this device's or a configured peer's ID, short ID or name (see \`lockstep status\`)`,
      );
    }
    throw new LockstepError(
      'USAGE',
      `${JSON.stringify(name)} names ${found.length} devices; give its ID`,
    );
  }

  /** The scope a lock on `path` takes: a live file's or a live directory's in the global view. */
  private checkLockable(path: string): LockScope {
    const { local, remotes } = this.opts.device.store.candidates(path);
    const w = winner([...(local ? [local] : []), ...remotes.map((c) => c.record)]);
    if (w === undefined || w.deleted) {
      throw new LockstepError('NOT_FOUND', `${path} does not exist in the folder`);
    }
    if (w.type === 'file') return 'file';
    if (w.type === 'directory') return 'directory';
    throw new LockstepError(
      'NOT_A_FILE',
      `${path} is a ${w.type}; only files and directories can be locked`,
    );
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

/** The recorded choice a setting gives (an etcd setting records no device). */
function choiceOf(setting: LockAuthoritySetting | undefined): AuthorityChoice {
  return setting?.kind === 'device'
    ? { device: setting.device, epoch: setting.epoch }
    : { device: undefined, epoch: 0 };
}

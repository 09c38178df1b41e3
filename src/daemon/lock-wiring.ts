/**
 * Locks, put together for one device: the table in its SQLite index, the
 * two ways to reach the authority (this device's table, or the authority
 * device through a "send" function), the replica that follows whichever is
 * in charge, and enforcement on the folder's disk. The cluster hands in its
 * peer link's send function and lock streams; nothing here knows the link.
 */
import { readFileSync } from 'node:fs';
import type { Clock } from '../base/clock.js';
import { systemClock } from '../base/clock.js';
import { Disposables } from '../base/disposable.js';
import { LockstepError, errorMessage } from '../base/errors.js';
import type { Logger } from '../base/log.js';
import type { LockAuthoritySetting } from '../config/config.js';
import type { AuthorityRecord } from './authority-record.js';
import { impliedAuthority, type LockScope } from '../core/lock-rules.js';
import { EmbeddedAuthority } from '../locks/embedded-authority.js';
import { EtcdAuthority } from '../locks/etcd-authority.js';
import { LockEnforcement, type LockedFiles } from '../locks/enforcement.js';
import { ForwardedAuthority, type SendLockRequest } from '../locks/forwarded-authority.js';
import { Handover, type HandoverRequest } from '../locks/handover.js';
import { LockService } from '../locks/lock-service.js';
import type { LockChange, LockRequest } from '../locks/lock-wire.js';
import { LockReplica } from '../locks/replica.js';
import type { IndexStore } from '../store/index-store.js';

/** Options of {@link LockWiring}. */
export interface LockWiringOptions {
  readonly store: IndexStore;
  /** This device's full ID. */
  readonly deviceId: string;
  readonly folder: string;
  readonly log: Logger;
  /** This device's recorded choice of authority. */
  readonly record: AuthorityRecord;
  /** The configured authority: with etcd, every request goes there. */
  readonly setting?: LockAuthoritySetting | undefined;
  /** The configured peers' device IDs. */
  peers(): Iterable<string>;
  /** Whether a peer is connected and has said which authority it takes. */
  metPeer(): boolean;
  /** Connected peers whose choice of authority differs from this device's. */
  disagreements(): readonly { peer: string; choice: string }[];
  /** Sends a lock request to a device (the peer link). */
  readonly send: SendLockRequest;
  /** Sends a handover request to a device (the peer link). */
  sendHandover(device: string, req: HandoverRequest, timeoutMs: number): Promise<unknown>;
  /** The scope a lock on `path` takes; throws NOT_FOUND or NOT_A_FILE (see `EmbeddedAuthority`). */
  checkLockable(path: string): LockScope;
  deviceName(id: string): string;
  /** Runs `fn` on the device's serial queue. */
  serially(fn: () => Promise<void>): void;
  scanNow(paths: readonly string[]): Promise<unknown>;
  /** Plans `paths` again. */
  pullAgain(paths: readonly string[]): void;
  /** A change to a locked file was undone here; `copy` keeps it. */
  lockedChange(path: string, copy: string | undefined): void;
  readonly clock?: Clock;
  /** Enforcement's file operations (the folder writer's, see lock-files.ts). */
  readonly files: LockedFiles;
  /** Why a peer's lock request names a user the cluster does not allow (see LockService). */
  userProblem?(req: LockRequest, from: string): string | undefined;
}

/** The lock parts of one device, wired. */
export class LockWiring {
  readonly service: LockService;
  readonly enforcement: LockEnforcement;
  private readonly forwarded: ForwardedAuthority;
  /** The lock table in etcd, when the setting says so. */
  readonly etcd: EtcdAuthority | undefined;
  /** The listeners {@link start} added, removed by {@link close}. */
  private readonly owned = new Disposables();

  constructor(private readonly o: LockWiringOptions) {
    const table = o.store.lockTable();
    const clock = o.clock ?? systemClock;
    const deviceName = (id: string) => o.deviceName(id);
    const authority = () => this.authority();
    const replica = new LockReplica(table);
    this.forwarded = new ForwardedAuthority({ device: authority, send: o.send, deviceName });
    const embedded = new EmbeddedAuthority({
      table,
      clock,
      log: o.log,
      checkLockable: (p) => o.checkLockable(p),
      deviceName,
    });
    const handover = new Handover({
      self: o.deviceId,
      choice: () => o.record.choice,
      record: (choice, why) => o.record.record(choice, why),
      table,
      pause: (to) => embedded.pause(to),
      isPeer: (id) => [...o.peers()].includes(id),
      send: (device, req, ms) => o.sendHandover(device, req, ms),
      deviceName,
    });
    this.etcd = etcdAuthority(o, table, clock);
    this.service = new LockService({
      self: o.deviceId,
      replica,
      embedded,
      remote: this.forwarded,
      etcd: this.etcd,
      authority,
      disagreements: () => o.disagreements(),
      ensureDecided: () => this.ensureDecided(),
      deviceName,
      handover,
      sendHandover: (device, req, ms) => o.sendHandover(device, req, ms),
      userProblem: (req, from) => o.userProblem?.(req, from),
    });
    this.enforcement = new LockEnforcement({
      self: o.deviceId,
      lockOf: (p) => replica.covering(p),
      pathsBelow: (dir) => pathsBelow(o.store, dir),
      files: o.files,
      log: o.log,
      serially: o.serially,
      forgetLocal: (p) => o.store.forgetLocal(p),
      scanNow: o.scanNow,
      pullAgain: o.pullAgain,
      lockedChange: o.lockedChange,
      deviceName,
    });
  }

  /**
   * The lock authority device: the recorded one; while none is (no lock was
   * ever granted in this device's cluster), the smallest ID of this device
   * and its configured peers, which records itself at its first grant.
   */
  authority(): string {
    const s = this.o.setting;
    // With etcd, no device is the authority: peers compare "etcd:PREFIX".
    if (s?.kind === 'etcd') return `etcd:${s.prefix}`;
    if (this.o.record.decided) return this.o.record.device();
    return impliedAuthority(this.o.deviceId, this.o.peers());
  }

  /**
   * A device that has not recorded an authority records itself when it is
   * alone (it makes the cluster's first lock); with peers it must meet one
   * first, or it could grant locks that its cluster's authority never hears of.
   */
  private ensureDecided(): void {
    if (this.o.setting?.kind === 'etcd' || this.o.record.decided) return;
    const peers = [...this.o.peers()];
    if (peers.length === 0 || this.o.metPeer()) {
      // Asked elsewhere: that device records itself when it grants.
      if (this.authority() !== this.o.deviceId) return;
      const why =
        peers.length === 0
          ? 'the first lock of a cluster of one'
          : 'the first lock of its cluster (the smallest device ID)';
      if (this.o.record.record({ device: this.o.deviceId, epoch: 0 }, why)) return;
      throw new LockstepError(
        'AUTHORITY_UNREACHABLE',
        'The lock authority could not be recorded in config.json; see the device log',
      );
    }
    throw new LockstepError(
      'AUTHORITY_UNREACHABLE',
      `The lock authority is not known yet: this device has not met any of its peers (${peers.map((p) => this.o.deviceName(p)).join(', ')}) since it was made, and takes their choice when it does. Start them or check that they are reachable; or set "lockAuthority" in config.json`,
    );
  }

  /**
   * Takes a message of `from`'s lock stream (unchecked).
   *
   * @throws LockstepError `PEER_INVALID` if it is malformed
   */
  deliver(from: string, value: unknown): void {
    this.forwarded.deliver(from, value);
  }

  /**
   * Starts enforcing: a file locked by a user on another device is
   * read-only here, and a change to it anyway is kept as a conflict copy
   * while the holder's version comes back.
   */
  start(): void {
    const store = this.o.store;
    // The guard stays until the device closes: a scan that finishes while
    // the device stops must still refuse a change to a file locked elsewhere.
    store.guard = (path) => this.enforcement.vetoes(path);
    store.onVeto = (paths) => this.enforcement.restore(paths);
    store.fence = (path) => this.enforcement.fencingToken(path);
    const changed = (c: LockChange) => {
      const paths = this.enforcement.lockChanged(c.lock);
      // A moved lock leaves its old path: that one is enforced again too.
      if (c.type === 'moved' && c.from !== undefined) {
        paths.push(...this.enforcement.lockChanged({ ...c.lock, path: c.from }));
      }
      // Versions refused while it was locked (or to refuse now) are planned again.
      this.o.pullAgain(paths);
    };
    this.service.on('change', changed);
    this.owned.add(() => this.service.off('change', changed));
    this.enforcement.enforceAll(this.service.all());
    // Expiry starts once the peers are known (the cluster asks then): before
    // that every device would take itself for the authority and could expire
    // its copy of another authority's locks.
  }

  /** A pulled change of `path` is on disk and recorded. */
  applied(path: string): void {
    this.enforcement.applied(path);
  }

  /** Stops expiring and following. */
  close(): void {
    this.owned.dispose();
    this.service.close();
    this.etcd?.close();
  }
}

/** Every path below `dir` in the global view (any device's record). */
function* pathsBelow(store: IndexStore, dir: string): Generator<string> {
  for (const rows of store.view.below(dir)) {
    const first = rows[0];
    if (first !== undefined) yield first.record.path;
  }
}

/**
 * The etcd authority for an etcd setting (else undefined): its TLS files
 * read now, the largest token this device knows (the embedded counter, one
 * taken) for the base, and this device's locks to bring in once.
 */
function etcdAuthority(
  o: LockWiringOptions,
  table: ReturnType<IndexStore['lockTable']>,
  clock: Clock,
): EtcdAuthority | undefined {
  const s = o.setting;
  if (s?.kind !== 'etcd') return undefined;
  const read = (file: string) => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new LockstepError(
        'CONFIG_INVALID',
        `lockAuthority.etcd.tls: cannot read ${file} (${errorMessage(err)}); fix the path in config.json`,
        { cause: err },
      );
    }
  };
  const tls = s.tls && {
    ca: read(s.tls.ca),
    ...(s.tls.cert === undefined ? {} : { cert: read(s.tls.cert) }),
    ...(s.tls.key === undefined ? {} : { key: read(s.tls.key) }),
  };
  return new EtcdAuthority({
    endpoints: s.endpoints,
    prefix: s.prefix,
    tls,
    clock,
    log: o.log,
    // Directory locks are granted by the embedded authority only, for now.
    checkFile: (p) => {
      if (o.checkLockable(p) === 'directory') {
        throw new LockstepError(
          'NOT_A_FILE',
          `${p} is a directory; with locks in etcd only files can be locked for now`,
        );
      }
    },
    deviceName: (id) => o.deviceName(id),
    knownToken: table.durably(() => table.takeToken()),
    importLocks: table.all(),
  });
}

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
import { electAuthority } from '../core/lock-rules.js';
import { EmbeddedAuthority } from '../locks/embedded-authority.js';
import { EtcdAuthority } from '../locks/etcd-authority.js';
import { LockEnforcement, type LockedFiles } from '../locks/enforcement.js';
import { ForwardedAuthority, type SendLockRequest } from '../locks/forwarded-authority.js';
import { LockService } from '../locks/lock-service.js';
import type { LockChange } from '../locks/lock-wire.js';
import { LockReplica } from '../locks/replica.js';
import type { IndexStore } from '../store/index-store.js';

/** Options of {@link LockWiring}. */
export interface LockWiringOptions {
  readonly store: IndexStore;
  /** This device's full ID. */
  readonly deviceId: string;
  readonly folder: string;
  readonly log: Logger;
  /** The configured authority; without one, the member with the smallest device ID. */
  readonly setting?: LockAuthoritySetting | undefined;
  /** The configured peers' device IDs. */
  peers(): Iterable<string>;
  /** Connected peers whose choice of authority differs from this device's. */
  disagreements(authority: string): readonly { peer: string; choice: string }[];
  /** Sends a lock request to a device (the peer link). */
  readonly send: SendLockRequest;
  /** Throws NOT_FOUND or NOT_A_FILE unless `path` is a live file in the global view. */
  checkFile(path: string): void;
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
    this.etcd = etcdAuthority(o, table, clock);
    this.service = new LockService({
      self: o.deviceId,
      replica,
      embedded: new EmbeddedAuthority({
        table,
        clock,
        log: o.log,
        checkFile: (p) => o.checkFile(p),
        deviceName,
      }),
      remote: this.forwarded,
      etcd: this.etcd,
      authority,
      disagreements: () => o.disagreements(this.authority()),
      deviceName,
    });
    this.enforcement = new LockEnforcement({
      self: o.deviceId,
      lockOf: (p) => replica.get(p),
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

  /** The lock authority device: see {@link electAuthority}. */
  authority(): string {
    const s = this.o.setting;
    // With etcd, no device is the authority: peers compare "etcd:PREFIX".
    if (s?.kind === 'etcd') return `etcd:${s.prefix}`;
    return electAuthority(s?.device, this.o.deviceId, this.o.peers());
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
    const changed = (c: LockChange) => {
      this.enforcement.lockChanged(c.lock.path);
      // Versions refused while it was locked (or to refuse now) are planned again.
      this.o.pullAgain([c.lock.path]);
    };
    this.service.on('change', changed);
    this.owned.add(() => this.service.off('change', changed));
    this.enforcement.enforceAll(this.service.all().map((l) => l.path));
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
    checkFile: (p) => o.checkFile(p),
    deviceName: (id) => o.deviceName(id),
    knownToken: table.durably(() => table.takeToken()),
    importLocks: table.all(),
  });
}

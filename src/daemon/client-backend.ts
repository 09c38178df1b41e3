/**
 * The device's answers to clients (the API, the CLI, the web page): the
 * global view as a listing, status, locks and live events, built from the
 * index, the cluster and the lock service, and changes to the folder made
 * through the device.
 */
import { join } from 'node:path';
import { LockstepError } from '../base/errors.js';
import { lockedPathText } from '../core/lock-scope.js';
import { isInternalPath, pathProblem } from '../core/path.js';
import type { ClientBackend, User } from '../api/backend.js';
import { DeviceRefs } from './client-refs.js';
import { liveEvents } from './client-events.js';
import { statusOf } from './client-status.js';
import type { Cluster } from './cluster.js';
import type { Device } from './device.js';
import { createListing } from './listing.js';

/** Options of {@link createClientBackend}. */
export interface ClientBackendOptions {
  readonly device: Device;
  readonly cluster: Cluster;
  readonly deviceId: string;
  readonly name: string;
  readonly folder: string;
  readonly version: string;
}

/** Builds the client backend of a running device. */
export function createClientBackend(o: ClientBackendOptions): ClientBackend {
  const { device, cluster } = o;
  const refs = new DeviceRefs((id) => cluster.deviceName(id));
  const self = refs.ref(o.deviceId);
  const listing = createListing({
    view: device.store.view,
    locks: cluster.locks,
    progress: cluster.puller.progress,
    refs,
  });
  const events = liveEvents({ device, cluster, refs, self });

  /**
   * Checks that `user` may change `path` through this device; returns its
   * absolute path. The lock holder writes through the device the lock was
   * taken at (elsewhere the file is guarded and a change would be undone).
   * A directory lock covers every path below it, new ones too.
   */
  const writable = (path: string, user: User): string => {
    const problem =
      pathProblem(path) ?? (isInternalPath(path) ? "it is Lockstep's own file" : undefined);
    if (problem !== undefined)
      throw new LockstepError('PATH_INVALID', `Cannot write ${path}: ${problem}`);
    if (device.stoppedReason !== undefined) {
      throw new LockstepError('FOLDER_STOPPED', `The folder is stopped: ${device.stoppedReason}`);
    }
    const lock = cluster.locks.covering(path);
    if (lock !== undefined && (lock.owner !== user.name || lock.device !== o.deviceId)) {
      const holder = `${lock.owner}@${cluster.deviceName(lock.device)}`;
      // A lock on a directory above: named, with its path.
      const what = lock.path === path ? path : `${path} is inside ${lockedPathText(lock)}, which`;
      throw new LockstepError(
        'LOCKED',
        lock.owner === user.name
          ? `${what} is locked by you at ${cluster.deviceName(lock.device)}; change it through that device`
          : `${what} is locked by ${holder} since ${new Date(lock.createdMs).toISOString()}; only ${lock.owner} can change it`,
      );
    }
    return join(o.folder, path);
  };

  return {
    events,
    ...listing,
    status: () =>
      statusOf({
        device,
        cluster,
        index: device.store,
        refs,
        self,
        folder: o.folder,
        version: o.version,
      }),
    locks() {
      return cluster.locks.all().map((l) => refs.lock(l));
    },
    async lock(path: string, user: User, opts) {
      const { lock } = await cluster.locks.lock(path, user.name, opts);
      return refs.lock(lock);
    },
    async write(path: string, user: User, data: AsyncIterable<Uint8Array>) {
      writable(path, user);
      // Checked again on the folder's queue right before the rename: the
      // lock may have been taken while the data came in.
      const { size } = await cluster.writer.upload(path, data, () => writable(path, user));
      return { path, size };
    },
    async remove(path: string, user: User) {
      writable(path, user);
      await cluster.writer.remove(path, () => writable(path, user));
      return { path };
    },
    async unlock(path: string, user: User, opts) {
      const { lock } = await cluster.locks.unlock(path, user, opts.force === true);
      return refs.lock(lock);
    },
    async moveAuthority(to: string, user: User) {
      if (!user.admin) {
        throw new LockstepError(
          'FORBIDDEN',
          `Only an administrator can move the lock authority; ${user.name} is not one`,
        );
      }
      const moved = await cluster.locks.moveAuthority(cluster.deviceIdOf(to));
      return { from: refs.ref(moved.from), to: refs.ref(moved.to), locks: moved.locks };
    },
    users: {
      list: () =>
        cluster.users.list().map((u) => ({ name: u.name, admin: u.admin, created: u.created })),
      add: (name, opts, user) => cluster.users.add(name, opts, user),
      remove: (name, user) => cluster.users.remove(name, user),
    },
  };
}

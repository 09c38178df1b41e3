/**
 * The device's status as clients see it (`lockstep status`, the web page's
 * header): its peers, the lock authority, what is left to sync, problems.
 */
import type { DeviceRef, Status } from '../api/backend.js';
import type { DeviceRefs } from './client-refs.js';
import type { Cluster } from './cluster.js';
import type { Device } from './device.js';

/** What status reads of the index: the count and size of live local records. */
export interface IndexTotals {
  totals(): { files: number; bytes: number };
}

/** Where {@link statusOf} reads from. */
export interface StatusOptions {
  readonly device: Pick<Device, 'stoppedReason' | 'problems'>;
  readonly cluster: Pick<Cluster, 'peers' | 'authority' | 'puller'>;
  readonly index: IndexTotals;
  readonly refs: DeviceRefs;
  /** This device. */
  readonly self: DeviceRef;
  readonly folder: string;
  /** Lockstep's version. */
  readonly version: string;
}

/** The device's status now. */
export function statusOf(o: StatusOptions): Status {
  const { cluster, device } = o;
  const peers = [...cluster.peers.all()].map((l) => ({
    ...o.refs.ref(l.peer.id),
    address: l.peer.address,
    connected: l.connected,
    lastSeen: l.lastSeen?.toISOString() ?? null,
    error: l.lastError ?? null,
  }));
  // Connected peers that name another authority: no one answers for locks.
  const differ = cluster.peers.disagreements().length > 0;
  let bytes = 0;
  const transfers: { path: string; done: number; total: number }[] = [];
  for (const [path, p] of cluster.puller.progress) {
    bytes += p.total - p.done;
    transfers.push({ path, done: Math.min(p.done, p.total), total: p.total });
  }
  const t = o.index.totals();
  return {
    device: { ...o.self, folder: o.folder, version: o.version },
    peers,
    lockAuthority: differ ? null : o.refs.ref(cluster.authority()),
    toSync: { files: cluster.puller.pendingCount(), bytes },
    transfers: transfers.slice(0, 100),
    local: { files: t.files, bytes: t.bytes },
    stopped: device.stoppedReason ?? null,
    problems: [
      ...[...device.problems.values()].map((p) => ({ path: p.path, message: p.message })),
      ...[...cluster.puller.problems].map(([path, message]) => ({ path, message })),
    ],
  };
}

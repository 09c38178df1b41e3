/**
 * The live events clients follow (`lockstep watch`, the web page): local
 * changes indexed, peers' changes applied, conflicts, locks, peers coming
 * and going, each as one {@link ClientEvent}.
 */
import { EventEmitter } from 'node:events';
import type { ClientEvent, DeviceRef } from '../api/backend.js';
import type { LockService } from '../locks/lock-service.js';
import type { AuthorityRecord } from './authority-record.js';
import type { DeviceRefs } from './client-refs.js';
import type { Cluster } from './cluster.js';
import type { Device } from './device.js';

/** Where {@link liveEvents} listens. */
export interface LiveEventsOptions {
  readonly device: Pick<Device, 'on'>;
  readonly cluster: Pick<Cluster, 'on'> & {
    readonly locks: Pick<LockService, 'on'>;
    readonly authorityRecord: Pick<AuthorityRecord, 'on'>;
  };
  readonly refs: DeviceRefs;
  /** This device. */
  readonly self: DeviceRef;
}

/**
 * An emitter of the device's client events, fed from now on by listeners
 * on the device, the cluster and the lock service for as long as they live.
 */
export function liveEvents(o: LiveEventsOptions): EventEmitter<{ event: [ClientEvent] }> {
  const { device, cluster, self } = o;
  const events = new EventEmitter<{ event: [ClientEvent] }>();
  const now = () => new Date().toISOString();
  device.on('indexed', (records) => {
    for (const r of records) {
      const counters = Object.values(r.version).reduce((a, b) => a + b, 0);
      events.emit('event', {
        type: r.deleted ? 'deleted' : counters === 1 ? 'added' : 'modified',
        path: r.path,
        device: self,
        size: r.size,
        time: now(),
      });
    }
  });
  cluster.on('applied', (r, kind, copy, ms) => {
    if (kind === 'version' || kind === 'tombstone') return;
    if (copy !== undefined) {
      events.emit('event', { type: 'conflict', path: r.path, copy, device: self, time: now() });
    }
    events.emit('event', {
      type: 'synced',
      path: r.path,
      device: self,
      deleted: r.deleted,
      durationMs: Math.round(ms),
      time: now(),
    });
  });
  cluster.on('lockedChange', (path, copy) => {
    if (copy !== undefined) {
      events.emit('event', { type: 'conflict', path, copy, device: self, time: now() });
    }
  });
  cluster.locks.on('change', (c) => {
    if (c.type === 'refreshed') return; // the API has no event for a longer expiry yet
    events.emit('event', {
      type: c.type,
      lock: o.refs.lock(c.lock),
      ...(c.by === undefined ? {} : { by: c.by }),
      ...(c.from === undefined ? {} : { from: c.from }),
      time: now(),
    });
  });
  cluster.authorityRecord.on('changed', (choice, reason) => {
    if (choice.device === undefined) return;
    events.emit('event', {
      type: 'authority',
      device: o.refs.ref(choice.device),
      reason,
      time: now(),
    });
  });
  cluster.on('peerConnected', (p) =>
    events.emit('event', { type: 'connected', device: o.refs.ref(p.id), time: now() }),
  );
  cluster.on('peerDisconnected', (p, reason) =>
    events.emit('event', { type: 'disconnected', device: o.refs.ref(p.id), reason, time: now() }),
  );
  return events;
}

/**
 * How devices and locks appear to clients: a device as its ID, short ID and
 * name; a lock with its device named and its times as ISO text.
 */
import { shortId } from '../core/device-id.js';
import type { DeviceRef, LockInfo } from '../api/backend.js';
import type { LockRow } from '../core/lock-rules.js';

/** Turns device IDs and lock rows into what clients see, naming devices as configured now. */
export class DeviceRefs {
  /** Device refs by ID, for listings that name the same few devices on every entry. */
  private readonly cache = new Map<string, DeviceRef>();

  /** `name` gives a device's human name (it may change while the device runs). */
  constructor(private readonly name: (id: string) => string) {}

  /** The ref of device `id`, made afresh. */
  ref(id: string): DeviceRef {
    return { id, short: shortId(id), name: this.name(id) };
  }

  /** The ref of device `id`, made once while its name stays the same. */
  cached(id: string): DeviceRef {
    let r = this.cache.get(id);
    if (r === undefined || r.name !== this.name(id)) {
      r = this.ref(id);
      this.cache.set(id, r);
    }
    return r;
  }

  /** A lock as clients see it. */
  lock(l: LockRow): LockInfo {
    return {
      id: l.id,
      path: l.path,
      owner: l.owner,
      device: this.ref(l.device),
      created: new Date(l.createdMs).toISOString(),
      expires: l.expiresMs === null ? null : new Date(l.expiresMs).toISOString(),
      reason: l.reason,
      scope: l.scope ?? 'file',
    };
  }
}

// A lock's scope at the wire: checked like its other fields; an old peer's row is a file lock.
import { describe, expect, it } from 'vitest';
import { formatDeviceId } from '../core/device-id.js';
import { decodeLock, decodeLockStream } from './lock-wire.js';

const DEVICE = formatDeviceId(new Uint8Array(32).fill(7));
const row = {
  path: 'proj',
  id: 'l1',
  owner: 'alice',
  device: DEVICE,
  createdMs: 1,
  expiresMs: null,
  reason: '',
  token: 3,
};

describe('decodeLock: scope', () => {
  it('keeps a directory scope', () => {
    expect(decodeLock({ ...row, scope: 'directory' }).scope).toBe('directory');
  });
  it('reads a row without scope (an older peer) as a file lock', () => {
    expect(decodeLock(row).scope).toBe('file');
    const m = decodeLockStream({ type: 'locks', locks: [row] });
    expect(m.type === 'locks' && m.locks[0]?.scope).toBe('file');
  });
  for (const bad of ['dir', 'DIRECTORY', '', 1, null, true, ['file']]) {
    it(`refuses scope ${JSON.stringify(bad)}`, () => {
      expect(() => decodeLock({ ...row, scope: bad })).toThrow(
        /Peer lock message: scope must be file or directory/,
      );
    });
  }
});

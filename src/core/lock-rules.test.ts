import { describe, expect, it } from 'vitest';
import {
  describeHolder,
  electAuthority,
  lockVerdict,
  type LockedChange,
  type LockVerdict,
} from './lock-rules.js';

describe('lockVerdict', () => {
  const remote = (over: Partial<Extract<LockedChange, { origin: 'remote' }>>): LockedChange => ({
    origin: 'remote',
    lock: 'elsewhere',
    versionOnly: false,
    madeByHolder: false,
    holderHasSeen: false,
    ...over,
  });
  const cases: { name: string; change: LockedChange; verdict: LockVerdict }[] = [
    {
      name: 'local change, not locked',
      change: { origin: 'local', lock: 'none' },
      verdict: 'accept',
    },
    {
      name: "local change on the holder's device",
      change: { origin: 'local', lock: 'here' },
      verdict: 'accept',
    },
    {
      name: 'local change while locked elsewhere (root wrote a read-only file)',
      change: { origin: 'local', lock: 'elsewhere' },
      verdict: 'restore',
    },
    { name: 'remote version, not locked', change: remote({ lock: 'none' }), verdict: 'accept' },
    {
      name: 'remote version made by the holder',
      change: remote({ madeByHolder: true }),
      verdict: 'accept',
    },
    {
      name: "remote version the holder's device has seen",
      change: remote({ holderHasSeen: true }),
      verdict: 'accept',
    },
    {
      name: 'remote version-only merge of a locked path',
      change: remote({ versionOnly: true }),
      verdict: 'accept',
    },
    {
      name: 'stale remote version reaching the holder: kept as a conflict copy',
      change: remote({ lock: 'here' }),
      verdict: 'refuse-keep-copy',
    },
    {
      name: 'stale remote version reaching a third device: waits for the holder',
      change: remote({ lock: 'elsewhere' }),
      verdict: 'refuse-wait',
    },
    {
      name: 'the holder seeing its own version again',
      change: remote({ lock: 'here', madeByHolder: true }),
      verdict: 'accept',
    },
  ];
  for (const c of cases) {
    it(c.name, () => expect(lockVerdict(c.change)).toBe(c.verdict));
  }
});

describe('electAuthority', () => {
  const cases: {
    name: string;
    configured: string | undefined;
    self: string;
    peers: string[];
    want: string;
  }[] = [
    {
      name: 'the configured one wins',
      configured: 'ZZZ',
      self: 'AAA',
      peers: ['BBB'],
      want: 'ZZZ',
    },
    { name: 'alone: this device', configured: undefined, self: 'MMM', peers: [], want: 'MMM' },
    {
      name: 'else the smallest device ID',
      configured: undefined,
      self: 'MMM',
      peers: ['XXX', 'CCC', 'DDD'],
      want: 'CCC',
    },
    {
      name: 'this device when it is the smallest',
      configured: undefined,
      self: 'AAA',
      peers: ['BBB'],
      want: 'AAA',
    },
  ];
  for (const c of cases) {
    it(c.name, () => expect(electAuthority(c.configured, c.self, c.peers)).toBe(c.want));
  }
});

describe('describeHolder', () => {
  it('names the owner, the device and since when', () => {
    const lock = {
      path: 'a',
      id: 'i',
      owner: 'alice',
      device: 'D',
      createdMs: 0,
      expiresMs: null,
      reason: '',
      token: 1,
    };
    expect(describeHolder(lock, () => 'A')).toBe('alice@A since 1970-01-01T00:00:00.000Z');
  });
});

import { describe, expect, it } from 'vitest';
import {
  describeHolder,
  peerRequestProblem,
  electAuthority,
  lockVerdict,
  type LockedChange,
  type LockRow,
  type LockVerdict,
} from './lock-rules.js';

describe('lockVerdict', () => {
  const remote = (over: Partial<Extract<LockedChange, { origin: 'remote' }>>): LockedChange => ({
    origin: 'remote',
    lock: 'elsewhere',
    versionOnly: false,
    madeByHolder: false,
    holderHasSeen: false,
    token: 0,
    lockToken: 5,
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
    // Fencing: the lock's token is 5 unless a case says otherwise.
    {
      name: 'fencing: a version under the current token reaching a third device',
      change: remote({ madeByHolder: true, token: 5 }),
      verdict: 'accept',
    },
    {
      name: 'fencing: a version under the current token, even as the holder device sees it again',
      change: remote({ lock: 'here', madeByHolder: true, token: 5 }),
      verdict: 'accept',
    },
    {
      name: "fencing: a later token reaching the holder's device, whose replica is behind (the new holder's write)",
      change: remote({ lock: 'here', token: 6 }),
      verdict: 'accept',
    },
    {
      name: 'fencing: a later token reaching a third device whose replica is behind',
      change: remote({ lock: 'elsewhere', token: 9 }),
      verdict: 'accept',
    },
    {
      name: "fencing: an older token (a stale holder's write) reaching the holder: a conflict copy",
      change: remote({ lock: 'here', token: 4 }),
      verdict: 'refuse-keep-copy',
    },
    {
      name: "fencing: an older token (a stale holder's write) reaching a third device: waits",
      change: remote({ lock: 'elsewhere', token: 4 }),
      verdict: 'refuse-wait',
    },
    {
      name: 'fencing: no token on a locked path (written without the lock)',
      change: remote({ lock: 'elsewhere', token: 0 }),
      verdict: 'refuse-wait',
    },
    {
      name: 'fencing: a token on an unlocked path is accepted (the plan weighs it)',
      change: remote({ lock: 'none', token: 4 }),
      verdict: 'accept',
    },
    {
      name: 'fencing: a version-only merge under an older token (the content stays)',
      change: remote({ lock: 'here', versionOnly: true, token: 4 }),
      verdict: 'accept',
    },
    {
      name: "fencing: an older token made on the holder's own device (it never refuses itself)",
      change: remote({ madeByHolder: true, token: 4 }),
      verdict: 'accept',
    },
    {
      name: "fencing: an older token the holder's device has already seen",
      change: remote({ holderHasSeen: true, token: 4 }),
      verdict: 'accept',
    },
    {
      name: 'fencing: a lock granted before tokens (0) and a version without one: the holder rules',
      change: remote({ lock: 'elsewhere', token: 0, lockToken: 0 }),
      verdict: 'refuse-wait',
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

describe('peerRequestProblem', () => {
  const held: LockRow = {
    path: 'a.txt',
    id: 'l1',
    owner: 'admin',
    device: 'AAA',
    createdMs: 0,
    expiresMs: null,
    reason: '',
    token: 1,
  };
  const name = (id: string) => id.slice(0, 1);
  const cases: {
    name: string;
    ask: Parameters<typeof peerRequestProblem>[0];
    held: LockRow | undefined;
    from: string;
    refused: RegExp | undefined;
  }[] = [
    {
      name: 'a lock at the asking device',
      ask: { op: 'lock', path: 'a.txt', device: 'BBB' },
      held: undefined,
      from: 'BBB',
      refused: undefined,
    },
    {
      name: 'a lock picked at another device',
      ask: { op: 'lock', path: 'a.txt', device: 'AAA' },
      held: undefined,
      from: 'BBB',
      refused: /B asked for a lock held at A/,
    },
    {
      name: 'an unlock of a lock held at the asking device',
      ask: { op: 'unlock', path: 'a.txt', user: 'admin' },
      held: { ...held, device: 'BBB' },
      from: 'BBB',
      refused: undefined,
    },
    {
      name: 'an unlock of a lock held elsewhere, same user name',
      ask: { op: 'unlock', path: 'a.txt', user: 'admin' },
      held,
      from: 'BBB',
      refused: /locked by admin at A; B cannot unlock/,
    },
    {
      name: 'an unlock of a path not locked (the authority answers not found)',
      ask: { op: 'unlock', path: 'a.txt', user: 'x' },
      held: undefined,
      from: 'BBB',
      refused: undefined,
    },
    {
      name: 'a refresh of a lock held elsewhere',
      ask: { op: 'refresh', path: 'a.txt', user: 'admin' },
      held,
      from: 'CCC',
      refused: /C cannot extend/,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const got = peerRequestProblem(c.ask, c.held, c.from, name);
      if (c.refused === undefined) expect(got).toBeUndefined();
      else expect(got).toMatch(c.refused);
    });
  }
});

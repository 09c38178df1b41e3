import { describe, expect, it } from 'vitest';
import {
  describeHolder,
  peerRequestProblem,
  choicesDisagree,
  impliedAuthority,
  meetAuthority,
  type AuthorityChoice,
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

describe('impliedAuthority (the rule before choices were recorded)', () => {
  const cases: { name: string; self: string; peers: string[]; want: string }[] = [
    { name: 'alone: this device', self: 'MMM', peers: [], want: 'MMM' },
    { name: 'else the smallest device ID', self: 'MMM', peers: ['XXX', 'CCC'], want: 'CCC' },
    { name: 'this device when it is the smallest', self: 'AAA', peers: ['BBB'], want: 'AAA' },
  ];
  for (const c of cases) {
    it(c.name, () => expect(impliedAuthority(c.self, c.peers)).toBe(c.want));
  }
});

describe('meetAuthority and choicesDisagree', () => {
  const undecided: AuthorityChoice = { device: undefined, epoch: 0 };
  const on = (device: string, epoch = 0): AuthorityChoice => ({ device, epoch });
  const cases: {
    name: string;
    mine: AuthorityChoice;
    theirs: AuthorityChoice;
    self: string;
    peer: string;
    adopt: AuthorityChoice | undefined;
    disagree: boolean;
  }[] = [
    {
      name: "a device that joins adopts the cluster's choice, even when its ID sorts lowest",
      mine: undecided,
      theirs: on('BBB'),
      self: 'AAA',
      peer: 'CCC',
      adopt: on('BBB'),
      disagree: false,
    },
    {
      name: 'a decided device never changes for a device that joins',
      mine: on('BBB'),
      theirs: undecided,
      self: 'CCC',
      peer: 'AAA',
      adopt: undefined,
      disagree: false,
    },
    {
      name: 'two undecided devices record nothing (the first grant decides)',
      mine: undecided,
      theirs: undecided,
      self: 'AAA',
      peer: 'BBB',
      adopt: undefined,
      disagree: false,
    },
    {
      name: 'the same choice: nothing to do',
      mine: on('BBB', 2),
      theirs: on('BBB', 2),
      self: 'AAA',
      peer: 'CCC',
      adopt: undefined,
      disagree: false,
    },
    {
      name: 'a later move wins over an older record',
      mine: on('BBB', 1),
      theirs: on('CCC', 2),
      self: 'AAA',
      peer: 'CCC',
      adopt: on('CCC', 2),
      disagree: false,
    },
    {
      name: 'an older record does not undo a move (the peer follows)',
      mine: on('CCC', 2),
      theirs: on('BBB', 1),
      self: 'AAA',
      peer: 'BBB',
      adopt: undefined,
      disagree: false,
    },
    {
      name: 'two configurations that differ at one epoch disagree; neither moves',
      mine: on('BBB'),
      theirs: on('CCC'),
      self: 'AAA',
      peer: 'DDD',
      adopt: undefined,
      disagree: true,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(meetAuthority(c.mine, c.theirs)).toEqual(c.adopt);
      expect(choicesDisagree(c.mine, c.theirs)).toBe(c.disagree);
    });
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

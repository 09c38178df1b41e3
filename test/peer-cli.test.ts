// `lockstep peer add`: what it writes, and what it refuses.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { shortId } from '../src/core/device-id.js';
import { lockstep } from './helpers.js';

describe('lockstep peer add', () => {
  let tmp: string;
  let homeA: string;
  let idA: string;
  let idB: string;
  const config = () =>
    JSON.parse(readFileSync(join(homeA, 'config.json'), 'utf8')) as {
      peers: { id: string; address: string; name?: string }[];
    };

  beforeEach(() => {
    tmp = mkdtempSync(join(tmpdir(), 'lockstep-peer-cli-'));
    homeA = join(tmp, 'a');
    const a = lockstep(['init', '--home', homeA, '--folder', join(tmp, 'fa'), '--name', 'A']);
    const b = lockstep([
      'init',
      '--home',
      join(tmp, 'b'),
      '--folder',
      join(tmp, 'fb'),
      '--name',
      'B',
    ]);
    expect(a.code).toBe(0);
    expect(b.code).toBe(0);
    idA = a.stdout.trim().split('\n').at(-1) as string;
    idB = b.stdout.trim().split('\n').at(-1) as string;
  });
  afterEach(() => rmSync(tmp, { recursive: true, force: true }));

  it('records the peer, and updates it when added again', () => {
    const r = lockstep(['peer', 'add', '--home', homeA, idB, '127.0.0.1:7710', '--name', 'B']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`added peer B (${shortId(idB)}) at 127.0.0.1:7710`);
    expect(config().peers).toEqual([{ id: idB, address: '127.0.0.1:7710', name: 'B' }]);
    // Lower case and without dashes is the same device.
    const again = lockstep([
      'peer',
      'add',
      '--home',
      homeA,
      idB.replaceAll('-', '').toLowerCase(),
      'b.example.net:7700',
    ]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('updated peer');
    expect(config().peers).toEqual([{ id: idB, address: 'b.example.net:7700' }]);
  });

  it.each([
    [
      'a mistyped device ID',
      () => [idB.slice(0, -1) + (idB.endsWith('A') ? 'B' : 'A'), '127.0.0.1:7710'],
      /Invalid device ID/,
    ],
    ['an address without a port', () => [idB, '127.0.0.1'], /Invalid peer address/],
    ['its own device ID', () => [idA, '127.0.0.1:7710'], /own ID/],
  ])('refuses %s with a usage error and changes nothing', (_name, args, want) => {
    const r = lockstep(['peer', 'add', '--home', homeA, ...args()]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(want);
    expect(config().peers).toEqual([]);
  });

  it('says when there is no home', () => {
    const r = lockstep(['peer', 'add', '--home', join(tmp, 'nope'), idB, '127.0.0.1:7710']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/lockstep init/);
  });
});

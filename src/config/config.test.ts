import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LockstepError } from '../base/errors.js';
import { loadConfig, parseHostPort, saveConfig, type ConfigInput } from './config.js';

const ID_A = 'P56IOI7-MZJNU2Y-IQGDREY-DM2MGTI-MGL3BXN-PQ6W5BM-TBBZ4TJ-XZWICQ2';
const ID_A_TYPO = 'P56IOI7-MZJNU2Y-IQGDREY-DM2MGTI-MGL3BXN-PQ6W5BM-TBBZ4TJ-XZWICQ3';
const ID_B = 'AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA';

let home: string;
beforeEach(() => {
  home = mkdtempSync(join(tmpdir(), 'lockstep-config-'));
});
afterEach(() => {
  rmSync(home, { recursive: true, force: true });
});

function good(): Record<string, unknown> {
  return {
    version: 2,
    name: 'A',
    folder: '/srv/shared',
    peerListen: '0.0.0.0:7700',
    apiListen: '127.0.0.1:7701',
    rescanIntervalS: 600,
    peers: [{ id: ID_B, address: '10.0.0.2:7700', name: 'B' }],
  };
}

function writeRaw(text: string): string {
  const file = join(home, 'config.json');
  writeFileSync(file, text);
  return file;
}

function loadError(): LockstepError {
  try {
    loadConfig(home);
  } catch (err) {
    expect(err).toBeInstanceOf(LockstepError);
    return err as LockstepError;
  }
  throw new Error('expected loadConfig to fail');
}

const EP = 'http://127.0.0.1:2379';
/** Bad etcd settings: what is wrong, the setting, the error it must give. */
const etcdRows: [string, unknown, RegExp][] = [
  ['not an object', 'http://x:1', /: lockAuthority\.etcd: expected \{ "endpoints": .*, got "http:\/\/x:1"$/],
  ['no endpoints', {}, /: lockAuthority\.etcd\.endpoints: expected a list of etcd client URLs such as "http:\/\/127\.0\.0\.1:2379", got undefined$/],
  ['empty endpoints', { endpoints: [] }, /: lockAuthority\.etcd\.endpoints: expected a list of etcd client URLs/],
  ['endpoint without a scheme', { endpoints: [EP, '127.0.0.1:2379'] }, /: lockAuthority\.etcd\.endpoints\[1\]: expected http:\/\/HOST:PORT or https:\/\/HOST:PORT, got "127\.0\.0\.1:2379"$/],
  ['endpoint with a bad port', { endpoints: ['http://a:70000'] }, /: lockAuthority\.etcd\.endpoints\[0\]: expected http:\/\/HOST:PORT/],
  ['mixed schemes', { endpoints: [EP, 'https://b:2379'], tls: { ca: '/ca.pem' } }, /: lockAuthority\.etcd\.endpoints: expected every endpoint to use http, or every one https, not both$/],
  ['prefix without a slash', { endpoints: [EP], prefix: 'lockstep' }, /: lockAuthority\.etcd\.prefix: expected a key prefix that starts and ends with "\/"/],
  ['prefix with a space', { endpoints: [EP], prefix: '/lock step/' }, /: lockAuthority\.etcd\.prefix: expected a key prefix/],
  ['unknown field', { endpoints: [EP], prefx: '/a/' }, /: lockAuthority\.etcd\.prefx: unknown field \(check its spelling\)$/],
  ['https without tls', { endpoints: ['https://a:2379'] }, /: lockAuthority\.etcd\.tls: https endpoints need "tls": \{ "ca": FILE \}/],
  ['tls with http', { endpoints: [EP], tls: { ca: '/ca.pem' } }, /: lockAuthority\.etcd\.tls: "tls" needs https:\/\/ endpoints$/],
  ['relative CA path', { endpoints: ['https://a:2379'], tls: { ca: 'ca.pem' } }, /: lockAuthority\.etcd\.tls\.ca: expected the absolute path of a PEM file, got "ca\.pem"$/],
  ['cert without key', { endpoints: ['https://a:2379'], tls: { ca: '/ca.pem', cert: '/c.pem' } }, /: lockAuthority\.etcd\.tls: give both "cert" and "key"/],
  ['unknown tls field', { endpoints: ['https://a:2379'], tls: { ca: '/ca.pem', crt: '/c.pem' } }, /: lockAuthority\.etcd\.tls\.crt: unknown field/],
]; // prettier-ignore

describe('loadConfig', () => {
  it('reads a good configuration and fills in the defaults', () => {
    writeRaw(JSON.stringify({ version: 1, name: 'A', folder: '/srv/shared/' }));
    expect(loadConfig(home)).toEqual({
      version: 1,
      name: 'A',
      folder: '/srv/shared',
      peerListen: '0.0.0.0:7700',
      apiListen: '127.0.0.1:7701',
      rescanIntervalS: 3600,
      peers: [],
    });
  });

  it('reads the extra names the client API answers for', () => {
    const hosts = ['files.example.com', '192.168.1.5', '::1', '[fe80::1]'];
    writeRaw(JSON.stringify({ ...good(), apiHosts: hosts }));
    expect(loadConfig(home).apiHosts).toEqual(hosts);
  });

  it('canonicalizes device IDs', () => {
    writeRaw(
      JSON.stringify({
        ...good(),
        lockAuthority: ID_A.toLowerCase().replaceAll('-', ''),
        peers: [{ id: ID_A.replaceAll('-', ' '), address: '[::1]:7700' }],
      }),
    );
    const config = loadConfig(home);
    expect(config.lockAuthority).toEqual({ kind: 'device', device: ID_A, epoch: 0 });
    expect(config.peers[0]?.id).toBe(ID_A);
  });

  const bad: { name: string; change: (c: Record<string, unknown>) => void; message: RegExp }[] = [
    {
      name: 'wrong version',
      change: (c) => (c.version = 3),
      message: /: version: must be 2 \(or 1, which `lockstep serve` upgrades\), got 3$/,
    },
    {
      name: 'negative epoch of the lock authority',
      change: (c) =>
        (c.lockAuthority = { kind: 'device', device: ID_A, epoch: -1 } as unknown as string),
      message:
        /: lockAuthority\.epoch: expected the number of moves \(a whole number, 0 or more\), got -1$/,
    },
    { name: 'missing folder', change: (c) => delete c.folder, message: /: folder: is required$/ },
    {
      name: 'relative folder',
      change: (c) => (c.folder = 'shared'),
      message: /: folder: must be an absolute path, got "shared"$/,
    },
    {
      name: 'folder of the wrong type',
      change: (c) => (c.folder = 42),
      message: /: folder: expected a string, got 42$/,
    },
    {
      name: 'empty name',
      change: (c) => (c.name = ''),
      message: /: name: must be 1 to 64 characters, got ""$/,
    },
    {
      name: 'name too long',
      change: (c) => (c.name = 'x'.repeat(65)),
      message: /: name: must be 1 to 64 characters, got "x+/,
    },
    {
      name: 'port out of range',
      change: (c) => (c.peerListen = '0.0.0.0:70000'),
      message: /: peerListen: expected HOST:PORT with a port from 1 to 65535, got "0.0.0.0:70000"$/,
    },
    {
      name: 'port zero',
      change: (c) => (c.apiListen = '127.0.0.1:0'),
      message: /: apiListen: expected HOST:PORT with a port from 1 to 65535, got "127.0.0.1:0"$/,
    },
    {
      name: 'peer address without a port',
      change: (c) => (c.peers = [{ id: ID_B, address: 'x' }]),
      message: /: peers\[0\]\.address: expected HOST:PORT with a port from 1 to 65535, got "x"$/,
    },
    {
      name: 'IPv6 without brackets',
      change: (c) => (c.peers = [{ id: ID_B, address: '::1:7700' }]),
      message: /: peers\[0\]\.address: expected HOST:PORT with an IPv6 host in brackets/,
    },
    {
      name: 'peer ID with a check-character typo',
      change: (c) => (c.peers = [{ id: ID_A_TYPO, address: 'b:7700' }]),
      message:
        /: peers\[0\]\.id: ".*" is not a valid device ID: check character 4 .* look for a typo/,
    },
    {
      name: 'duplicate peer',
      change: (c) =>
        (c.peers = [
          { id: ID_A, address: 'a:7700' },
          { id: ID_A.toLowerCase(), address: 'b:7700' },
        ]),
      message: /: peers\[1\]\.id: the same device as peers\[0\]$/,
    },
    {
      name: 'bad lock authority',
      change: (c) => (c.lockAuthority = 'nope'),
      message: /: lockAuthority: "nope" is not a valid device ID/,
    },
    {
      name: 'lock authority of an unknown kind',
      change: (c) => (c.lockAuthority = { kind: 'zookeeper' } as unknown as string),
      message: /: lockAuthority\.kind: expected "device", got "zookeeper"$/,
    },
    {
      name: 'bad device in a lock authority object',
      change: (c) => (c.lockAuthority = { kind: 'device', device: 'nope' } as unknown as string),
      message: /: lockAuthority\.device: "nope" is not a valid device ID/,
    },
    {
      name: 'unknown field in a lock authority object',
      change: (c) =>
        (c.lockAuthority = { kind: 'device', device: ID_A, host: 'x' } as unknown as string),
      message: /: lockAuthority\.host: unknown field \(check its spelling\)$/,
    },
    {
      name: 'lock authority of the wrong type',
      change: (c) => (c.lockAuthority = 7 as unknown as string),
      message:
        /: lockAuthority: expected a device ID or \{ "kind": "device", "device": "<device ID>", "epoch": <moves> \}, got 7$/,
    },
    {
      name: 'rescan interval too short',
      change: (c) => (c.rescanIntervalS = 5),
      message: /: rescanIntervalS: must be at least 10 seconds, got 5$/,
    },
    {
      name: 'rescan interval not whole',
      change: (c) => (c.rescanIntervalS = 10.5),
      message: /: rescanIntervalS: /,
    },
    { name: 'unknown key', change: (c) => (c.colour = 'red'), message: /: colour: unknown field/ },
    {
      name: 'unknown key in a peer',
      change: (c) => (c.peers = [{ id: ID_B, address: 'b:7700', adress: 'typo' }]),
      message: /: peers\[0\]\.adress: unknown field/,
    },
    {
      name: 'peers not a list',
      change: (c) => (c.peers = {}),
      message: /: peers: expected a list, got an object$/,
    },
    {
      name: 'API host with a port',
      change: (c) => (c.apiHosts = ['files.example.com:443']),
      message: /: apiHosts\[0\]: give the name without a port \(every port is allowed\)/,
    },
    {
      name: 'API host that is no name',
      change: (c) => (c.apiHosts = ['ok.example.com', 'https://files.example.com']),
      message:
        /: apiHosts\[1\]: expected a host name \(e\.g\. files\.example\.com\) or an IP address/,
    },
    {
      name: 'API hosts not a list',
      change: (c) => (c.apiHosts = 'files.example.com'),
      message: /: apiHosts: expected a list, got "files\.example\.com"$/,
    },
    ...etcdRows.map(([name, etcd, message]) => ({
      name: `etcd: ${name}`,
      change: (c: Record<string, unknown>) => (c.lockAuthority = { etcd }),
      message,
    })),
    {
      name: 'etcd: a field beside etcd',
      change: (c) => (c.lockAuthority = { etcd: { endpoints: [EP] }, device: ID_A }),
      message: /: lockAuthority\.device: unknown field \(check its spelling\)$/,
    },
  ];
  it.each(bad)('names the field: $name', ({ change, message }) => {
    const config = good();
    change(config);
    const file = writeRaw(JSON.stringify(config));
    const err = loadError();
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message.startsWith(`Invalid configuration in ${file}: `)).toBe(true);
    expect(err.message).toMatch(message);
  });

  it('lists every problem at once', () => {
    writeRaw(JSON.stringify({ ...good(), version: 3, name: '' }));
    expect(loadError().message).toMatch(/version: .*; name: /);
  });

  it('refuses a file that is not an object', () => {
    const file = writeRaw('[]');
    expect(loadError().message).toBe(
      `Invalid configuration in ${file}: expected an object, got a list`,
    );
  });

  it('names the file and the position of a JSON syntax error', () => {
    const file = writeRaw('{\n  "version": 1,\n  "name": "A"\n  "folder": "/x"\n}\n');
    const err = loadError();
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).toMatch(new RegExp(`^Invalid JSON in ${file} at line 4, column 3: `));
  });

  it('says to run lockstep init when the file is missing', () => {
    const err = loadError();
    expect(err.code).toBe('CONFIG_MISSING');
    expect(err.message).toContain(join(home, 'config.json'));
    expect(err.message).toContain('lockstep init');
  });
});

describe('saveConfig', () => {
  it('round-trips a configuration as pretty JSON with mode 0600, leaving no temp file', () => {
    const config = { ...good(), lockAuthority: ID_A } as ConfigInput;
    saveConfig(home, config);
    const file = join(home, 'config.json');
    expect(loadConfig(home)).toEqual({
      ...config,
      lockAuthority: { kind: 'device', device: ID_A, epoch: 0 },
    });
    // A device authority is written as the plain ID every Lockstep reads.
    expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({ lockAuthority: ID_A });
    expect(readFileSync(file, 'utf8')).toMatch(/^\{\n {2}"version": 2,\n/);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readdirSync(home)).toEqual(['config.json']);
  });

  it('reads the tagged lock authority and writes it back as the plain ID', () => {
    saveConfig(home, {
      ...good(),
      lockAuthority: { kind: 'device', device: ID_A.toLowerCase() },
    } as unknown as ConfigInput);
    expect(loadConfig(home).lockAuthority).toEqual({ kind: 'device', device: ID_A, epoch: 0 });
    expect(JSON.parse(readFileSync(join(home, 'config.json'), 'utf8'))).toMatchObject({
      lockAuthority: ID_A,
    });
  });

  it('reads an etcd lock authority, the prefix defaulted, and writes it back in the same form', () => {
    const etcd = { endpoints: [EP, 'http://[::1]:2380', 'http://etcd-3.example:2379'] };
    writeRaw(JSON.stringify({ ...good(), lockAuthority: { etcd } }));
    const config = loadConfig(home);
    expect(config.lockAuthority).toEqual({ kind: 'etcd', ...etcd, prefix: '/lockstep/' });
    saveConfig(home, config);
    expect(JSON.parse(readFileSync(join(home, 'config.json'), 'utf8'))).toMatchObject({
      lockAuthority: { etcd: { ...etcd, prefix: '/lockstep/' } },
    });
    const tls = { ca: '/etc/etcd/ca.pem', cert: '/etc/etcd/c.pem', key: '/etc/etcd/c.key' };
    const secure = { endpoints: ['https://a:2379'], prefix: '/lockstep/team/', tls };
    writeRaw(JSON.stringify({ ...good(), lockAuthority: { etcd: secure } }));
    expect(loadConfig(home).lockAuthority).toEqual({ kind: 'etcd', ...secure });
  });

  it('replaces an existing file, unless told not to', () => {
    saveConfig(home, good() as ConfigInput);
    saveConfig(home, { ...good(), name: 'B' } as ConfigInput);
    expect(loadConfig(home).name).toBe('B');
    expect(() => saveConfig(home, good() as ConfigInput, { exclusive: true })).toThrow(
      /already exists/,
    );
    expect(loadConfig(home).name).toBe('B');
  });

  it('refuses to write an invalid configuration', () => {
    expect(() => saveConfig(home, { ...good(), folder: 'rel' } as ConfigInput)).toThrow(
      /folder: must be an absolute path/,
    );
    expect(readdirSync(home)).toEqual([]);
  });
});

describe('parseHostPort', () => {
  it.each([
    ['0.0.0.0:7700', '0.0.0.0', 7700],
    ['localhost:1', 'localhost', 1],
    ['host.example.com:65535', 'host.example.com', 65535],
    ['[::1]:7700', '::1', 7700],
    ['[fe80::1%eth0]:7700', 'fe80::1%eth0', 7700],
  ])('%s', (s, host, port) => {
    expect(parseHostPort(s)).toEqual({ host, port });
  });

  it.each([
    'x',
    ':7700',
    'a:',
    'a:0',
    'a:65536',
    'a:-1',
    'a:7x',
    '::1:7700',
    '[nope]:7700',
    'a b:7700',
    'a:7700 ',
  ])('refuses %j as a usage error', (s) => {
    expect(() => parseHostPort(s)).toThrow(LockstepError);
    try {
      parseHostPort(s);
    } catch (err) {
      expect((err as LockstepError).code).toBe('USAGE');
      expect((err as LockstepError).message).toContain(JSON.stringify(s));
    }
  });
});

import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  chmodSync,
  lstatSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LockstepError } from '../base/errors.js';
import { parseDeviceId } from '../core/device-id.js';
import { MARKER_NAME } from '../core/path.js';
import { deviceIdOfCert } from '../identity/identity.js';
import { loadConfig } from './config.js';
import { homePaths, initHome, readIdentity, readToken, resolveHome, secureHome } from './home.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'lockstep-home-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
  vi.unstubAllEnvs();
});

async function rejection(p: Promise<unknown>): Promise<LockstepError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(LockstepError);
    return err as LockstepError;
  }
  throw new Error('expected a rejection');
}

const mode = (p: string) => statSync(p).mode & 0o777;

describe('resolveHome', () => {
  it('prefers the flag, then $LOCKSTEP_HOME, then ~/.config/lockstep', () => {
    vi.stubEnv('LOCKSTEP_HOME', '/env/home');
    expect(resolveHome('/flag/home')).toBe('/flag/home');
    expect(resolveHome()).toBe('/env/home');
    vi.stubEnv('LOCKSTEP_HOME', '');
    expect(resolveHome()).toBe(join(homedir(), '.config', 'lockstep'));
  });

  it('makes paths absolute and expands ~/', () => {
    expect(resolveHome('rel/home')).toBe(join(process.cwd(), 'rel/home'));
    expect(resolveHome('~/h')).toBe(join(homedir(), 'h'));
  });

  it('refuses an empty flag', () => {
    expect(() => resolveHome('')).toThrow(/--home is empty/);
  });
});

describe('homePaths', () => {
  it('names every file of the home absolutely', () => {
    expect(homePaths('/h')).toEqual({
      home: '/h',
      config: '/h/config.json',
      key: '/h/key.pem',
      cert: '/h/cert.pem',
      token: '/h/token',
      db: '/h/index.db',
      logs: '/h/logs',
    });
  });
});

describe('initHome', () => {
  it('creates the home with the right modes, the folder and its marker', async () => {
    const home = join(dir, 'home');
    const folder = join(dir, 'a', 'b', 'folder');
    const { deviceId } = await initHome({ home, folder, name: 'A', peerListen: '127.0.0.1:9000' });
    const paths = homePaths(home);

    expect(parseDeviceId(deviceId)).toBe(deviceId);
    expect(deviceId).toBe(deviceIdOfCert(readFileSync(paths.cert, 'utf8')));
    expect(mode(home)).toBe(0o700);
    expect(mode(paths.key)).toBe(0o600);
    expect(mode(paths.token)).toBe(0o600);
    expect(mode(paths.config)).toBe(0o600);
    expect(mode(paths.cert)).toBe(0o600);
    expect(readToken(home)).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(readIdentity(home).deviceId).toBe(deviceId);
    expect(loadConfig(home)).toEqual({
      version: 2,
      name: 'A',
      folder,
      peerListen: '127.0.0.1:9000',
      apiListen: '127.0.0.1:7701',
      rescanIntervalS: 3600,
      peers: [],
    });
    expect(statSync(folder).isDirectory()).toBe(true);
    expect(readFileSync(join(folder, MARKER_NAME), 'utf8')).toMatch(
      /Lockstep folder[\s\S]*Do not delete/,
    );
  });

  it('keeps an existing marker and existing content of the folder', async () => {
    const folder = join(dir, 'folder');
    mkdirSync(folder);
    writeFileSync(join(folder, MARKER_NAME), 'mine');
    writeFileSync(join(folder, 'data.txt'), 'data');
    await initHome({ home: join(dir, 'home'), folder, name: 'A' });
    expect(readFileSync(join(folder, MARKER_NAME), 'utf8')).toBe('mine');
    expect(readFileSync(join(folder, 'data.txt'), 'utf8')).toBe('data');
  });

  it('refuses to overwrite an existing home, changing nothing', async () => {
    const home = join(dir, 'home');
    const { deviceId } = await initHome({ home, folder: join(dir, 'f1'), name: 'A' });
    const before = readFileSync(homePaths(home).key, 'utf8');
    const err = await rejection(initHome({ home, folder: join(dir, 'f2'), name: 'B' }));
    expect(err.code).toBe('HOME_EXISTS');
    expect(err.message).toContain(home);
    expect(err.message).toContain('already a Lockstep home');
    expect(readFileSync(homePaths(home).key, 'utf8')).toBe(before);
    expect(readIdentity(home).deviceId).toBe(deviceId);
    expect(loadConfig(home).name).toBe('A');
  });

  it('refuses a folder inside the home', async () => {
    const home = join(dir, 'home');
    const err = await rejection(initHome({ home, folder: join(home, 'folder'), name: 'A' }));
    expect(err.code).toBe('FOLDER_INVALID');
    expect(err.message).toMatch(/is inside the home/);
    expect(() => statSync(home)).toThrow();
  });

  it('refuses a home inside the folder, also through a symlink', async () => {
    const folder = join(dir, 'folder');
    mkdirSync(folder);
    symlinkSync(folder, join(dir, 'link'));
    const err = await rejection(
      initHome({ home: join(dir, 'link', '.lockstep'), folder, name: 'A' }),
    );
    expect(err.code).toBe('FOLDER_INVALID');
    expect(err.message).toMatch(/is inside the folder/);
  });

  it('refuses the same directory as home and folder', async () => {
    const err = await rejection(initHome({ home: dir, folder: dir, name: 'A' }));
    expect(err.code).toBe('FOLDER_INVALID');
  });

  it('refuses a non-empty directory that is not a home', async () => {
    const home = join(dir, 'home');
    mkdirSync(home);
    writeFileSync(join(home, 'notes.txt'), 'x');
    const err = await rejection(initHome({ home, folder: join(dir, 'folder'), name: 'A' }));
    expect(err.code).toBe('HOME_INVALID');
    expect(err.message).toContain('notes.txt');
  });

  it('refuses a folder that is a file', async () => {
    const folder = join(dir, 'file');
    writeFileSync(folder, 'x');
    const err = await rejection(initHome({ home: join(dir, 'home'), folder, name: 'A' }));
    expect(err.code).toBe('FOLDER_INVALID');
  });

  it('refuses a bad name or listen address before writing anything', async () => {
    const home = join(dir, 'home');
    const err = await rejection(
      initHome({ home, folder: join(dir, 'f'), name: '', apiListen: 'nope' }),
    );
    expect(err.code).toBe('USAGE');
    expect(err.message).toMatch(/name: must be 1 to 64 characters.*apiListen: expected HOST:PORT/);
    expect(() => statSync(home)).toThrow();
  });
});

describe('readIdentity and readToken', () => {
  it('say to run lockstep init when there is no home', () => {
    const home = join(dir, 'none');
    for (const read of [readIdentity, readToken]) {
      try {
        read(home);
        expect.unreachable();
      } catch (err) {
        expect((err as LockstepError).code).toBe('CONFIG_MISSING');
        expect((err as LockstepError).message).toMatch(
          /is not a Lockstep home: run `lockstep init/,
        );
      }
    }
  });

  it('notice a key that does not belong to the certificate', async () => {
    const a = join(dir, 'a');
    const b = join(dir, 'b');
    await initHome({ home: a, folder: join(dir, 'fa'), name: 'A' });
    await initHome({ home: b, folder: join(dir, 'fb'), name: 'B' });
    writeFileSync(homePaths(a).key, readFileSync(homePaths(b).key));
    expect(() => readIdentity(a)).toThrow(/does not belong to the certificate/);
  });

  it('notice a missing or damaged file', async () => {
    const home = join(dir, 'home');
    await initHome({ home, folder: join(dir, 'f'), name: 'A' });
    writeFileSync(homePaths(home).cert, 'garbage');
    expect(() => readIdentity(home)).toThrow(/is not a valid PEM certificate/);
    rmSync(homePaths(home).key);
    expect(() => readIdentity(home)).toThrow(/Cannot read the private key/);
    writeFileSync(homePaths(home).token, '\n');
    expect(() => readToken(home)).toThrow(/is empty/);
  });
});

describe('secureHome', () => {
  it('makes every file 0600 and every directory 0700, not following links', () => {
    const home = join(dir, 'home');
    const outside = join(dir, 'outside.txt');
    writeFileSync(outside, 'not the home');
    chmodSync(outside, 0o644);
    mkdirSync(join(home, 'logs', 'old'), { recursive: true });
    for (const [f, m] of [
      ['index.db', 0o644],
      ['index.db-wal', 0o664],
      ['index.db-shm', 0o644],
      ['cert.pem', 0o644],
      ['token', 0o600],
      ['logs/lockstep.log', 0o644],
      ['logs/old/lockstep.1.log', 0o666],
    ] as const) {
      writeFileSync(join(home, f), 'x');
      chmodSync(join(home, f), m);
    }
    chmodSync(join(home, 'logs'), 0o755);
    chmodSync(home, 0o775);
    symlinkSync(outside, join(home, 'link'));

    const { fixed, failed } = secureHome(home);
    expect(failed).toEqual([]);
    expect(fixed.map((f) => f.path.slice(home.length)).sort()).toEqual(
      [
        '',
        '/cert.pem',
        '/index.db',
        '/index.db-shm',
        '/index.db-wal',
        '/logs',
        '/logs/lockstep.log',
        '/logs/old',
        '/logs/old/lockstep.1.log',
      ].sort(),
    );
    expect(fixed.find((f) => f.path === home)?.was).toBe(0o775);
    const walk = (p: string): [string, number][] => {
      const st = lstatSync(p);
      if (st.isSymbolicLink()) return [];
      const here: [string, number][] = [[p, st.mode & 0o7777]];
      if (!st.isDirectory()) return here;
      return [...here, ...readdirSync(p).flatMap((n) => walk(join(p, n)))];
    };
    for (const [p, m] of walk(home)) {
      expect(m, p).toBe(lstatSync(p).isDirectory() ? 0o700 : 0o600);
    }
    // The link's target, outside the home, is untouched.
    expect(mode(outside)).toBe(0o644);
    expect(secureHome(home).fixed).toEqual([]);
  });
});

/**
 * A device's home: the directory that holds its state (configuration, key,
 * certificate, token, index database, logs), never inside the synced folder.
 * Only its user may read it: every file is 0600 and every directory 0700.
 */
import { createPrivateKey, randomBytes, X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { errorCode, errorMessage, LockstepError } from '../base/errors.js';
import { MARKER_NAME } from '../core/path.js';
import { createIdentity, deviceIdOfCert } from '../identity/identity.js';
import {
  checkConfig,
  CONFIG_FILE,
  CONFIG_VERSION,
  DEFAULT_API_LISTEN,
  DEFAULT_PEER_LISTEN,
  saveConfig,
  writeFileAtomic,
  type Config,
} from './config.js';

/** The absolute paths of everything in a home. */
export interface HomePaths {
  /** The home directory itself. */
  readonly home: string;
  /** `config.json`: the configuration (mode 0600). */
  readonly config: string;
  /** `key.pem`: the device's private key (mode 0600). */
  readonly key: string;
  /** `cert.pem`: the device's certificate, from which its ID derives (mode 0600). */
  readonly cert: string;
  /** `token`: the administrator's bearer token for the client API (mode 0600). */
  readonly token: string;
  /** `index.db`: the SQLite index (mode 0600, its `-wal` and `-shm` too). */
  readonly db: string;
  /** `logs/`: the log directory (mode 0700, its files 0600). */
  readonly logs: string;
}

/** Names a home may hold before `lockstep init` (left by an interrupted init, or by the device). */
const OWN_NAMES = new Set([
  'key.pem',
  'cert.pem',
  'token',
  'logs',
  'index.db',
  'index.db-wal',
  'index.db-shm',
]);

/** The text of the folder marker. */
const MARKER_TEXT = `This directory is a Lockstep folder: Lockstep keeps its content identical on
every device of the cluster.

Do not delete this file. Without it Lockstep assumes the folder has gone
missing (an unmounted disk, say) and stops syncing it, instead of spreading
the deletion of every file to the other devices.
`;

/**
 * Resolves the home directory: `flag` (from `--home`), else
 * `$LOCKSTEP_HOME`, else `~/.config/lockstep`. A leading `~/` is expanded.
 *
 * @returns an absolute path
 * @throws LockstepError `USAGE` if `flag` is given but empty
 */
export function resolveHome(flag?: string): string {
  if (flag !== undefined && flag.trim() === '') {
    throw new LockstepError('USAGE', 'The home directory given with --home is empty');
  }
  const env = process.env.LOCKSTEP_HOME;
  const raw =
    flag ?? (env !== undefined && env !== '' ? env : join(homedir(), '.config', 'lockstep'));
  const expanded =
    raw === '~' ? homedir() : raw.startsWith('~/') ? join(homedir(), raw.slice(2)) : raw;
  return resolve(expanded);
}

/** Returns the absolute paths of the files in the home `home`. */
export function homePaths(home: string): HomePaths {
  const dir = resolve(home);
  return {
    home: dir,
    config: join(dir, CONFIG_FILE),
    key: join(dir, 'key.pem'),
    cert: join(dir, 'cert.pem'),
    token: join(dir, 'token'),
    db: join(dir, 'index.db'),
    logs: join(dir, 'logs'),
  };
}

/** Options of {@link initHome}. */
export interface InitOptions {
  /** The home to create. */
  readonly home: string;
  /** The folder to keep in sync; created if missing. A relative path is resolved against the working directory. */
  readonly folder: string;
  /** The device's human name, e.g. "A". */
  readonly name: string;
  /** Where peers connect, `HOST:PORT`. @default "0.0.0.0:7700" */
  readonly peerListen?: string;
  /** Where clients connect, `HOST:PORT`. @default "127.0.0.1:7701" */
  readonly apiListen?: string;
  /**
   * The device that grants locks: a device ID, or `self` for this device.
   * Without it, the device takes its cluster's choice when it first meets a
   * peer (a device alone records itself at its first lock).
   */
  readonly lockAuthority?: string | undefined;
}

/** Resolves symbolic links in the longest existing prefix of an absolute path. */
function realish(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch {
    const parent = dirname(p);
    return parent === p ? p : join(realish(parent), basename(p));
  }
}

/** Reports whether `p` is `dir` or lies below it. */
function isInside(p: string, dir: string): boolean {
  return p === dir || p.startsWith(dir.endsWith(sep) ? dir : dir + sep);
}

/** Refuses a home that is a file, already a home, or full of other things. */
function checkNewHome(home: string, configFile: string): void {
  let entries: string[];
  try {
    if (!fs.statSync(home).isDirectory()) {
      throw new LockstepError('HOME_INVALID', `The home ${home} exists and is not a directory`);
    }
    entries = fs.readdirSync(home);
  } catch (err) {
    if (err instanceof LockstepError) throw err;
    if (errorCode(err) === 'ENOENT') return;
    throw new LockstepError(
      'HOME_INVALID',
      `Cannot use ${home} as the home: ${errorMessage(err)}`,
      { cause: err },
    );
  }
  if (entries.includes(CONFIG_FILE)) {
    throw new LockstepError(
      'HOME_EXISTS',
      `${home} is already a Lockstep home (it has ${configFile}); nothing was changed. ` +
        `Run \`lockstep id --home ${home}\` to see its device ID, give another --home for a new device, ` +
        'or delete this home first to start over (the device then gets a new ID)',
    );
  }
  const foreign = entries.filter((e) => !OWN_NAMES.has(e) && !e.startsWith('.'));
  if (foreign.length > 0) {
    throw new LockstepError(
      'HOME_INVALID',
      `${home} is not empty and not a Lockstep home (it holds ${JSON.stringify(foreign[0])}); ` +
        'give a new or empty directory as --home',
    );
  }
}

/**
 * Creates a home: a new identity (key and certificate), an administrator
 * token, the configuration, and the folder with its marker. Never replaces
 * an existing home; `config.json` is written last, so an interrupted init can
 * simply be run again.
 *
 * @returns the new device's ID
 * @throws LockstepError `USAGE` for a bad name or listen address,
 *   `HOME_EXISTS` if the home already has a configuration, `HOME_INVALID` if
 *   it cannot be used, `FOLDER_INVALID` if the folder is not a directory or
 *   the folder and home overlap (state is never inside synced content)
 */
export async function initHome(opts: InitOptions): Promise<{ deviceId: string }> {
  const paths = homePaths(opts.home);
  const { home } = paths;
  const folder = resolve(opts.folder);
  const checked = checkConfig({
    version: CONFIG_VERSION,
    name: opts.name,
    folder,
    peerListen: opts.peerListen ?? DEFAULT_PEER_LISTEN,
    apiListen: opts.apiListen ?? DEFAULT_API_LISTEN,
    // Checked now (a device ID's form); `self` is this device, known once its key is made.
    ...(opts.lockAuthority === undefined || opts.lockAuthority === 'self'
      ? {}
      : { lockAuthority: opts.lockAuthority }),
  });
  if ('problems' in checked) {
    throw new LockstepError('USAGE', `Cannot create the home: ${checked.problems.join('; ')}`);
  }
  checkNewHome(home, paths.config);

  const realHome = realish(home);
  const realFolder = realish(folder);
  if (isInside(realFolder, realHome)) {
    throw new LockstepError(
      'FOLDER_INVALID',
      `The folder ${folder} is inside the home ${home}: keep the synced folder and the device's state apart`,
    );
  }
  if (isInside(realHome, realFolder)) {
    throw new LockstepError(
      'FOLDER_INVALID',
      `The home ${home} is inside the folder ${folder}: Lockstep's state must not be synced; choose a home outside the folder`,
    );
  }
  try {
    fs.mkdirSync(folder, { recursive: true });
    if (!fs.statSync(folder).isDirectory()) throw new Error('not a directory');
  } catch (err) {
    throw new LockstepError(
      'FOLDER_INVALID',
      `Cannot use ${folder} as the folder: ${errorMessage(err)}`,
      {
        cause: err,
      },
    );
  }
  try {
    fs.mkdirSync(home, { recursive: true, mode: 0o700 });
    fs.chmodSync(home, 0o700);
  } catch (err) {
    throw new LockstepError(
      'HOME_INVALID',
      `Cannot create the home ${home}: ${errorMessage(err)}`,
      { cause: err },
    );
  }

  const { keyPem, certPem } = await createIdentity('lockstep');
  writeFileAtomic(paths.key, keyPem, 0o600);
  writeFileAtomic(paths.cert, certPem, 0o600);
  writeFileAtomic(paths.token, `${randomBytes(32).toString('base64url')}\n`, 0o600);
  try {
    fs.writeFileSync(join(folder, MARKER_NAME), MARKER_TEXT, { flag: 'wx', mode: 0o644 });
  } catch (err) {
    if (errorCode(err) !== 'EEXIST') {
      throw new LockstepError(
        'FOLDER_INVALID',
        `Cannot write the folder marker in ${folder}: ${errorMessage(err)}`,
        {
          cause: err,
        },
      );
    }
  }
  const deviceId = deviceIdOfCert(certPem);
  const config: Config =
    opts.lockAuthority === 'self'
      ? { ...checked.config, lockAuthority: { kind: 'device', device: deviceId, epoch: 0 } }
      : checked.config;
  saveConfig(home, config, { exclusive: true });
  return { deviceId };
}

/** The mode of every file in a home. */
const FILE_MODE = 0o600;
/** The mode of every directory in a home, the home included. */
const DIR_MODE = 0o700;

/** What {@link secureHome} did. */
export interface SecuredHome {
  /** Paths whose mode was changed, with the mode they had. */
  readonly fixed: readonly { path: string; was: number }[];
  /** Paths whose mode could not be changed, and why. */
  readonly failed: readonly { path: string; why: string }[];
}

/**
 * Makes the home private, whatever made it and under whatever umask: the
 * home and every directory in it 0700, every file 0600 (logs, rotated logs,
 * the index database and its `-wal` / `-shm` included). Links are not
 * followed and keep their mode; nothing outside the home is touched.
 */
export function secureHome(home: string): SecuredHome {
  const fixed: { path: string; was: number }[] = [];
  const failed: { path: string; why: string }[] = [];
  const visit = (path: string): void => {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(path);
    } catch (err) {
      if (errorCode(err) !== 'ENOENT') failed.push({ path, why: errorMessage(err) });
      return;
    }
    const want = st.isDirectory() ? DIR_MODE : st.isFile() ? FILE_MODE : undefined;
    if (want === undefined) return; // a link, socket or FIFO: not followed, left alone
    const was = st.mode & 0o7777;
    if (was !== want) {
      try {
        fs.chmodSync(path, want);
        fixed.push({ path, was });
      } catch (err) {
        failed.push({ path, why: errorMessage(err) });
      }
    }
    if (!st.isDirectory()) return;
    let names: string[];
    try {
      names = fs.readdirSync(path);
    } catch (err) {
      failed.push({ path, why: errorMessage(err) });
      return;
    }
    for (const name of names) visit(join(path, name));
  };
  visit(resolve(home));
  return { fixed, failed };
}

/** Reads a file of the home, explaining a missing one. */
function readHomeFile(paths: HomePaths, file: string, what: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    if (errorCode(err) === 'ENOENT' && !fs.existsSync(paths.config)) {
      throw new LockstepError(
        'CONFIG_MISSING',
        `${paths.home} is not a Lockstep home: run \`lockstep init --home ${paths.home} --folder DIR --name NAME\` first`,
        { cause: err },
      );
    }
    const code = what === 'token' ? 'HOME_INVALID' : 'IDENTITY_INVALID';
    throw new LockstepError(code, `Cannot read the ${what} ${file}: ${errorMessage(err)}`, {
      cause: err,
    });
  }
}

/**
 * Reads the device's identity from its home and checks that the key belongs
 * to the certificate.
 *
 * @throws LockstepError `CONFIG_MISSING` if `home` is not a home,
 *   `IDENTITY_INVALID` if the key or certificate is missing, unreadable or
 *   mismatched
 */
export function readIdentity(home: string): { deviceId: string; keyPem: string; certPem: string } {
  const paths = homePaths(home);
  const certPem = readHomeFile(paths, paths.cert, 'certificate');
  const keyPem = readHomeFile(paths, paths.key, 'private key');
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (err) {
    throw new LockstepError(
      'IDENTITY_INVALID',
      `The certificate ${paths.cert} is not a valid PEM certificate`,
      {
        cause: err,
      },
    );
  }
  let matches: boolean;
  try {
    matches = cert.checkPrivateKey(createPrivateKey(keyPem));
  } catch (err) {
    throw new LockstepError(
      'IDENTITY_INVALID',
      `The private key ${paths.key} is not a valid PEM key`,
      {
        cause: err,
      },
    );
  }
  if (!matches) {
    throw new LockstepError(
      'IDENTITY_INVALID',
      `The private key ${paths.key} does not belong to the certificate ${paths.cert}`,
    );
  }
  return { deviceId: deviceIdOfCert(cert.raw), keyPem, certPem };
}

/**
 * Reads the administrator's bearer token from the home.
 *
 * @throws LockstepError `CONFIG_MISSING` if `home` is not a home,
 *   `HOME_INVALID` if the token file is missing, unreadable or empty
 */
export function readToken(home: string): string {
  const paths = homePaths(home);
  const token = readHomeFile(paths, paths.token, 'token').trim();
  if (token === '')
    throw new LockstepError('HOME_INVALID', `The token file ${paths.token} is empty`);
  return token;
}

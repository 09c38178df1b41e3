/**
 * The configuration file, `config.json` in a device's home: written by
 * `lockstep init`, editable by hand, validated with errors that name the file,
 * the field and the problem.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import { errorCode, errorMessage, LockstepError } from '../base/errors.js';
import { parseDeviceId } from '../core/device-id.js';
import { etcdForm, etcdSetting, show, type EtcdSetting } from './etcd-setting.js';

export { DEFAULT_ETCD_PREFIX, etcdFromFlag, type EtcdSetting } from './etcd-setting.js';

/** The configuration file's name in the home. */
export const CONFIG_FILE = 'config.json';
/**
 * The configuration format this code writes. Version 1 (before the lock
 * authority was recorded) is still read: `lockstep serve` upgrades it,
 * recording the authority it implied (see `upgradeConfig`).
 */
export const CONFIG_VERSION = 2;
/** Where peers connect, unless configured: every interface. */
export const DEFAULT_PEER_LISTEN = '0.0.0.0:7700';
/** Where clients connect, unless configured: this machine only. */
export const DEFAULT_API_LISTEN = '127.0.0.1:7701';
/** How often the whole folder is rescanned, in seconds, unless configured. */
export const DEFAULT_RESCAN_INTERVAL_S = 3600;

const HOST_PORT_HINT = 'expected HOST:PORT with a port from 1 to 65535';
const HOST_NAME = /^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?$/;

/** Returns why `s` is not a valid `HOST:PORT`, or undefined if it is. */
function hostPortProblem(s: string): string | undefined {
  const got = `got ${JSON.stringify(s)}`;
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*)):(\d{1,5})$/.exec(s);
  if (m === null) {
    if (/^[^[\]]*:.*:\d+$/.test(s)) {
      return `expected HOST:PORT with an IPv6 host in brackets, e.g. [::1]:7700, ${got}`;
    }
    return `${HOST_PORT_HINT}, ${got}`;
  }
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return `${HOST_PORT_HINT}, ${got}`;
  if (m[1] !== undefined) {
    if (!isIPv6(m[1])) return `expected HOST:PORT with an IPv6 address in the brackets, ${got}`;
  } else if (!HOST_NAME.test(m[2] ?? '') && !isIPv4(m[2] ?? '')) {
    return `expected HOST:PORT with a host name or IP address as HOST, ${got}`;
  }
  return undefined;
}

/**
 * Splits a `HOST:PORT` address; an IPv6 host goes in brackets (`[::1]:7700`)
 * and comes back without them.
 *
 * @param what - what the address is, for the message (e.g. `--peer-listen`)
 * @throws LockstepError `USAGE` naming what is wrong
 */
export function parseHostPort(s: string, what = 'address'): { host: string; port: number } {
  const problem = hostPortProblem(s);
  if (problem !== undefined) throw new LockstepError('USAGE', `Invalid ${what}: ${problem}`);
  const i = s.lastIndexOf(':');
  const host = s.slice(0, i);
  return { host: host.startsWith('[') ? host.slice(1, -1) : host, port: Number(s.slice(i + 1)) };
}

const hostPort = z.string().superRefine((s, ctx) => {
  const problem = hostPortProblem(s);
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
});

/** Returns why `s` is not a host name or IP address (IPv6 with or without brackets), or undefined. */
function apiHostProblem(s: string): string | undefined {
  const got = `got ${JSON.stringify(s)}`;
  const v6 = /^\[(.*)\]$/.exec(s)?.[1] ?? s;
  if (isIPv4(s) || isIPv6(v6)) return undefined;
  if (/:\d+$/.test(s)) return `give the name without a port (every port is allowed), ${got}`;
  if (s.length > 253 || !HOST_NAME.test(s)) {
    return `expected a host name (e.g. files.example.com) or an IP address, ${got}`;
  }
  return undefined;
}

const apiHost = z.string().superRefine((s, ctx) => {
  const problem = apiHostProblem(s);
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
});

const deviceId = z.string().transform((s, ctx) => {
  try {
    return parseDeviceId(s);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: errorMessage(err) });
    return z.NEVER;
  }
});

/**
 * Where the lock authority is: a device of the cluster, recorded once when
 * the cluster is made and moved only by `lockstep locks move-authority`
 * (each move adds one to `epoch`; the plain device-ID string is read as
 * `{ "kind": "device", "device": ID, "epoch": 0 }`), or etcd (written
 * `{ "etcd": { ... } }`, see {@link EtcdSetting}). Absent: not decided yet
 * (the device takes its cluster's choice, see `meetAuthority`).
 */
export type LockAuthoritySetting =
  { readonly kind: 'device'; readonly device: string; readonly epoch: number } | EtcdSetting;

const LOCK_AUTHORITY_HINT =
  'expected a device ID or { "kind": "device", "device": "<device ID>", "epoch": <moves> }';

const lockAuthority = z.unknown().transform((v, ctx): LockAuthoritySetting => {
  const fail = (message: string, path: PropertyKey[] = []) => {
    ctx.addIssue({ code: 'custom', message, path });
    return z.NEVER;
  };
  const device = (s: unknown, path: PropertyKey[]) => {
    if (typeof s !== 'string') return fail(`expected a device ID, got ${show(s)}`, path);
    try {
      return parseDeviceId(s);
    } catch (err) {
      return fail(errorMessage(err), path);
    }
  };
  if (typeof v === 'string') return { kind: 'device', device: device(v, []), epoch: 0 };
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    return fail(`${LOCK_AUTHORITY_HINT}, got ${show(v)}`);
  }
  const o = v as Record<string, unknown>;
  if ('etcd' in o && o.kind === undefined) {
    const extra = Object.keys(o).filter((k) => k !== 'etcd');
    if (extra.length > 0) return fail('unknown field (check its spelling)', [extra[0] as string]);
    return etcdSetting(o.etcd, fail);
  }
  if (o.kind === 'etcd') {
    // The tagged form, as a validated configuration has it (saveConfig checks it again).
    const { kind, ...etcd } = o;
    void kind;
    return etcdSetting(etcd, fail);
  }
  if (o.kind !== 'device') return fail(`expected "device", got ${show(o.kind)}`, ['kind']);
  const extra = Object.keys(o).filter((k) => !['kind', 'device', 'epoch'].includes(k));
  if (extra.length > 0) return fail('unknown field (check its spelling)', [extra[0] as string]);
  const epoch = o.epoch ?? 0;
  if (typeof epoch !== 'number' || !Number.isSafeInteger(epoch) || epoch < 0) {
    return fail(`expected the number of moves (a whole number, 0 or more), got ${show(epoch)}`, [
      'epoch',
    ]);
  }
  return { kind: 'device', device: device(o.device, ['device']), epoch };
});

const humanName = z
  .string()
  .min(1, { error: 'must be 1 to 64 characters' })
  .max(64, { error: 'must be 1 to 64 characters' })
  .regex(/^\P{Cc}*$/u, { error: 'must not contain control characters' });

const peerSchema = z.strictObject({
  id: deviceId,
  address: hostPort,
  name: humanName.optional(),
});

/** The schema of `config.json` (strict: unknown fields are refused). */
export const configSchema = z
  .strictObject({
    version: z.union([z.literal(1), z.literal(CONFIG_VERSION)], {
      error: `must be ${CONFIG_VERSION} (or 1, which \`lockstep serve\` upgrades)`,
    }),
    name: humanName,
    folder: z
      .string()
      .superRefine((s, ctx) => {
        if (!isAbsolute(s)) {
          ctx.addIssue({
            code: 'custom',
            message: `must be an absolute path, got ${JSON.stringify(s)}`,
          });
        }
      })
      .transform((s) => resolve(s)),
    peerListen: hostPort.default(DEFAULT_PEER_LISTEN),
    apiListen: hostPort.default(DEFAULT_API_LISTEN),
    /**
     * More names the client API answers for (`Host`), besides the loopback
     * names and the `apiListen` address; any port.
     */
    apiHosts: z.array(apiHost).optional(),
    rescanIntervalS: z
      .int({ error: 'must be a whole number of seconds' })
      .min(10, { error: 'must be at least 10 seconds' })
      .default(DEFAULT_RESCAN_INTERVAL_S),
    peers: z.array(peerSchema).default([]),
    lockAuthority: lockAuthority.optional(),
  })
  .superRefine((config, ctx) => {
    const seen = new Map<string, number>();
    config.peers.forEach((peer, i) => {
      const first = seen.get(peer.id);
      if (first !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['peers', i, 'id'],
          message: `the same device as peers[${first}]`,
        });
      }
      seen.set(peer.id, i);
    });
  });

/** A validated configuration, defaults filled in, device IDs canonical. */
export type Config = z.output<typeof configSchema>;
/** A configuration as written in the file: fields with defaults may be left out. */
export type ConfigInput = z.input<typeof configSchema>;

/** Formats an issue path the way a person reads it: `peers[0].address`. */
function fieldPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    out += typeof seg === 'number' ? `[${seg}]` : `${out === '' ? '' : '.'}${String(seg)}`;
  }
  return out;
}

const TYPE_NAMES: Readonly<Record<string, string>> = {
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  object: 'an object',
  array: 'a list',
  boolean: 'true or false',
};

/** Turns zod's issues into `field: problem` lines. */
function describeIssues(issues: readonly z.core.$ZodIssue[]): string[] {
  const out: string[] = [];
  for (const issue of issues) {
    const at = (path: readonly PropertyKey[], text: string) => {
      const field = fieldPath(path);
      out.push(field === '' ? text : `${field}: ${text}`);
    };
    switch (issue.code) {
      case 'unrecognized_keys':
        for (const key of issue.keys)
          at([...issue.path, key], 'unknown field (check its spelling)');
        break;
      case 'invalid_type':
        at(
          issue.path,
          issue.input === undefined
            ? 'is required'
            : `expected ${TYPE_NAMES[issue.expected] ?? issue.expected}, got ${show(issue.input)}`,
        );
        break;
      case 'invalid_value':
        at(issue.path, `expected ${issue.values.map(show).join(' or ')}, got ${show(issue.input)}`);
        break;
      case 'custom':
        at(issue.path, issue.message);
        break;
      default:
        at(
          issue.path,
          'input' in issue ? `${issue.message}, got ${show(issue.input)}` : issue.message,
        );
    }
  }
  return out;
}

/**
 * Validates a value as a configuration without throwing.
 *
 * @returns the configuration, or each problem as `field: what is wrong`
 */
export function checkConfig(data: unknown): { config: Config } | { problems: string[] } {
  const result = configSchema.safeParse(data, { reportInput: true });
  if (result.success) return { config: result.data };
  return { problems: describeIssues(result.error.issues) };
}

/**
 * Validates parsed JSON as a configuration.
 *
 * @param data - the parsed file
 * @param file - the file it came from, for messages
 * @throws LockstepError `CONFIG_INVALID` naming the file and each bad field
 */
export function validateConfig(data: unknown, file: string): Config {
  const result = checkConfig(data);
  if ('config' in result) return result.config;
  throw new LockstepError(
    'CONFIG_INVALID',
    `Invalid configuration in ${file}: ${result.problems.join('; ')}`,
  );
}

/** Returns `line L, column C` for a character offset into `text`. */
function lineColumn(text: string, offset: number): string {
  const before = text.slice(0, offset).split('\n');
  return `line ${before.length}, column ${(before.at(-1)?.length ?? 0) + 1}`;
}

/**
 * Reads and validates the configuration of the home `home`.
 *
 * @throws LockstepError `CONFIG_MISSING` if there is no `config.json` (run
 *   `lockstep init`), `CONFIG_INVALID` for unreadable files, JSON syntax
 *   errors (with the position) and invalid fields
 */
export function loadConfig(home: string): Config {
  const file = join(resolve(home), CONFIG_FILE);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if (errorCode(err) === 'ENOENT' || errorCode(err) === 'ENOTDIR') {
      throw new LockstepError(
        'CONFIG_MISSING',
        `No configuration at ${file}: run \`lockstep init --home ${resolve(home)} --folder DIR --name NAME\` to set up this device`,
        { cause: err },
      );
    }
    throw new LockstepError('CONFIG_INVALID', `Cannot read ${file}: ${errorMessage(err)}`, {
      cause: err,
    });
  }
  if (text.trim() === '') {
    throw new LockstepError('CONFIG_INVALID', `Invalid JSON in ${file}: the file is empty`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    const message = errorMessage(err);
    const pos = /at position (\d+)/.exec(message);
    const where = pos ? ` at ${lineColumn(text, Number(pos[1]))}` : '';
    const why = message.replace(/\s*(in JSON )?at position \d+.*$/, '');
    throw new LockstepError('CONFIG_INVALID', `Invalid JSON in ${file}${where}: ${why}`, {
      cause: err,
    });
  }
  return validateConfig(data, file);
}

/**
 * Writes `data` to `file` atomically: a temp file in the same directory with
 * `mode`, fsynced, then renamed over `file`. A reader sees the old or the new
 * content, never a mix. With `exclusive`, an existing `file` is never
 * replaced: the call fails with `EEXIST` instead.
 */
export function writeFileAtomic(
  file: string,
  data: string,
  mode: number,
  opts: { exclusive?: boolean } = {},
): void {
  const tmp = join(dirname(file), `.${basename(file)}.tmp-${randomBytes(6).toString('hex')}`);
  const fd = fs.openSync(tmp, 'wx', mode);
  try {
    try {
      fs.writeSync(fd, data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.chmodSync(tmp, mode); // the umask may have taken bits away
    if (opts.exclusive === true)
      fs.linkSync(tmp, file); // fails with EEXIST rather than replace
    else fs.renameSync(tmp, file);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  try {
    const dir = fs.openSync(dirname(file), 'r');
    try {
      fs.fsyncSync(dir);
    } finally {
      fs.closeSync(dir);
    }
  } catch {
    // Best effort: not every platform can fsync a directory.
  }
}

/**
 * Validates `config` and writes it as the home's `config.json` (pretty JSON,
 * mode 0600), atomically.
 *
 * @param opts.exclusive - never replace an existing `config.json`
 * @throws LockstepError `CONFIG_INVALID` if `config` is not valid,
 *   `HOME_EXISTS` if `exclusive` and the file exists
 */
export function saveConfig(
  home: string,
  config: Config | ConfigInput,
  opts: { exclusive?: boolean } = {},
): void {
  const file = join(resolve(home), CONFIG_FILE);
  const valid = validateConfig(config, file);
  // A device authority never moved is written as its plain ID.
  const { lockAuthority: authority, ...rest } = valid;
  const written =
    authority === undefined
      ? rest
      : {
          ...rest,
          lockAuthority:
            authority.kind === 'etcd'
              ? etcdForm(authority)
              : authority.epoch === 0
                ? authority.device
                : authority,
        };
  try {
    writeFileAtomic(file, `${JSON.stringify(written, null, 2)}\n`, 0o600, opts);
  } catch (err) {
    if (errorCode(err) === 'EEXIST') {
      throw new LockstepError('HOME_EXISTS', `${file} already exists; it was not replaced`, {
        cause: err,
      });
    }
    throw err;
  }
}

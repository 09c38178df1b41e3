/**
 * How client commands reach a device: the address and token from `--api` and
 * `--token` / `--token-file`, else `--home` (its `apiListen` and
 * administrator token), else `$LOCKSTEP_API` and `$LOCKSTEP_TOKEN` /
 * `$LOCKSTEP_TOKEN_FILE`, else `$LOCKSTEP_HOME` or the default home; and the
 * requests themselves, with failures turned into errors whose codes give the
 * exit status (1 refused, 3 unreachable).
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { errorCode, errorMessage, LockstepError, type ErrorCode } from '../base/errors.js';
import { loadConfig, parseHostPort } from '../config/config.js';
import { readToken, resolveHome } from '../config/home.js';

/** Connection options every client command takes. */
export interface ConnectionFlags {
  home?: string;
  api?: string;
  token?: string;
  tokenFile?: string;
}

/** `--help` of `--token`: it works, but every user of the machine can read it. */
export const TOKEN_FLAG_HELP =
  'the bearer token to use; other users of this machine can read it in the process list: ' +
  'prefer --token-file or $LOCKSTEP_TOKEN';
/** `--help` of `--token-file`. */
export const TOKEN_FILE_FLAG_HELP =
  'read the bearer token from this file (keep it mode 0600); also $LOCKSTEP_TOKEN_FILE';

/** Adds `--home`, `--api`, `--token` and `--token-file` to a command. */
export function connectionOptions(cmd: Command, homeHelp: string, tokenHelp?: string): Command {
  return cmd
    .option('--home <dir>', homeHelp)
    .option('--api <url>', "the device's client API, e.g. http://127.0.0.1:7701")
    .option('--token <token>', tokenHelp ?? TOKEN_FLAG_HELP)
    .option('--token-file <path>', TOKEN_FILE_FLAG_HELP);
}

/** Reads a token from `file` (given by `what`): its first line, trimmed. */
function readTokenFile(file: string, what: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new LockstepError(
      'USAGE',
      `Cannot read the token file ${file} (${what}): ${errorMessage(err)}`,
      { cause: err },
    );
  }
  const token = text.split(/\r?\n/, 1)[0]?.trim() ?? '';
  if (token === '') {
    throw new LockstepError('USAGE', `The token file ${file} (${what}) is empty`);
  }
  return token;
}

/**
 * The token the user gave, if any: `--token`, `--token-file`, then
 * `$LOCKSTEP_TOKEN`, `$LOCKSTEP_TOKEN_FILE` (each pair at most one of the two).
 *
 * @returns the token, or undefined for none
 */
function givenToken(flags: ConnectionFlags, env: NodeJS.ProcessEnv): string | undefined {
  if (flags.token !== undefined && flags.token.trim() === '') {
    throw new LockstepError('USAGE', 'The token given with --token is empty');
  }
  if (flags.token !== undefined && flags.tokenFile !== undefined) {
    throw new LockstepError('USAGE', 'Give --token or --token-file, not both');
  }
  if (flags.token !== undefined) return flags.token;
  if (flags.tokenFile !== undefined) return readTokenFile(flags.tokenFile, '--token-file');
  const envToken = env.LOCKSTEP_TOKEN === '' ? undefined : env.LOCKSTEP_TOKEN;
  const envFile = env.LOCKSTEP_TOKEN_FILE === '' ? undefined : env.LOCKSTEP_TOKEN_FILE;
  if (envToken !== undefined && envFile !== undefined) {
    throw new LockstepError(
      'USAGE',
      'Both $LOCKSTEP_TOKEN and $LOCKSTEP_TOKEN_FILE are set: unset one of them',
    );
  }
  if (envToken !== undefined) return envToken;
  return envFile === undefined ? undefined : readTokenFile(envFile, '$LOCKSTEP_TOKEN_FILE');
}

/** A device to talk to. */
export interface Connection {
  /** Base URL, e.g. `http://127.0.0.1:7701` (no trailing slash). */
  readonly url: string;
  readonly token: string;
  /** The home it came from, if any (to tell the user how to start that device). */
  readonly home?: string;
}

/** Connects to a listen address: a wildcard host means this machine. */
function dialHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '::1';
  return host;
}

/** Parses `--api`: `http://HOST:PORT`, `https://…` or plain `HOST:PORT`. */
export function parseApiUrl(s: string, what = '--api'): string {
  const raw = /^[a-z][a-z0-9+.-]*:\/\//i.test(s) ? s : `http://${s}`;
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new LockstepError(
      'USAGE',
      `Invalid ${what} ${JSON.stringify(s)}: expected a URL like http://127.0.0.1:7701`,
    );
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new LockstepError(
      'USAGE',
      `Invalid ${what} ${JSON.stringify(s)}: use http:// or https://`,
    );
  }
  if (u.search !== '' || u.hash !== '' || u.username !== '') {
    throw new LockstepError(
      'USAGE',
      `Invalid ${what} ${JSON.stringify(s)}: give only the scheme, host and port`,
    );
  }
  return `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, '')}`;
}

/** The API URL of a home: its configured `apiListen`. */
export function homeApiUrl(home: string): string {
  const { host, port } = parseHostPort(loadConfig(home).apiListen, 'apiListen');
  const h = dialHost(host);
  return `http://${h.includes(':') ? `[${h}]` : h}:${port}`;
}

/**
 * Works out which device to talk to and with which token.
 *
 * @throws LockstepError `USAGE` for a bad `--api` or one without a token,
 *   two token sources of one kind, or a token file that cannot be read or is
 *   empty; `CONFIG_MISSING` if the home to use is not a home
 */
export function resolveConnection(
  flags: ConnectionFlags,
  env: NodeJS.ProcessEnv = process.env,
): Connection {
  const envApi = env.LOCKSTEP_API === '' ? undefined : env.LOCKSTEP_API;
  const token = givenToken(flags, env);
  // An explicit --api wins, then an explicit --home, then $LOCKSTEP_API.
  const api = flags.api ?? (flags.home === undefined ? envApi : undefined);
  if (api !== undefined) {
    const url = parseApiUrl(api, flags.api !== undefined ? '--api' : '$LOCKSTEP_API');
    if (token === undefined) {
      throw new LockstepError(
        'USAGE',
        `No token for ${url}: give --token-file FILE, or set $LOCKSTEP_TOKEN_FILE or ` +
          '$LOCKSTEP_TOKEN (or use --home for a device on this machine)',
      );
    }
    return { url, token };
  }
  const envHome = env.LOCKSTEP_HOME === '' ? undefined : env.LOCKSTEP_HOME;
  const home = resolveHome(flags.home ?? envHome);
  return { url: homeApiUrl(home), token: token ?? readToken(home), home };
}

/** A failure reported by the device: its HTTP status and `{ error: { code, message } }`. */
export class ApiError extends LockstepError {
  constructor(
    code: ErrorCode,
    message: string,
    /** The code the device sent (may be one the CLI does not know). */
    readonly remoteCode: string,
    readonly status: number,
  ) {
    super(code, message);
    this.name = 'ApiError';
  }
}

/** Milliseconds a request may take before the device counts as unreachable. */
const REQUEST_TIMEOUT_MS = 15_000;

/** Calls the client API of one device. */
export class ApiClient {
  constructor(readonly conn: Connection) {}

  /** Explains that the device did not answer, and how to start it. */
  unreachable(err: unknown): LockstepError {
    const cause = (err as { cause?: unknown }).cause ?? err;
    const code = errorCode(cause);
    if (errorMessage(cause) === 'bad port') {
      return new LockstepError(
        'UNREACHABLE',
        `Cannot reach the device at ${this.conn.url}: HTTP clients refuse that port (it belongs ` +
          'to another protocol); give the device another apiListen port',
        { cause: err },
      );
    }
    const why =
      code === 'ECONNREFUSED'
        ? 'connection refused'
        : code === 'ENOTFOUND'
          ? 'no such host'
          : (err as Error).name === 'TimeoutError'
            ? `no answer within ${REQUEST_TIMEOUT_MS / 1000} s`
            : (code ?? errorMessage(cause));
    const start =
      this.conn.home !== undefined
        ? `start it with \`lockstep serve --home ${this.conn.home}\``
        : 'start it there with `lockstep serve`';
    return new LockstepError(
      'UNREACHABLE',
      `Cannot reach the device at ${this.conn.url} (${why}): is it running? ${start}`,
      { cause: err },
    );
  }

  /** Opens a request; resolves with the response whatever its status. */
  async raw(
    method: string,
    path: string,
    opts: { body?: unknown; signal?: AbortSignal; accept?: string; timeout?: boolean } = {},
  ): Promise<Response> {
    const signals = [
      opts.signal,
      opts.timeout === false ? undefined : AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    ];
    const active = signals.filter((s): s is AbortSignal => s !== undefined);
    try {
      return await fetch(`${this.conn.url}/api/v1${path}`, {
        method,
        headers: {
          authorization: `Bearer ${this.conn.token}`,
          accept: opts.accept ?? 'application/json',
          ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
        ...(active.length > 0 ? { signal: AbortSignal.any(active) } : {}),
      });
    } catch (err) {
      if (opts.signal?.aborted === true) throw err;
      throw this.unreachable(err);
    }
  }

  /** Sends a request and returns its JSON, or throws the device's error. */
  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.raw(method, path, { body });
    let text: string;
    try {
      text = await res.text();
    } catch (err) {
      throw this.unreachable(err);
    }
    if (res.ok) {
      try {
        return JSON.parse(text) as T;
      } catch {
        throw new LockstepError(
          'UNREACHABLE',
          `${this.conn.url} answered with something that is not JSON: is it a Lockstep device?`,
        );
      }
    }
    throw errorOf(res.status, text, this.conn.url);
  }
}

/** Error codes the CLI passes on as they are; others become `REQUEST_FAILED`. */
const KNOWN: ReadonlySet<string> = new Set<ErrorCode>([
  'NOT_FOUND',
  'NOT_A_FILE',
  'LOCKED',
  'NOT_LOCK_OWNER',
  'AUTHORITY_UNREACHABLE',
  'AUTHORITY_DISAGREE',
  'FOLDER_STOPPED',
  'PATH_INVALID',
]);

/**
 * Turns an error reply into an {@link ApiError}: 401 is `UNAUTHORIZED`, a
 * request the device found malformed (400) is `USAGE` (exit 2: the path or
 * option given was bad), known codes stay, anything else is `REQUEST_FAILED`.
 */
export function errorOf(status: number, text: string, url: string): ApiError {
  let code = `HTTP_${status}`;
  let message = `${url} answered HTTP ${status}`;
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    if (typeof body.error?.code === 'string') code = body.error.code;
    if (typeof body.error?.message === 'string') message = body.error.message;
  } catch {
    // not our JSON: keep the status line
  }
  if (status === 401) {
    return new ApiError(
      'UNAUTHORIZED',
      `The device at ${url} refused the token (${message}): check --token / --token-file / ` +
        '$LOCKSTEP_TOKEN / $LOCKSTEP_TOKEN_FILE, or ' +
        'ask its administrator for one (`lockstep user add`)',
      code,
      status,
    );
  }
  if (status === 400) return new ApiError('USAGE', message, code, status);
  return new ApiError(
    KNOWN.has(code) ? (code as ErrorCode) : 'REQUEST_FAILED',
    message,
    code,
    status,
  );
}

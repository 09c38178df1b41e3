/**
 * Starts a device's client API: its users from the home, bound where the
 * configuration's `apiListen` says (127.0.0.1 unless configured otherwise),
 * answering for the loopback names, that address and `apiHosts`.
 */
import { fileURLToPath } from 'node:url';
import type { Logger } from '../base/log.js';
import { errorCode, errorMessage, LockstepError } from '../base/errors.js';
import { parseHostPort, type Config } from '../config/config.js';
import { openUserStore } from '../config/users.js';
import type { ClientBackend } from './backend.js';
import { allowedHosts } from './hosts.js';
import { createApiServer } from './server.js';

/** A running client API. */
export interface RunningApi {
  /** The address clients use, e.g. `http://127.0.0.1:7701`. */
  readonly url: string;
  readonly port: number;
  /** Ends live event streams and stops listening. */
  close(): Promise<void>;
}

/** Options of {@link startApi}. */
export interface StartApiOptions {
  readonly backend: ClientBackend;
  /** The device's home (its `token` and `users.json`). */
  readonly home: string;
  readonly config: Config;
  readonly log: Logger;
  /** The name of the device's administrator (the home's `token` file); `admin` unless given. */
  readonly adminName?: string;
}

/** The URL of a listen address (an IPv6 host in brackets). */
export function apiUrl(host: string, port: number): string {
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/**
 * Starts the client API on the configuration's `apiListen`.
 *
 * @throws LockstepError `CONFIG_INVALID` if the address cannot be listened
 *   on (in use, not an address of this machine), naming it
 */
export async function startApi(opts: StartApiOptions): Promise<RunningApi> {
  const { host, port } = parseHostPort(opts.config.apiListen, 'apiListen');
  const log = opts.log.child({ component: 'api' });
  const server = createApiServer({
    backend: opts.backend,
    users: openUserStore(opts.home, opts.adminName),
    log,
    // Built beside the server: dist/api/start.js serves dist/web.
    webRoot: fileURLToPath(new URL('../web/', import.meta.url)),
    hosts: allowedHosts(host, opts.config.apiHosts),
  });
  let bound: number;
  try {
    bound = await server.listen(host, port);
  } catch (err) {
    await server.close().catch(() => undefined);
    const why = errorCode(err) === 'EADDRINUSE' ? 'the port is in use' : errorMessage(err);
    throw new LockstepError(
      'CONFIG_INVALID',
      `Cannot listen for clients on ${opts.config.apiListen} (apiListen): ${why}`,
      { cause: err },
    );
  }
  const url = apiUrl(host, bound);
  log.info({ url }, `listening for clients on ${url}`);
  return { url, port: bound, close: () => server.close() };
}

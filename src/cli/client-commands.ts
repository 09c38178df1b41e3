/**
 * The client commands: `ls`, `lock`, `unlock`, `locks`, `watch`, `status`
 * and `whoami`. Each talks to one device over its client API only, prints
 * for people or (`--json`) one JSON document, and reports failure through
 * its host: the CLI exits with the code scripts rely on; the shell prints
 * and carries on.
 */
import { Command, Option } from 'commander';
import type {
  AuthorityMove,
  ClientEvent,
  ListEntry,
  ListPage,
  LockInfo,
  Status,
  User,
} from '../api/backend.js';
import { LockstepError } from '../base/errors.js';
import {
  ApiClient,
  connectionOptions,
  errorOf,
  resolveConnection,
  type ConnectionFlags,
} from './connect.js';
import { parseDuration } from './duration.js';
import {
  eventLine,
  listingTable,
  lockedLine,
  locksTable,
  statusText,
  unlockedLine,
} from './format.js';
import { resolveTarget, saveListing } from './listing-cache.js';
import { readSse } from './sse.js';

/** Where client commands run: the `lockstep` command line or the shell. */
export interface CommandHost {
  /** Connection flags the shell was started with; a command's own flags win. */
  readonly defaults?: ConnectionFlags;
  /** Reports a failed command (the CLI exits; the shell prints and goes on). */
  readonly fail: (err: unknown, opts: { json?: boolean }) => void;
  /** A signal that aborts when the user interrupts a long-running command (Ctrl-C). */
  readonly interrupt: () => AbortSignal;
}

/** Options every client command takes. */
interface ClientFlags extends ConnectionFlags {
  json?: boolean;
}

/** The commands this module adds. */
export const CLIENT_COMMANDS: readonly string[] = [
  'ls',
  'lock',
  'unlock',
  'locks',
  'watch',
  'status',
  'whoami',
];

/** Entries fetched per listing request. */
const PAGE = 200_000;
/** Silence on an event stream (the device sends a heartbeat every 15 s) after which it is reopened. */
const IDLE_MS = 45_000;

const CONNECTION_HELP = `
Reaching a device: --home DIR uses that device's API address and administrator
token; --api URL with --token-file FILE reaches any device (--token TOKEN works
too, but other users of the machine can read it in the process list). Without
them: $LOCKSTEP_API with $LOCKSTEP_TOKEN or $LOCKSTEP_TOKEN_FILE, else
$LOCKSTEP_HOME, else ~/.config/lockstep.
Exit codes: 0 done, 1 the request failed, 2 usage error, 3 device unreachable.`;

/** A client command, its own options to follow (then {@link withConnection}'s). */
function clientCommand(parent: Command, name: string, description: string): Command {
  return parent.command(name).description(description);
}

/** Adds `--json` and the connection options (after the command's own) to a command. */
function withConnection(cmd: Command): Command {
  return connectionOptions(
    cmd.option('--json', 'print one JSON document on stdout instead of text'),
    "reach the device of this home, with its administrator's token",
  ).addHelpText('after', CONNECTION_HELP);
}

/** Encodes a folder-relative path for a URL, segment by segment. */
function encodePath(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/');
}

/** Prints a JSON document on stdout. */
function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/**
 * Wraps a command's action: connects (the command's flags, else the host's
 * defaults), runs it, and hands any failure to the host.
 */
type Runner = <A extends unknown[]>(
  fn: (client: ApiClient, flags: ClientFlags, ...args: A) => Promise<void>,
) => (...args: unknown[]) => Promise<void>;

/** The {@link Runner} of `host`. */
function runnerOf(host: CommandHost): Runner {
  return <A extends unknown[]>(
      fn: (client: ApiClient, flags: ClientFlags, ...args: A) => Promise<void>,
    ) =>
    async (...args: unknown[]) => {
      const cmd = args.at(-1) as Command;
      // With globals: `locks move-authority` may get its connection flags on `locks`.
      const flags = cmd.optsWithGlobals<ClientFlags>();
      try {
        // A command's own token (either form) wins over the shell's.
        const own = flags.token !== undefined || flags.tokenFile !== undefined;
        const conn = resolveConnection({
          home: flags.home ?? (flags.api === undefined ? host.defaults?.home : undefined),
          api: flags.api ?? (flags.home === undefined ? host.defaults?.api : undefined),
          token: own ? flags.token : host.defaults?.token,
          tokenFile: own ? flags.tokenFile : host.defaults?.tokenFile,
        });
        await fn(new ApiClient(conn), flags, ...(args.slice(0, -2) as A));
      } catch (err) {
        host.fail(err, { json: flags.json === true });
      }
    };
}

/**
 * Adds the client commands to `program`.
 *
 * @param host - how to report failures and interruptions (see {@link CommandHost})
 */
export function registerClientCommands(program: Command, host: CommandHost): void {
  const run = runnerOf(host);
  registerLs(program, run);
  registerLockCommands(program, run);
  registerInfoCommands(program, run, host);
  for (const cmd of program.commands) if (CLIENT_COMMANDS.includes(cmd.name())) withConnection(cmd);
}

/** Adds `ls`. */
function registerLs(program: Command, run: Runner): void {
  clientCommand(program, 'ls', 'List the folder as the whole cluster sees it (one merged listing)')
    .argument('[path]', 'a directory to list into, or one file (default: the folder root)')
    .addOption(
      new Option('--sort <key>', 'sort by name, size or modified time')
        .choices(['name', 'size', 'modified'])
        .default('name'),
    )
    .option('--reverse', 'reverse the order')
    .option('-R, --recursive', 'everything below the directory, by path')
    .addHelpText(
      'after',
      '\nThe numbers in the # column can be given to `lock` and `unlock`: they refer to the\n' +
        'listing printed last, never to a fresh one.',
    )
    .action(
      run(async (client, flags, path?: string) => {
        const opts = flags as ClientFlags & {
          sort: string;
          reverse?: boolean;
          recursive?: boolean;
        };
        await ls(client, path ?? '', {
          json: opts.json === true,
          sort: opts.sort,
          order: opts.reverse === true ? 'desc' : 'asc',
          recursive: opts.recursive === true,
        });
      }),
    );
}

/** Adds `lock`, `unlock` and `locks`. */
function registerLockCommands(program: Command, run: Runner): void {
  clientCommand(
    program,
    'lock',
    'Lock a file, or a directory with everything below it, across the cluster: nobody else can change it',
  )
    .argument('<#|path>', 'a number from the last `ls`, or a path in the folder')
    .option('--ttl <duration>', 'release the lock by itself after this long, e.g. 30m, 2h, 1d')
    .option('--reason <text>', 'why, for the others to see')
    .action(
      run(async (client, flags, target: string) => {
        const opts = flags as ClientFlags & { ttl?: string; reason?: string };
        const ttlMs = opts.ttl === undefined ? undefined : parseDuration(opts.ttl, '--ttl');
        const { path } = resolveTarget(target, client.conn.url);
        const lock = await client.call<LockInfo>('POST', '/locks', {
          path,
          ...(ttlMs !== undefined ? { ttl: Math.ceil(ttlMs / 1000) } : {}),
          ...(opts.reason !== undefined ? { reason: opts.reason } : {}),
        });
        if (flags.json === true) printJson(lock);
        else console.log(lockedLine(lock, Date.now()));
      }),
    );

  clientCommand(program, 'unlock', 'Release a lock (your own; an administrator may --force)')
    .argument('<#|path>', 'a number from the last `ls`, or a path in the folder')
    .option('--force', "release someone else's lock (administrators; recorded and announced)")
    .action(
      run(async (client, flags, target: string) => {
        const opts = flags as ClientFlags & { force?: boolean };
        const { path } = resolveTarget(target, client.conn.url);
        const q = opts.force === true ? '?force=true' : '';
        const lock = await client.call<LockInfo>('DELETE', `/locks/${encodePath(path)}${q}`);
        if (flags.json === true) printJson(lock);
        else console.log(unlockedLine(lock));
      }),
    );

  const locks = clientCommand(program, 'locks', 'List every lock in the cluster').action(
    run(async (client, flags) => {
      const r = await client.call<{ locks: LockInfo[] }>('GET', '/locks');
      if (flags.json === true) printJson(r);
      else console.log(locksTable(r.locks, Date.now()));
    }),
  );
  withConnection(
    clientCommand(
      locks,
      'move-authority',
      'Move the lock authority to another device, handing every lock over (administrators)',
    )
      .argument('<device>', "the device's ID, short ID or name")
      .action(
        run(async (client, flags, device: string) => {
          const moved = await client.call<AuthorityMove>('POST', '/locks/authority', { device });
          if (flags.json === true) printJson(moved);
          else {
            console.log(
              `lock authority moved from ${moved.from.name} (${moved.from.short}) to ${moved.to.name} (${moved.to.short}); ${moved.locks} lock(s) handed over`,
            );
          }
        }),
      ),
  );
}

/** Adds `watch`, `status` and `whoami`. */
function registerInfoCommands(program: Command, run: Runner, host: CommandHost): void {
  clientCommand(
    program,
    'watch',
    'Print every change, sync, conflict, lock and connection as it happens, until Ctrl-C',
  )
    .addHelpText('after', '\nWith --json: one JSON object per event, one per line (JSON Lines).')
    .action(
      run(async (client, flags) => {
        await watch(client, flags.json === true, host.interrupt());
      }),
    );

  clientCommand(
    program,
    'status',
    'Show the device, its peers and connections, what is still to sync, and problems',
  ).action(
    run(async (client, flags) => {
      const s = await client.call<Status>('GET', '/status');
      if (flags.json === true) printJson(s);
      else console.log(statusText(s));
    }),
  );

  clientCommand(program, 'whoami', 'Show the user the token belongs to').action(
    run(async (client, flags) => {
      const u = await client.call<User>('GET', '/whoami');
      if (flags.json === true) printJson(u);
      else console.log(`${u.name}${u.admin ? ' (administrator)' : ''} on ${client.conn.url}`);
    }),
  );
}

/** `ls`: every page of a directory (or one file), printed and remembered. */
async function ls(
  client: ApiClient,
  pathArg: string,
  opts: { json: boolean; sort: string; order: 'asc' | 'desc'; recursive?: boolean },
): Promise<void> {
  const path = pathArg.replace(/^(\.\/)+/, '').replace(/^\/+|\/+$/g, '');
  let dir = path;
  let single: ListEntry | undefined;
  if (path !== '' && path !== '.') {
    const entry = await client.call<ListEntry>('GET', `/files/${encodePath(path)}`);
    if (entry.type !== 'directory') single = entry;
  } else {
    dir = '';
  }
  let page: ListPage;
  if (single !== undefined) {
    const parent = single.path.includes('/')
      ? single.path.slice(0, single.path.lastIndexOf('/'))
      : '';
    page = { dir: parent, total: 1, entries: [single] };
  } else {
    if (opts.json) {
      // A listing that fits one page goes to stdout as the device sent it.
      const q = new URLSearchParams({
        dir,
        sort: opts.sort,
        order: opts.order,
        offset: '0',
        limit: String(PAGE),
        ...(opts.recursive === true ? { recursive: 'true' } : {}),
      });
      const res = await client.raw('GET', `/files?${q.toString()}`);
      const text = await res.text();
      if (!res.ok) throw errorOf(res.status, text, client.conn.url);
      if (res.headers.get('x-lockstep-complete') === 'true') {
        process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
        return;
      }
    }
    const entries: ListEntry[] = [];
    let total = 0;
    for (;;) {
      const q = new URLSearchParams({
        dir,
        sort: opts.sort,
        order: opts.order,
        offset: String(entries.length),
        limit: String(PAGE),
        ...(opts.recursive === true ? { recursive: 'true' } : {}),
      });
      const p = await client.call<ListPage>('GET', `/files?${q.toString()}`);
      // Below the directory, a name alone is ambiguous: show the path from it.
      if (opts.recursive === true) {
        for (const e of p.entries) {
          entries.push({ ...e, name: dir === '' ? e.path : e.path.slice(dir.length + 1) });
        }
      } else {
        for (const e of p.entries) entries.push(e);
      }
      total = p.total;
      if (p.entries.length === 0 || entries.length >= total) break;
    }
    page = { dir, total, entries };
  }
  if (opts.json) {
    // A big listing is printed compact: indenting 100,000 entries costs more than it helps.
    if (page.entries.length > 1000) process.stdout.write(`${JSON.stringify(page)}\n`);
    else printJson(page);
    return;
  }
  const now = Date.now();
  if (page.entries.length === 0) {
    console.log(dir === '' ? 'The folder is empty.' : `${dir}/ is empty.`);
  } else {
    console.log(listingTable(page.entries, now));
  }
  saveListing(client.conn.url, {
    dir: page.dir,
    printed: new Date(now).toISOString(),
    paths: page.entries.map((e) => e.path),
  });
}

/** `watch`: follows the event stream until interrupted; reopens it if the device goes away. */
async function watch(client: ApiClient, json: boolean, signal: AbortSignal): Promise<void> {
  const print = (ev: ClientEvent) => {
    if (json) process.stdout.write(`${JSON.stringify(ev)}\n`);
    else console.log(eventLine(ev));
  };
  const note = (text: string) => {
    if (!json) process.stderr.write(`${text}\n`);
  };
  let first = true;
  let lostSince: number | undefined;
  while (!signal.aborted) {
    const conn = new AbortController();
    const stop = () => conn.abort();
    signal.addEventListener('abort', stop, { once: true });
    let idle: NodeJS.Timeout | undefined;
    const activity = () => {
      clearTimeout(idle);
      idle = setTimeout(() => conn.abort(), IDLE_MS);
    };
    try {
      const res = await client.raw('GET', '/events', {
        accept: 'text/event-stream',
        signal: conn.signal,
        timeout: false,
      });
      if (!res.ok) throw errorOf(res.status, await res.text(), client.conn.url);
      if (first) note(`watching ${client.conn.url}; press Ctrl-C to stop`);
      else note(`reconnected to ${client.conn.url}`);
      first = false;
      lostSince = undefined;
      activity();
      await readSse(
        res.body as ReadableStream<Uint8Array>,
        (msg) => {
          try {
            print(JSON.parse(msg.data) as ClientEvent);
          } catch {
            // not an event of ours: skip it
          }
        },
        activity,
      );
    } catch (err) {
      if (signal.aborted) break;
      // A device that refuses us, or that was never there, ends the watch.
      if (first || (err instanceof LockstepError && err.code !== 'UNREACHABLE')) throw err;
    } finally {
      clearTimeout(idle);
      signal.removeEventListener('abort', stop);
    }
    if (signal.aborted) break;
    if (lostSince === undefined) {
      lostSince = Date.now();
      note(`lost the connection to ${client.conn.url}; reconnecting (Ctrl-C to stop)`);
    }
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 1000);
      signal.addEventListener(
        'abort',
        () => {
          clearTimeout(t);
          resolve();
        },
        { once: true },
      );
    });
  }
}

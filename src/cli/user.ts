/**
 * `lockstep user add|list|remove`: the cluster's users. They go through the
 * running device's client API, which sends changes to the lock authority's
 * device (the keeper of the cluster's users); a device that is not running
 * and has no peers is changed in its home directly.
 */
import type { Command } from 'commander';
import { LockstepError } from '../base/errors.js';
import type { UserInfo } from '../api/backend.js';
import { loadConfig } from '../config/config.js';
import { resolveHome } from '../config/home.js';
import { addUser, USERS_FILE } from '../config/users.js';
import { userNameProblem } from '../core/user-table.js';
import {
  ApiClient,
  connectionOptions,
  resolveConnection,
  type ConnectionFlags,
} from './connect.js';
import { columns, formatLocal } from './format.js';
import { fail } from './output.js';

/** Options of `lockstep user add`. */
interface UserAddFlags extends ConnectionFlags {
  replace?: boolean;
  admin?: boolean;
  json?: boolean;
}

const HOME_HELP =
  'the device home, for its API address and administrator token (default: $LOCKSTEP_HOME, else ~/.config/lockstep)';

/** Connects to the device the flags name. */
function client(flags: ConnectionFlags): ApiClient {
  return new ApiClient(resolveConnection(flags));
}

/**
 * Adds a user in a home whose device is not running, when that is safe: the
 * device has no peers, so it keeps the cluster's users itself.
 *
 * @throws the error `unreachable` when it is not
 */
function addOffline(flags: UserAddFlags, name: string, unreachable: unknown) {
  if (flags.api !== undefined) throw unreachable;
  const home = resolveHome(flags.home);
  if (loadConfig(home).peers.length > 0) {
    throw new LockstepError(
      'UNREACHABLE',
      `The device of ${home} is not running: start it (\`lockstep serve --home ${home}\`); users are added through the lock authority, which keeps the cluster's users`,
    );
  }
  const { user, token } = addUser(home, name, {
    replace: flags.replace === true,
    admin: flags.admin === true,
  });
  return { ...user, created: new Date().toISOString(), token };
}

/** Registers `user add`. */
function registerAdd(user: Command): void {
  connectionOptions(
    user
      .command('add')
      .description(
        'Create a user of the whole cluster with a new token and print the token on the last line; ' +
          'every device accepts it at once (administrators)',
      )
      .argument('<name>', "the user's name, 1 to 64 of A-Z a-z 0-9 . _ - (locks show it as owner)"),
    HOME_HELP,
  )
    .option('--replace', 'give an existing user a new token (the old one stops working everywhere)')
    .option('--admin', 'make the user an administrator (may force unlocks, manage users)')
    .option('--json', 'print {"name", "admin", "created", "token"} as JSON instead')
    .addHelpText(
      'after',
      '\nThe user is known on every device of the cluster, with the same token. The token is\n' +
        `shown once: only its SHA-256 is kept, in ${USERS_FILE} in each home. Keep it in a file of\n` +
        'mode 0600 and use it with --token-file FILE or $LOCKSTEP_TOKEN_FILE (or $LOCKSTEP_TOKEN).\n' +
        'The device must be running, unless it has no peers.',
    )
    .action(async (name: string, flags: UserAddFlags) => {
      try {
        const problem = userNameProblem(name);
        if (problem !== undefined) throw new LockstepError('USAGE', problem);
        let made: UserInfo & { token: string };
        try {
          made = await client(flags).call<UserInfo & { token: string }>('POST', '/users', {
            name,
            admin: flags.admin === true,
            replace: flags.replace === true,
          });
        } catch (err) {
          if (!(err instanceof LockstepError) || err.code !== 'UNREACHABLE') throw err;
          made = addOffline(flags, name, err);
        }
        if (flags.json === true) {
          process.stdout.write(`${JSON.stringify(made, null, 2)}\n`);
          return;
        }
        process.stdout.write(
          [
            `${flags.replace === true ? 'New token for' : 'Created'} user ${made.name}` +
              `${made.admin ? ' (administrator)' : ''}, known on every device of the cluster.`,
            'Its token (shown only now; use it with --token-file or $LOCKSTEP_TOKEN):',
            made.token,
            '',
          ].join('\n'),
        );
      } catch (err) {
        fail(err, { json: flags.json === true });
      }
    });
}

/** Adds the `user` command group. */
export function registerUser(program: Command): void {
  const user = program.command('user').description("Manage the cluster's users");
  registerAdd(user);
  connectionOptions(
    user.command('list').description("List the cluster's users: name, administrator, created"),
    HOME_HELP,
  )
    .option('--json', 'print {"users": [{"name", "admin", "created"}]} as JSON')
    .action(async (flags: ConnectionFlags & { json?: boolean }) => {
      try {
        const { users } = await client(flags).call<{ users: UserInfo[] }>('GET', '/users');
        if (flags.json === true) {
          process.stdout.write(`${JSON.stringify({ users }, null, 2)}\n`);
          return;
        }
        const rows = users.map((u) => [u.name, u.admin ? 'yes' : 'no', formatLocal(u.created)]);
        process.stdout.write(
          users.length === 0
            ? 'No users.\n'
            : `${columns([['NAME', 'ADMIN', 'CREATED'], ...rows], new Set())}\n`,
        );
      } catch (err) {
        fail(err, { json: flags.json === true });
      }
    });
  connectionOptions(
    user
      .command('remove')
      .description(
        'Remove a user: its token and web sessions stop working on every device (administrators; the last administrator stays)',
      )
      .argument('<name>', "the user's name"),
    HOME_HELP,
  )
    .option('--json', 'print the removed {"name", "admin", "created"} as JSON')
    .action(async (name: string, flags: ConnectionFlags & { json?: boolean }) => {
      try {
        const gone = await client(flags).call<UserInfo>(
          'DELETE',
          `/users/${encodeURIComponent(name)}`,
        );
        if (flags.json === true) {
          process.stdout.write(`${JSON.stringify(gone, null, 2)}\n`);
          return;
        }
        process.stdout.write(
          `Removed user ${gone.name}; its token no longer works on any device.\n`,
        );
      } catch (err) {
        fail(err, { json: flags.json === true });
      }
    });
}

/**
 * `lockstep user add`: creates a client user of this device and prints its
 * token on the last line (the device keeps only a hash of it).
 */
import type { Command } from 'commander';
import { resolveHome } from '../config/home.js';
import { addUser, USERS_FILE } from '../config/users.js';
import { fail } from './output.js';

/** Options of `lockstep user add`. */
interface UserAddFlags {
  home?: string;
  replace?: boolean;
  admin?: boolean;
  json?: boolean;
}

/** Adds the `user` command group. */
export function registerUser(program: Command): void {
  const user = program.command('user').description("Manage the users of this device's client API");
  user
    .command('add')
    .description(
      'Create a user with a new token and print the token on the last line; ' +
        'a running device accepts it at once',
    )
    .argument('<name>', "the user's name, 1 to 64 of A-Z a-z 0-9 . _ - (locks show it as owner)")
    .option('--home <dir>', 'the device home (default: $LOCKSTEP_HOME, else ~/.config/lockstep)')
    .option('--replace', 'give an existing user a new token (the old one stops working)')
    .option('--admin', 'make the user an administrator (may force unlocks)')
    .option('--json', 'print {"name", "admin", "token"} as JSON instead')
    .addHelpText(
      'after',
      '\nGive the same name on each device a person uses. The token is shown once: only its\n' +
        `SHA-256 is kept, in ${USERS_FILE} in the home. Keep it in a file of mode 0600 and use\n` +
        'it with --token-file FILE or $LOCKSTEP_TOKEN_FILE (or $LOCKSTEP_TOKEN).',
    )
    .action((name: string, flags: UserAddFlags) => {
      try {
        const home = resolveHome(flags.home);
        const { user: u, token } = addUser(home, name, {
          replace: flags.replace === true,
          admin: flags.admin === true,
        });
        if (flags.json === true) {
          process.stdout.write(`${JSON.stringify({ ...u, token }, null, 2)}\n`);
          return;
        }
        process.stdout.write(
          [
            `${flags.replace === true ? 'New token for' : 'Created'} user ${u.name}` +
              `${u.admin ? ' (administrator)' : ''} on the device of ${home}.`,
            'Its token (shown only now; use it with --token-file or $LOCKSTEP_TOKEN):',
            token,
            '',
          ].join('\n'),
        );
      } catch (err) {
        fail(err, { json: flags.json === true });
      }
    });
}

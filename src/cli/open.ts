/**
 * `lockstep open`: asks the running device for a one-time sign-in code and
 * prints the web page's address with it (`http://HOST:PORT/#signin=CODE`) on
 * the last line. With `--browser`, also opens it where there is a display.
 */
import { spawn } from 'node:child_process';
import type { Command } from 'commander';
import type { SignInCode } from '../api/backend.js';
import { ApiClient, resolveConnection, type Connection, type ConnectionFlags } from './connect.js';
import { formatLocal } from './format.js';
import { fail } from './output.js';

/** Options of `lockstep open`. */
interface OpenFlags extends ConnectionFlags {
  json?: boolean;
  print?: boolean;
  browser?: boolean;
}

/** The page's address with a sign-in code. */
function signinUrl(apiUrl: string, code: string): string {
  return `${apiUrl}/#signin=${code}`;
}

/**
 * Asks the device of `conn` for a one-time sign-in code for the token's user.
 *
 * @returns the address to open, the user and when the link stops working
 */
export async function signinLink(
  conn: Connection,
): Promise<{ url: string; user: SignInCode['user']; expires: string }> {
  const r = await new ApiClient(conn).call<SignInCode>('POST', '/signin-codes', {});
  return { url: signinUrl(conn.url, r.code), user: r.user, expires: r.expires };
}

/** Whether a browser could show a window here. */
function hasDisplay(env: NodeJS.ProcessEnv): boolean {
  return (env.DISPLAY ?? '') !== '' || (env.WAYLAND_DISPLAY ?? '') !== '';
}

/** Adds the `open` command. */
export function registerOpen(program: Command): void {
  program
    .command('open')
    .description(
      "Print a one-time sign-in address for the device's web page (the last line); it works once, for 10 minutes",
    )
    .option('--print', 'only print the address (the default; never start a browser)')
    .option('--browser', 'also open the address with xdg-open, when there is a display')
    .option('--json', 'print {"url", "user", "expires"} as one JSON document')
    .option('--home <dir>', "reach the device of this home, with its administrator's token")
    .option('--api <url>', "the device's client API, e.g. http://127.0.0.1:7701")
    .option('--token <token>', 'sign in as the user of this token (default: the home)')
    .addHelpText(
      'after',
      '\nThe page signs in as the user whose token asked for the link (the administrator with\n' +
        '--home). Anyone who opens the link first is signed in: send it only to yourself.\n' +
        'Exit codes: 0 done, 1 the request failed, 2 usage error, 3 device unreachable.',
    )
    .action(async (flags: OpenFlags) => {
      try {
        const link = await signinLink(resolveConnection(flags));
        if (flags.json === true) {
          process.stdout.write(`${JSON.stringify(link, null, 2)}\n`);
        } else {
          process.stdout.write(
            `Sign in to the web page as ${link.user.name}: open this address (it works once, ` +
              `until ${formatLocal(link.expires)}):\n${link.url}\n`,
          );
        }
        if (flags.browser === true && flags.print !== true) {
          if (!hasDisplay(process.env)) {
            process.stderr.write('lockstep: no display here: open the address above yourself\n');
          } else {
            const child = spawn('xdg-open', [link.url], { stdio: 'ignore', detached: true });
            child.on('error', () =>
              process.stderr.write('lockstep: could not run xdg-open: open the address yourself\n'),
            );
            child.unref();
          }
        }
      } catch (err) {
        fail(err, { json: flags.json === true });
      }
    });
}

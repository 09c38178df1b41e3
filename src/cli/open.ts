/**
 * `lockstep open`: asks the running device for a one-time sign-in code and
 * prints the web page's address with it (`http://HOST:PORT/#signin=CODE`) on
 * the last line. With `--browser`, also opens it where there is a display:
 * through a private page that sends the browser on (signin-page.ts), so the
 * code is never in the opener's arguments, which every user can read.
 */
import { spawn } from 'node:child_process';
import type { Command } from 'commander';
import type { SignInCode } from '../api/backend.js';
import { errorMessage } from '../base/errors.js';
import {
  ApiClient,
  connectionOptions,
  resolveConnection,
  type Connection,
  type ConnectionFlags,
} from './connect.js';
import { formatLocal } from './format.js';
import { fail } from './output.js';
import { writeSigninPage } from './signin-page.js';

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

/**
 * Opens `url` in a browser: writes the private page that leads there and
 * starts the opener (`$LOCKSTEP_OPENER`, else `xdg-open`) on the page's
 * path. Problems are told on stderr: the address is printed already.
 */
function openInBrowser(url: string, env: NodeJS.ProcessEnv): void {
  const custom = env.LOCKSTEP_OPENER === '' ? undefined : env.LOCKSTEP_OPENER;
  if (custom === undefined && !hasDisplay(env)) {
    process.stderr.write('lockstep: no display here: open the address above yourself\n');
    return;
  }
  const opener = custom ?? 'xdg-open';
  let page: string;
  try {
    page = writeSigninPage(url, env);
  } catch (err) {
    process.stderr.write(`lockstep: ${errorMessage(err)}\n`);
    return;
  }
  const child = spawn(opener, [page], { stdio: 'ignore', detached: true });
  child.on('error', (err) =>
    process.stderr.write(
      `lockstep: could not run ${opener} (${errorMessage(err)}): open the address yourself\n`,
    ),
  );
  child.unref();
}

/** Adds the `open` command. */
export function registerOpen(program: Command): void {
  connectionOptions(
    program
      .command('open')
      .description(
        "Print a one-time sign-in address for the device's web page (the last line); it works once, for 10 minutes",
      )
      .option('--print', 'only print the address (the default; never start a browser)')
      .option(
        '--browser',
        'also open the address in a browser (xdg-open, or the command in $LOCKSTEP_OPENER), ' +
          'when there is a display',
      )
      .option('--json', 'print {"url", "user", "expires"} as one JSON document'),
    "reach the device of this home, with its administrator's token",
    'sign in as the user of this token (default: the home); other users of this machine can ' +
      'read it in the process list: prefer --token-file or $LOCKSTEP_TOKEN',
  )
    .addHelpText(
      'after',
      '\nThe page signs in as the user whose token asked for the link (the administrator with\n' +
        '--home). Anyone who opens the link first is signed in: send it only to yourself.\n' +
        'With --browser the browser is given a page in a private directory (mode 0700, in\n' +
        '$XDG_RUNTIME_DIR/lockstep or ~/.cache/lockstep/signin) that leads to the address,\n' +
        'never the address itself, which other users could read in the process list.\n' +
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
        if (flags.browser === true && flags.print !== true) openInBrowser(link.url, process.env);
      } catch (err) {
        fail(err, { json: flags.json === true });
      }
    });
}

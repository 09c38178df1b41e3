/**
 * `lockstep shell`: an interactive prompt with history that runs every client
 * command without the `lockstep` prefix, and the prototype's words: `server`
 * lists, `server lock N` and `server unlock N` lock and unlock.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Command, CommanderError, Option } from 'commander';
import type { Status, User } from '../api/backend.js';
import { errorMessage, LockstepError } from '../base/errors.js';
import { CLIENT_COMMANDS, registerClientCommands } from './client-commands.js';
import {
  ApiClient,
  connectionOptions,
  resolveConnection,
  type ConnectionFlags,
} from './connect.js';
import { cacheFile } from './listing-cache.js';
import { errorJson, exitCodeOf, fail } from './output.js';
import { splitWords } from './shell-words.js';

/** Lines of history kept between sessions. */
const HISTORY_LINES = 1000;

const HELP = `Commands (as for \`lockstep\`, without the prefix; each takes --help and --json):
  ls [PATH] [--sort name|size|modified] [--reverse]   the merged listing, numbered
  lock <#|PATH> [--ttl 2h] [--reason TEXT]            lock a file (# from the last listing)
  unlock <#|PATH> [--force]                           release a lock
  locks                                               every lock in the cluster
  watch                                               live events until Ctrl-C
  status                                              device, peers, what is left to sync
  whoami                                              who this shell acts as
The prototype's words:
  server                                              = ls
  server lock N, server unlock N                      = lock N, unlock N
  help [COMMAND]                                      this, or a command's options
  exit                                                leave (also Ctrl-D)`;

/**
 * Maps the prototype's words onto commands: `server` is `ls`, `server lock
 * N` is `lock N`, `server unlock N` is `unlock N`; other lines pass unchanged.
 */
export function rewriteServerWords(words: readonly string[]): string[] {
  if (words[0] !== 'server') return [...words];
  const rest = words.slice(1);
  if (rest[0] !== undefined && CLIENT_COMMANDS.includes(rest[0])) return rest;
  return ['ls', ...rest];
}

/** Adds the `shell` command. */
export function registerShell(program: Command): void {
  connectionOptions(
    program
      .command('shell')
      .description(
        'An interactive prompt for the client commands, with history; also understands the ' +
          "prototype's words: server, server lock N, server unlock N",
      ),
    "reach the device of this home, with its administrator's token",
  )
    // `lockstep demo`: Ctrl-C at the prompt leaves the shell (and so stops the demo).
    .addOption(new Option('--ctrl-c-exits').hideHelp())
    .addHelpText('after', `\n${HELP}`)
    .action(async (flags: ConnectionFlags & { ctrlCExits?: boolean }) => {
      try {
        const code = await shell(flags, flags.ctrlCExits === true);
        process.exit(code);
      } catch (err) {
        fail(err);
      }
    });
}

/** Reads the saved history, newest first (as readline wants it). */
function loadHistory(file: string): string[] {
  try {
    return fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .reverse()
      .slice(0, HISTORY_LINES);
  } catch {
    return [];
  }
}

/** Saves the history, oldest first; best effort. */
function saveHistory(file: string, history: readonly string[]): void {
  try {
    fs.mkdirSync(join(file, '..'), { recursive: true, mode: 0o700 });
    const lines = [...history].slice(0, HISTORY_LINES).reverse();
    fs.writeFileSync(file, `${lines.join('\n')}\n`, { mode: 0o600 });
  } catch {
    // history is a convenience
  }
}

/** Runs the prompt until `exit` or end of input; resolves with the exit code. */
async function shell(flags: ConnectionFlags, ctrlCExits = false): Promise<number> {
  const conn = resolveConnection(flags);
  const client = new ApiClient(conn);
  const [status, me] = await Promise.all([
    client.call<Status>('GET', '/status'),
    client.call<User>('GET', '/whoami'),
  ]);
  const historyFile = join(cacheFile(), '..', 'shell-history');
  const terminal = process.stdin.isTTY === true && process.stdout.isTTY === true;
  const rl = createInterface({
    input: process.stdin,
    output: process.stdout,
    terminal,
    history: terminal ? loadHistory(historyFile) : [],
    historySize: HISTORY_LINES,
    removeHistoryDuplicates: true,
    prompt: `lockstep ${status.device.name}> `,
  });
  console.log(
    `Connected to device ${status.device.name} (${status.device.short}) at ${conn.url} as ` +
      `${me.name}. Type help for commands, exit or Ctrl-D to leave.`,
  );

  let running: AbortController | undefined;
  const interrupt = () => {
    if (running !== undefined) {
      running.abort();
      return;
    }
    if (ctrlCExits) {
      process.stdout.write('^C\n');
      rl.close();
      return;
    }
    // At the prompt, Ctrl-C drops the line being typed, as a shell does.
    process.stdout.write('^C\n');
    rl.write(null, { ctrl: true, name: 'u' }); // clears the line and shows the prompt again
  };
  rl.on('SIGINT', interrupt);
  const onSignal = () => interrupt();
  process.on('SIGINT', onSignal);

  let history: string[] = [];
  rl.on('history', (h: string[]) => {
    history = h;
  });

  let left = false;
  try {
    rl.prompt();
    for await (const line of rl) {
      const words = parseLine(line);
      if (words === undefined || words.length === 0) {
        rl.prompt();
        continue;
      }
      const [first] = words;
      if (first === 'exit' || first === 'quit') {
        left = true;
        break;
      }
      if (first === 'help' || first === '?') {
        if (words[1] !== undefined && CLIENT_COMMANDS.includes(words[1])) {
          await runLine([words[1], '--help'], flags, () => new AbortController().signal);
        } else {
          console.log(HELP);
        }
        rl.prompt();
        continue;
      }
      running = new AbortController();
      const ctl = running;
      await runLine(rewriteServerWords(words), flags, () => ctl.signal);
      running = undefined;
      rl.prompt();
    }
    // Ctrl-D: end the prompt's line.
    if (!left && terminal) process.stdout.write('\n');
  } finally {
    process.off('SIGINT', onSignal);
    rl.close();
    if (terminal) saveHistory(historyFile, history);
  }
  return 0;
}

/** Splits a line, printing a bad quote instead of throwing. */
function parseLine(line: string): string[] | undefined {
  try {
    return splitWords(line);
  } catch (err) {
    process.stderr.write(`lockstep: ${errorMessage(err)}\n`);
    return undefined;
  }
}

/** Runs one command line on a fresh command tree (commander keeps state between parses). */
async function runLine(
  words: string[],
  defaults: ConnectionFlags,
  interrupt: () => AbortSignal,
): Promise<void> {
  const program = new Command('lockstep')
    .exitOverride()
    .showHelpAfterError('(type help for commands)')
    .configureOutput({
      writeOut: (s) => process.stdout.write(s),
      writeErr: (s) => process.stderr.write(s),
      outputError: (s, write) => write(`lockstep: ${s.replace(/^error: /, '')}`),
    });
  registerClientCommands(program, {
    defaults,
    interrupt,
    fail: (err, opts) => {
      if (opts.json === true) process.stdout.write(`${JSON.stringify(errorJson(err))}\n`);
      const code = exitCodeOf(err);
      const message =
        err instanceof LockstepError ? errorMessage(err) : `unexpected error: ${errorMessage(err)}`;
      process.stderr.write(`lockstep: ${message}${code === 2 ? ' (type help for usage)' : ''}\n`);
    },
  });
  try {
    await program.parseAsync(words, { from: 'user' });
  } catch (err) {
    // Commander has printed its message (or the help); the shell goes on.
    if (!(err instanceof CommanderError)) throw err;
  }
}

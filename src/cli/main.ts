/**
 * The `lockstep` command line.
 */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

const program = new Command('lockstep')
  .description(
    'Keep one folder identical across several servers, with a merged listing and cluster-wide file locks',
  )
  .version(pkg.version)
  .showHelpAfterError('(run with --help for usage)')
  .configureOutput({
    outputError: (str, write) => write(`lockstep: ${str.replace(/^error: /, '')}`),
  })
  .exitOverride((err) => {
    // Usage errors exit 2 (DESIGN.md); help and version exit 0.
    if (
      err.code === 'commander.helpDisplayed' ||
      err.code === 'commander.version' ||
      err.code === 'commander.help'
    )
      process.exit(0);
    process.exit(2);
  });

// Each command's module is loaded only when that command runs: a client
// command then starts without the daemon's libraries (SQLite, TLS
// certificates, the HTTP server, logging). Help loads them all, in order.
const groups: [names: readonly string[], load: () => Promise<void>][] = [
  [
    ['init', 'id'],
    async () => {
      const m = await import('./init.js');
      m.registerInit(program);
      m.registerId(program);
    },
  ],
  [['serve'], async () => (await import('./serve.js')).registerServe(program)],
  [['peer'], async () => (await import('./peer.js')).registerPeer(program)],
  [['demo'], async () => (await import('./demo.js')).registerDemo(program)],
  [['user'], async () => (await import('./user.js')).registerUser(program)],
  [
    ['ls', 'lock', 'unlock', 'locks', 'watch', 'status', 'whoami'],
    async () => {
      const [{ registerClientCommands }, { fail }] = await Promise.all([
        import('./client-commands.js'),
        import('./output.js'),
      ]);
      registerClientCommands(program, {
        fail,
        interrupt: () => {
          const ctl = new AbortController();
          const stop = () => ctl.abort();
          process.once('SIGINT', stop);
          process.once('SIGTERM', stop);
          return ctl.signal;
        },
      });
    },
  ],
  [['shell'], async () => (await import('./shell.js')).registerShell(program)],
  [['open'], async () => (await import('./open.js')).registerOpen(program)],
  [['service'], async () => (await import('./service.js')).registerService(program)],
];
const name = process.argv.slice(2).find((a) => !a.startsWith('-'));
const wanted = groups.find(([names]) => name !== undefined && names.includes(name));
if (wanted) await wanted[1]();
else for (const [, load] of groups) await load();

await program.parseAsync(process.argv);

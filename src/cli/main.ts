/**
 * The `lockstep` command line.
 */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { registerId, registerInit } from './init.js';
import { registerServe } from './serve.js';
import { registerDemo } from './demo.js';
import { registerPeer } from './peer.js';
import { registerClientCommands } from './client-commands.js';
import { fail } from './output.js';
import { registerShell } from './shell.js';
import { registerUser } from './user.js';

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

registerInit(program);
registerId(program);
registerServe(program);
registerPeer(program);
registerDemo(program);
registerUser(program);
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
registerShell(program);

await program.parseAsync(process.argv);

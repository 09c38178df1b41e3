/**
 * The `lockstep` command line.
 */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { registerId, registerInit } from './init.js';
import { registerServe } from './serve.js';
import { registerDemo } from './demo.js';
import { registerPeer } from './peer.js';

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

await program.parseAsync(process.argv);

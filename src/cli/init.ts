/**
 * `lockstep init` (create a device's home) and `lockstep id` (print its
 * device ID). Both print the device ID alone on their last line, for scripts.
 */
import { adminNameOf } from '../core/user-table.js';
import type { Command } from 'commander';
import { etcdFromFlag, loadConfig, parseHostPort, saveConfig } from '../config/config.js';
import { homePaths, initHome, readIdentity, resolveHome } from '../config/home.js';
import { LockstepError } from '../base/errors.js';
import { fail } from './output.js';

const HOME_HELP = 'the device home (default: $LOCKSTEP_HOME, else ~/.config/lockstep)';

/** Options of `lockstep init`, as commander parses them. */
interface InitFlags {
  home?: string;
  folder: string;
  name: string;
  peerListen?: string;
  apiListen?: string;
  lockAuthority?: string;
  lockEtcd?: string;
  lockEtcdPrefix?: string;
}

/** Adds the `init` command. */
export function registerInit(program: Command): void {
  program
    .command('init')
    .description(
      'Set up this device: create its home (key, certificate, token, configuration) and its folder, ' +
        'and print its device ID on the last line',
    )
    .requiredOption(
      '--folder <dir>',
      'the folder to keep identical across devices (created if missing)',
    )
    .requiredOption('--name <name>', 'a human name for this device, e.g. "A" (1 to 64 characters)')
    .option('--home <dir>', `${HOME_HELP}; must not already be a home`)
    .option('--peer-listen <host:port>', 'where other devices connect (default: 0.0.0.0:7700)')
    .option(
      '--api-listen <host:port>',
      'where clients and the web page connect (default: 127.0.0.1:7701)',
    )
    .option(
      '--lock-authority <device-id>',
      'the device that grants locks ("self": this one); default: the choice of the cluster ' +
        'this device joins, learned when it first meets a peer (in a new cluster, the device ' +
        'with the smallest ID records itself at the first lock)',
    )
    .option(
      '--lock-etcd <urls>',
      "keep the lock table in etcd: its members' client URLs, comma-separated (e.g. http://10.0.0.1:2379,http://10.0.0.2:2379,http://10.0.0.3:2379); TLS is set in config.json",
    )
    .option(
      '--lock-etcd-prefix <prefix>',
      'with --lock-etcd: where the keys go, the same on every device of the cluster (default /lockstep/)',
    )
    .addHelpText(
      'after',
      '\nExample:\n  lockstep init --home /srv/lockstep --folder /srv/shared --name A\n\n' +
        'Then give the printed device ID to the other devices: lockstep peer add ID HOST:PORT',
    )
    .action(async (flags: InitFlags) => {
      try {
        await init(flags);
      } catch (err) {
        fail(err);
      }
    });
}

/** Adds the `id` command. */
export function registerId(program: Command): void {
  program
    .command('id')
    .description("Print this device's ID (from its certificate), to give to the other devices")
    .option('--home <dir>', HOME_HELP)
    .action((flags: { home?: string }) => {
      try {
        process.stdout.write(`${readIdentity(resolveHome(flags.home)).deviceId}\n`);
      } catch (err) {
        fail(err);
      }
    });
}

async function init(flags: InitFlags): Promise<void> {
  const home = resolveHome(flags.home);
  if (flags.peerListen !== undefined) parseHostPort(flags.peerListen, '--peer-listen');
  if (flags.apiListen !== undefined) parseHostPort(flags.apiListen, '--api-listen');
  if (flags.lockEtcd !== undefined && flags.lockAuthority !== undefined) {
    throw new LockstepError(
      'USAGE',
      'give --lock-authority (a device grants locks) or --lock-etcd (etcd does), not both',
    );
  }
  if (flags.lockEtcdPrefix !== undefined && flags.lockEtcd === undefined) {
    throw new LockstepError('USAGE', '--lock-etcd-prefix needs --lock-etcd');
  }
  const etcd =
    flags.lockEtcd === undefined ? undefined : etcdFromFlag(flags.lockEtcd, flags.lockEtcdPrefix);
  const { deviceId } = await initHome({
    home,
    folder: flags.folder,
    name: flags.name,
    peerListen: flags.peerListen,
    apiListen: flags.apiListen,
    lockAuthority: flags.lockAuthority,
  });
  if (etcd) saveConfig(home, { ...loadConfig(home), lockAuthority: etcd });
  const config = loadConfig(home);
  const paths = homePaths(home);
  process.stdout.write(
    [
      `Created the Lockstep home ${paths.home}`,
      `  folder       ${config.folder}`,
      `  name         ${config.name}`,
      `  peer listen  ${config.peerListen}`,
      `  api listen   ${config.apiListen}`,
      `  locks        ${etcd ? `in etcd at ${etcd.endpoints.join(', ')}, prefix ${etcd.prefix}` : config.lockAuthority === undefined ? "granted by the cluster's lock authority (learned from the first peer met)" : config.lockAuthority.kind === 'device' && config.lockAuthority.device === deviceId ? 'granted by this device' : `granted by device ${config.lockAuthority.kind === 'device' ? config.lockAuthority.device : ''}`}`,
      `  admin        ${adminNameOf(deviceId)} (this device's administrator; its token is ${paths.token})`,
      `Start the device with: lockstep serve --home ${paths.home}`,
      'Device ID (add it on the other devices with `lockstep peer add`):',
      deviceId,
      '',
    ].join('\n'),
  );
}

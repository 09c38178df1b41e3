/**
 * `lockstep peer add`: records a peer in this device's configuration. A
 * running device picks the change up by itself.
 */
import type { Command } from 'commander';
import { LockstepError } from '../base/errors.js';
import { loadConfig, parseHostPort, saveConfig } from '../config/config.js';
import { readIdentity, resolveHome } from '../config/home.js';
import { parseDeviceId, shortId } from '../core/device-id.js';
import { fail } from './output.js';

/** Adds the `peer` command group. */
export function registerPeer(program: Command): void {
  const peer = program.command('peer').description('Manage the devices this device syncs with');
  peer
    .command('add')
    .description(
      'Record a peer by device ID and address (do this on both devices); a running device connects at once',
    )
    .argument('<device-id>', "the peer's device ID, as `lockstep id` prints it there")
    .argument('<host:port>', 'where the peer listens for other devices (its --peer-listen)')
    .option('--name <name>', 'a human name for the peer, e.g. "B"')
    .option('--home <dir>', 'the device home (default: $LOCKSTEP_HOME, else ~/.config/lockstep)')
    .action((id: string, address: string, opts: { home?: string; name?: string }) => {
      try {
        const home = resolveHome(opts.home);
        let canonical: string;
        try {
          canonical = parseDeviceId(id);
        } catch (err) {
          throw new LockstepError('USAGE', `Invalid device ID "${id}": ${(err as Error).message}`);
        }
        parseHostPort(address, 'peer address');
        const config = loadConfig(home);
        if (canonical === readIdentity(home).deviceId) {
          throw new LockstepError(
            'USAGE',
            "That is this device's own ID; give the other device's ID",
          );
        }
        const entry = { id: canonical, address, ...(opts.name ? { name: opts.name } : {}) };
        const i = config.peers.findIndex((p) => p.id === canonical);
        const peers = [...config.peers];
        if (i >= 0) peers[i] = entry;
        else peers.push(entry);
        saveConfig(home, { ...config, peers });
        const short = shortId(canonical);
        const label = opts.name ? `${opts.name} (${short})` : short;
        console.log(`${i >= 0 ? 'updated' : 'added'} peer ${label} at ${address}`);
      } catch (err) {
        fail(err);
      }
    });
}

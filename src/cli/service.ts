/**
 * `lockstep service`: prints a systemd unit that runs this home's device as
 * a service, confined the way a file server's administrator would want:
 * a dedicated user by default, the whole filesystem read-only but for the
 * home and the folder, no new privileges, a private /tmp, enough file
 * descriptors for many peers and clients (see docs/security.md).
 */
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { LockstepError } from '../base/errors.js';
import { loadConfig } from '../config/config.js';
import { resolveHome } from '../config/home.js';
import { fail } from './output.js';

/** What the unit is made from. */
export interface UnitSpec {
  readonly name: string;
  readonly home: string;
  readonly folder: string;
  /** The account the device runs as. */
  readonly user: string;
  /** The Node.js executable and the `lockstep` script it runs. */
  readonly node: string;
  readonly script: string;
}

/** A path as systemd reads it in a command line or a path list (quoted; `%` and `\` escaped). */
function unitPath(p: string): string {
  if (/[\n"]/.test(p)) {
    throw new LockstepError('USAGE', `The path ${JSON.stringify(p)} cannot be written in a unit`);
  }
  return `"${p.replace(/\\/g, '\\\\').replace(/%/g, '%%')}"`;
}

/** The unit file's text for `spec`. */
export function serviceUnit(spec: UnitSpec): string {
  const asRoot = spec.user === 'root';
  return [
    '# Written by `lockstep service`. Install it as',
    `#   /etc/systemd/system/lockstep-${unitName(spec.name)}.service`,
    '# then: systemctl daemon-reload && systemctl enable --now lockstep-' +
      `${unitName(spec.name)}`,
    ...(asRoot
      ? [
          '# It runs the device as root (--user root): Lockstep never follows a link',
          '# out of the folder, but a dedicated user is the safer choice.',
        ]
      : [
          `# It runs the device as the user ${spec.user}, who must own the home and the`,
          '# folder; make one with:',
          `#   useradd --system --no-create-home --shell /usr/sbin/nologin ${spec.user}`,
          `#   chown -R ${spec.user}: ${spec.home} ${spec.folder}`,
        ]),
    '',
    '[Unit]',
    `Description=Lockstep device ${spec.name} (folder ${spec.folder})`,
    'After=network-online.target',
    'Wants=network-online.target',
    '',
    '[Service]',
    'Type=simple',
    `User=${spec.user}`,
    `ExecStart=${unitPath(spec.node)} ${unitPath(spec.script)} serve --home ${unitPath(spec.home)}`,
    'Restart=on-failure',
    'RestartSec=5',
    'KillSignal=SIGTERM',
    'TimeoutStopSec=30',
    'UMask=0077',
    'LimitNOFILE=65536',
    'NoNewPrivileges=yes',
    'ProtectSystem=strict',
    'ProtectHome=read-only',
    `ReadWritePaths=${unitPath(spec.home)} ${unitPath(spec.folder)}`,
    'PrivateTmp=yes',
    'PrivateDevices=yes',
    'ProtectKernelTunables=yes',
    'ProtectKernelModules=yes',
    'ProtectKernelLogs=yes',
    'ProtectControlGroups=yes',
    'ProtectClock=yes',
    'ProtectHostname=yes',
    'RestrictSUIDSGID=yes',
    'RestrictRealtime=yes',
    'RestrictNamespaces=yes',
    'LockPersonality=yes',
    'SystemCallArchitectures=native',
    'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}

/** The device name as part of a unit name (letters, digits, `-`, `_`, `.`). */
function unitName(name: string): string {
  return name.replace(/[^A-Za-z0-9_.-]/g, '-');
}

/** Adds `lockstep service`. */
export function registerService(program: Command): void {
  program
    .command('service')
    .description('Print a systemd unit that runs this device as a service')
    .option('--home <dir>', 'the device home (default: $LOCKSTEP_HOME, else ~/.config/lockstep)')
    .option('--user <name>', 'the account the device runs as', 'lockstep')
    .addHelpText(
      'after',
      '\nThe unit runs `lockstep serve --home DIR` with this Node.js and this installation,\n' +
        'as a dedicated user by default, with the filesystem read-only except the home and\n' +
        'the folder (ProtectSystem=strict, ReadWritePaths), no new privileges, a private\n' +
        '/tmp and LimitNOFILE=65536. Save it under /etc/systemd/system/ and enable it;\n' +
        'docs/security.md says what each setting is for.',
    )
    .action((flags: { home?: string; user: string }) => {
      try {
        if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(flags.user)) {
          throw new LockstepError('USAGE', `Invalid user name for --user: ${flags.user}`);
        }
        const home = resolveHome(flags.home);
        const config = loadConfig(home);
        process.stdout.write(
          serviceUnit({
            name: config.name,
            home,
            folder: config.folder,
            user: flags.user,
            node: process.execPath,
            script: fileURLToPath(new URL('../../bin/lockstep.js', import.meta.url)),
          }),
        );
      } catch (err) {
        fail(err);
      }
    });
}

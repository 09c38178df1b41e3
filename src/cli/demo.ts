/**
 * `lockstep demo`: two devices, A and B, on this machine, with sample files,
 * each a real `lockstep serve` process. Ctrl-C stops both and says where the
 * folders are.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { LockstepError, errorMessage } from '../base/errors.js';
import { loadConfig, saveConfig } from '../config/config.js';
import { readToken } from '../config/home.js';
import { homeApiUrl } from './connect.js';
import { LocalCluster, LOCKSTEP_BIN as BIN } from './local-cluster.js';
import { LocalEtcd } from './local-etcd.js';
import { signinLink } from './open.js';
import { fail } from './output.js';

/** Adds the `demo` command. */
export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description(
      'Start devices A and B on this machine with sample files, peered and syncing, and open a shell on A; Ctrl-C stops everything',
    )
    .option('--dir <dir>', 'where to create the devices (default: a new temporary directory)')
    .option(
      '--etcd',
      "also start a three-member etcd on 127.0.0.1 (Debian's etcd-server) and keep the devices' locks in it",
    )
    .action(async (opts: { dir?: string; etcd?: boolean }) => {
      try {
        await demo(opts.dir ?? mkdtempSync(join(tmpdir(), 'lockstep-demo-')), opts.etcd ?? false);
      } catch (err) {
        fail(err);
      }
    });
}

/** Writes sample files of several kinds and sizes. */
function samples(folder: string, device: string): void {
  mkdirSync(join(folder, 'designs'), { recursive: true });
  mkdirSync(join(folder, 'docs', 'drafts'), { recursive: true });
  writeFileSync(join(folder, `notes-${device}.txt`), `Notes kept on device ${device}.\n`);
  writeFileSync(
    join(folder, 'docs', 'README.md'),
    '# Shared documents\n\nEdit me on either device.\n',
  );
  writeFileSync(
    join(folder, 'docs', 'drafts', `plan-${device}.md`),
    `Draft plan from ${device}.\n`.repeat(40),
  );
  writeFileSync(join(folder, 'designs', `logo-${device}.bin`), randomBytes(45 * 1024 + 512));
  writeFileSync(join(folder, 'designs', `poster-${device}.bin`), randomBytes(8 * 1024 * 1024));
}

async function demo(dir: string, withEtcd: boolean): Promise<void> {
  const interactive = process.stdin.isTTY && process.stdout.isTTY;
  const etcd = withEtcd ? await startEtcd(join(dir, 'etcd'), interactive) : undefined;
  try {
    await run(dir, etcd, interactive);
  } finally {
    await etcd?.stopAll('SIGTERM');
  }
}

/** A three-member etcd in `dir`, on free ports, healthy; stopped (by PID) if it cannot start. */
async function startEtcd(dir: string, detached: boolean): Promise<LocalEtcd> {
  const etcd = await LocalEtcd.create(dir, 3);
  etcd.detached = detached;
  try {
    await etcd.startAll();
  } catch (err) {
    await etcd.stopAll();
    throw new LockstepError(
      'USAGE',
      `Could not start etcd for the demo (${errorMessage(err)}); install Debian's etcd-server package (or set LOCKSTEP_ETCD to an etcd binary)`,
      { cause: err },
    );
  }
  console.log(`etcd: three members, client URLs ${etcd.endpoints.join(', ')} (data in ${dir})`);
  return etcd;
}

async function run(dir: string, etcd: LocalEtcd | undefined, interactive: boolean): Promise<void> {
  const devices = [
    { name: 'A', peer: 22701, api: 22702 },
    { name: 'B', peer: 22711, api: 22712 },
  ];
  const cluster = new LocalCluster();
  for (const d of devices) {
    const home = join(dir, d.name, 'home');
    const folder = join(dir, d.name, 'folder');
    const device = await cluster.add({
      name: d.name,
      home,
      folder,
      peerPort: d.peer,
      apiPort: d.api,
    });
    samples(folder, d.name);
    if (etcd) {
      const lockAuthority = {
        kind: 'etcd',
        endpoints: etcd.endpoints,
        prefix: '/lockstep/demo/',
      } as const;
      saveConfig(home, { ...loadConfig(home), lockAuthority });
    }
    console.log(`Device ${d.name}: ${device.id}\n  folder ${folder}\n  home   ${home}`);
  }
  // Peer every device with every other, as `lockstep peer add` does.
  await cluster.mesh();
  const made = cluster.devices;
  // With a terminal, the shell takes it and the devices log to their homes;
  // without one, the devices' logs stream here until SIGINT or SIGTERM.
  const ready = made.map((d) =>
    d
      .start({
        stderr: 'inherit',
        // Its own process group: Ctrl-C in the shell (to stop `watch`) must not stop the devices.
        detached: interactive,
        env: { ...process.env, LOCKSTEP_LOG_LEVEL: process.env.LOCKSTEP_LOG_LEVEL ?? 'info' },
        keepLines: 50,
        ...(interactive ? {} : { onLine: (line) => console.log(`[${d.name}] ${summarize(line)}`) }),
        // Up, or gone (its error is on this terminal): the demo goes on either way.
        timeoutMs: Infinity,
      })
      .catch(() => undefined),
  );
  await Promise.all(ready);
  const a = made[0] as { home: string };
  // A one-time sign-in link to each device's web page.
  const links = await Promise.all(
    made.map(async ({ name, home }) => {
      try {
        const conn = { url: homeApiUrl(home), token: readToken(home), home };
        return `  ${name}: ${(await signinLink(conn)).url}`;
      } catch {
        return `  ${name}: not answering yet; try \`node ${BIN} open --home ${home}\``;
      }
    }),
  );
  console.log(
    [
      '',
      ...(etcd
        ? [
            `Their locks are kept in etcd (${etcd.endpoints.join(', ')}, prefix /lockstep/demo/): stop a member`,
            `(kill ${etcd.members.map((m) => m.child?.pid).join(' or ')}) and locking goes on; stop two and it fails within 2 s.`,
          ]
        : []),
      'A and B are peered on 127.0.0.1 and keep their folders identical. In a second terminal, add,',
      `edit, rename or delete files in ${join(dir, 'A', 'folder')} or ${join(dir, 'B', 'folder')},`,
      'and use the client against either device:',
      `  node ${BIN} ls --home ${a.home}`,
      `  node ${BIN} watch --home ${join(dir, 'B', 'home')}`,
      'The web page of each device (live listing, locks, devices); each link signs in once, for',
      `10 minutes (\`node ${BIN} open --home ${a.home}\` prints a new one):`,
      ...links,
      interactive
        ? `Device logs: ${join(dir, 'A', 'home', 'logs')} and B's likewise.\n\nThis is a shell on device A: try \`server\`, \`server lock 3\`, \`locks\`, \`help\`. Ctrl-C, Ctrl-D or \`exit\` stops everything.`
        : 'Press Ctrl-C to stop.',
      '',
    ].join('\n'),
  );
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    void cluster.stopAll('SIGTERM');
  };
  process.on('SIGTERM', stop);
  if (interactive) {
    // Ctrl-C belongs to the shell while it runs; leaving the shell stops all.
    process.on('SIGINT', () => undefined);
    const shell = spawn(process.execPath, [BIN, 'shell', '--home', a.home, '--ctrl-c-exits'], {
      stdio: 'inherit',
    });
    await new Promise((resolve) => shell.on('exit', resolve));
    stop();
  } else {
    process.on('SIGINT', stop);
  }
  const codes = await Promise.all(
    made.map(async (d) => (d.served ? (await d.served.exited).code : null)),
  );
  await etcd?.stopAll('SIGTERM');
  console.log(`\nStopped (exit codes ${codes.join(', ')}). The folders are kept in ${dir}`);
  process.exit(codes.every((c) => c === 0) ? 0 : 1);
}

/** Turns a JSON log line into a short human line; other lines pass through. */
function summarize(line: string): string {
  try {
    const o = JSON.parse(line) as { time?: string; level?: number; msg?: string };
    const time = o.time ? new Date(o.time).toLocaleTimeString() : '';
    const level = (o.level ?? 30) >= 50 ? 'ERROR ' : (o.level ?? 30) >= 40 ? 'warn  ' : '';
    return `${time}  ${level}${o.msg ?? line}`;
  } catch {
    return line;
  }
}

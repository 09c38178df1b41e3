/**
 * Syncthing as a {@link SyncRunner}: two instances (`syncthing serve
 * --no-restart`, one process each) with their own homes, keys made by
 * `syncthing generate`, and a config.xml written here: each knows the other
 * at a static address through the counting proxy; discovery, relays, NAT
 * traversal, STUN, usage and crash reporting off; the folder's watcher delay
 * 1 s (its lowest) and its rescan interval a day. The REST API on 127.0.0.1
 * tells when a side has scanned its folder; the harness decides when B
 * matches A.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Proc, run, which } from './procs.js';
import { freePort, type Side, type SyncEnv, type SyncRunner } from './runner.js';

const FOLDER_ID = 'lockstep-bench';

/** What one instance's config.xml says. */
export interface SyncthingConfig {
  /** The `version` attribute the installed Syncthing writes. */
  readonly version: number;
  readonly self: { readonly id: string; readonly name: string };
  readonly peer: { readonly id: string; readonly name: string; readonly address: string };
  readonly folder: string;
  readonly listen: string;
  readonly gui: string;
  readonly apiKey: string;
}

function xml(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

/** The config.xml of one instance. */
export function syncthingConfigXml(c: SyncthingConfig): string {
  const dev = (id: string, name: string, address: string) =>
    [
      `    <device id="${xml(id)}" name="${xml(name)}" compression="metadata" introducer="false" skipIntroductionRemovals="false" introducedBy="">`,
      `        <address>${xml(address)}</address>`,
      '        <paused>false</paused>',
      '        <autoAcceptFolders>false</autoAcceptFolders>',
      '    </device>',
    ].join('\n');
  return [
    `<configuration version="${c.version}">`,
    `    <folder id="${FOLDER_ID}" label="bench" path="${xml(c.folder)}" type="sendreceive" rescanIntervalS="86400" fsWatcherEnabled="true" fsWatcherDelayS="1" ignorePerms="false" autoNormalize="true">`,
    '        <filesystemType>basic</filesystemType>',
    `        <device id="${xml(c.self.id)}" introducedBy=""></device>`,
    `        <device id="${xml(c.peer.id)}" introducedBy=""></device>`,
    '        <minDiskFree unit="%">1</minDiskFree>',
    '        <markerName>.stfolder</markerName>',
    '    </folder>',
    dev(c.self.id, c.self.name, 'dynamic'),
    dev(c.peer.id, c.peer.name, c.peer.address),
    '    <gui enabled="true" tls="false" debugging="false">',
    `        <address>${xml(c.gui)}</address>`,
    `        <apikey>${xml(c.apiKey)}</apikey>`,
    '        <theme>default</theme>',
    '    </gui>',
    '    <options>',
    `        <listenAddress>${xml(c.listen)}</listenAddress>`,
    '        <globalAnnounceEnabled>false</globalAnnounceEnabled>',
    '        <localAnnounceEnabled>false</localAnnounceEnabled>',
    '        <relaysEnabled>false</relaysEnabled>',
    '        <natEnabled>false</natEnabled>',
    '        <urAccepted>-1</urAccepted>',
    '        <urSeen>3</urSeen>',
    '        <crashReportingEnabled>false</crashReportingEnabled>',
    '        <autoUpgradeIntervalH>0</autoUpgradeIntervalH>',
    '        <startBrowser>false</startBrowser>',
    '        <setLowPriority>false</setLowPriority>',
    '        <stunKeepaliveStartS>0</stunKeepaliveStartS>',
    '        <announceLANAddresses>false</announceLANAddresses>',
    '    </options>',
    '</configuration>',
    '',
  ].join('\n');
}

/** The device ID `syncthing generate` printed. */
export function parseDeviceId(output: string): string {
  const m = /Device ID:\s*([A-Z0-9]{7}(?:-[A-Z0-9]{7}){7})/.exec(output);
  if (!m?.[1]) throw new Error(`no device ID in syncthing generate's output:\n${output}`);
  return m[1];
}

/** The config version in a generated config.xml. */
export function parseConfigVersion(configXml: string): number {
  const m = /<configuration version="(\d+)"/.exec(configXml);
  if (!m?.[1]) throw new Error('no configuration version in the generated config.xml');
  return Number(m[1]);
}

/** Whether `rel` is Syncthing's own: its folder marker and ignore file. */
export function syncthingOwn(rel: string): boolean {
  const top = rel.split('/')[0];
  return top === '.stfolder' || top === '.stignore' || top === '.stversions';
}

/** Whether `rel`'s last name is Syncthing's temp file (`.syncthing.NAME.tmp`). */
export function syncthingPartial(rel: string): boolean {
  const name = rel.slice(rel.lastIndexOf('/') + 1);
  return name.startsWith('.syncthing.') && name.endsWith('.tmp');
}

interface Instance {
  readonly home: string;
  readonly gui: string;
  readonly apiKey: string;
}

/** Two Syncthing instances. */
export class SyncthingRunner implements SyncRunner {
  readonly name = 'Syncthing';
  readonly mtimeToleranceNs = 1_000_000n;
  private inst: Record<Side, Instance> | undefined;
  private readonly procs = new Map<Side, Proc>();

  static available(): string | undefined {
    return which('syncthing') === undefined ? 'syncthing is not installed' : undefined;
  }

  own(rel: string): boolean {
    return syncthingOwn(rel);
  }

  partial(rel: string): boolean {
    return syncthingPartial(rel);
  }

  private env(side: Side): NodeJS.ProcessEnv {
    const home = this.inst?.[side].home ?? '.';
    return {
      ...process.env,
      HOME: home,
      STNORESTART: '1',
      STNOUPGRADE: '1',
      STNODEFAULTFOLDER: '1',
    };
  }

  async setup(dirA: string, dirB: string, env: SyncEnv): Promise<void> {
    const folders = { A: dirA, B: dirB };
    const ids = {} as Record<Side, string>;
    const inst = {} as Record<Side, Instance>;
    let version = 0;
    for (const side of ['A', 'B'] as const) {
      const home = join(env.work, `syncthing-${side}`);
      const out = run(
        'syncthing',
        ['generate', `--home=${home}`, '--no-default-folder', '--skip-port-probing'],
        { ...process.env, HOME: home },
      );
      ids[side] = parseDeviceId(out);
      version = parseConfigVersion(readFileSync(join(home, 'config.xml'), 'utf8'));
      inst[side] = {
        home,
        gui: `127.0.0.1:${await freePort()}`,
        apiKey: randomBytes(16).toString('hex'),
      };
      // The folder marker, as Syncthing makes it when a folder is added.
      mkdirSync(join(folders[side], '.stfolder'), { recursive: true });
    }
    for (const side of ['A', 'B'] as const) {
      const other: Side = side === 'A' ? 'B' : 'A';
      writeFileSync(
        join(inst[side].home, 'config.xml'),
        syncthingConfigXml({
          version,
          self: { id: ids[side], name: side },
          peer: { id: ids[other], name: other, address: `tcp://127.0.0.1:${env.net.reach[other]}` },
          folder: folders[side],
          listen: `tcp://127.0.0.1:${env.net.listen[side]}`,
          gui: inst[side].gui,
          apiKey: inst[side].apiKey,
        }),
      );
    }
    this.inst = inst;
  }

  private async rest<T>(side: Side, path: string): Promise<T> {
    const i = this.inst?.[side];
    if (i === undefined) throw new Error('rest before setup');
    const res = await fetch(`http://${i.gui}${path}`, { headers: { 'X-API-Key': i.apiKey } });
    if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
    return (await res.json()) as T;
  }

  /** Resolves once `side` has finished a scan of the folder and is idle (60 s at most). */
  private async scanned(side: Side, p: Proc): Promise<void> {
    const until = Date.now() + 60_000;
    for (;;) {
      if (!p.running) throw new Error(`syncthing ${side} exited:\n${p.tail.text()}`);
      try {
        const stats = await this.rest<Record<string, { lastScan?: string }>>(
          side,
          '/rest/stats/folder',
        );
        const last = Date.parse(stats[FOLDER_ID]?.lastScan ?? '');
        if (Number.isFinite(last) && last > 0) {
          const st = await this.rest<{ state?: string }>(
            side,
            `/rest/db/status?folder=${FOLDER_ID}`,
          );
          if (st.state === 'idle') return;
        }
      } catch {
        // not up yet
      }
      if (Date.now() > until) {
        throw new Error(`syncthing ${side} did not scan its folder within 60 s:\n${p.tail.text()}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async start(side?: Side): Promise<void> {
    if (side === undefined) {
      await Promise.all([this.start('A'), this.start('B')]);
      return;
    }
    const i = this.inst?.[side];
    if (i === undefined) throw new Error('start before setup');
    const p = Proc.start(
      'syncthing',
      ['serve', `--home=${i.home}`, '--no-browser', '--no-restart', '--no-upgrade', '--logflags=0'],
      { env: this.env(side) },
    );
    this.procs.set(side, p);
    await this.scanned(side, p);
  }

  async waitSynced(): Promise<void> {
    for (const [side, p] of this.procs) {
      if (!p.running) throw new Error(`syncthing ${side} exited:\n${p.tail.text()}`);
    }
  }

  async stop(): Promise<void> {
    await Promise.all([...this.procs.values()].map((p) => p.stop()));
    this.procs.clear();
  }

  pids(): Partial<Record<Side, number>> {
    const out: Partial<Record<Side, number>> = {};
    for (const [side, p] of this.procs) if (p.running && p.pid !== undefined) out[side] = p.pid;
    return out;
  }
}

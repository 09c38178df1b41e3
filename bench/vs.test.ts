import { describe, expect, it } from 'vitest';
import { parseBenchArgs } from './args.js';
import { lsyncdConf, luaString } from './lsyncd-runner.js';
import { descendants, parseStat } from './procs.js';
import { rsyncClientArgs, rsyncdConf, rsyncPartial, rsyncStatsNote } from './rsync-runner.js';
import { mbOr, scaleMix, scanLogged } from './scale.js';
import type { SyncRun } from './sync-report.js';
import {
  parseConfigVersion,
  parseDeviceId,
  syncthingConfigXml,
  syncthingOwn,
  syncthingPartial,
} from './syncthing-runner.js';
import { unisonClientArgs, unisonPartial } from './unison-runner.js';
import { chooseTools, type ToolDef } from './vs.js';
import { keptNotes, NOTES_MARK, renderBenchmarksMd } from './vs-docs.js';
import {
  goals,
  ratio,
  rotation,
  spreadOf,
  summarize,
  vsTable,
  type VsReport,
} from './vs-report.js';

const run = (seconds: number, extra: Partial<SyncRun> = {}): SyncRun => ({
  seconds,
  wire: { aToB: seconds * 1000, bToA: 10, total: seconds * 1000 + 10 },
  usage: { A: { peakRssMb: 50, cpuS: 1 }, B: { peakRssMb: 80 + seconds, cpuS: 2 } },
  ...extra,
});

function report(): VsReport {
  const data = { files: 1, bytes: 1, description: 'd' };
  return {
    startedAt: '2026-01-01T00:00:00Z',
    finishedAt: '2026-01-01T00:10:00Z',
    machine: { cores: 2, cpu: 'cpu', memoryGiB: 4, kernel: 'Linux x', disk: 'd', node: 'v20' },
    load: { start: [3, 2, 1], end: [0.1, 0.1, 0.1] },
    runs: 3,
    scale: 1,
    tools: [
      { name: 'Lockstep', version: '1' },
      { name: 'rsync', version: '2' },
      { name: 'Unison', skipped: 'not installed' },
    ],
    scenarios: [
      {
        id: 'S1',
        title: 'bulk',
        data,
        payloadBytes: 1,
        byTool: {
          Lockstep: [run(3), run(2), run(4)],
          rsync: [run(2), run(2), run(1, { error: 'x' })],
        },
        notApplicable: {},
      },
      {
        id: 'S4',
        title: 'latency',
        data,
        payloadBytes: 1,
        byTool: { Lockstep: [run(0.01, { samplesMs: [5, 10, 15, 60] })] },
        notApplicable: { rsync: 'one-shot' },
      },
    ],
    method: ['m'],
  };
}

describe('bench arguments', () => {
  it('reads --vs, --vs=…, --json, --write-docs and --docs-from', () => {
    expect(parseBenchArgs([])).toEqual({ json: false, writeDocs: false, profile: false });
    expect(parseBenchArgs(['--vs'])).toEqual({
      vs: [],
      json: false,
      writeDocs: false,
      profile: false,
    });
    expect(parseBenchArgs(['--profile']).profile).toBe(true);
    expect(parseBenchArgs(['--vs=rsync, syncthing', '--json', '--write-docs'])).toEqual({
      vs: ['rsync', 'syncthing'],
      json: true,
      writeDocs: true,
      profile: false,
    });
    expect(parseBenchArgs(['--docs-from=x.json']).docsFrom).toBe('x.json');
    expect(() => parseBenchArgs(['--fast'])).toThrow(/unknown argument/);
    expect(() => parseBenchArgs(['--write-docs'])).toThrow(/needs --vs/);
  });

  it('chooses Lockstep and the named tools, refusing unknown names', () => {
    const t = (name: string): ToolDef => ({
      name,
      missing: () => undefined,
      version: () => '',
      runner: () => 'n/a',
    });
    const all = [t('Lockstep'), t('rsync'), t('Unison'), t('Syncthing')];
    expect(chooseTools(undefined, all).map((x) => x.name)).toEqual([
      'Lockstep',
      'rsync',
      'Unison',
      'Syncthing',
    ]);
    expect(chooseTools(['syncthing', 'RSYNC'], all).map((x) => x.name)).toEqual([
      'Lockstep',
      'rsync',
      'Syncthing',
    ]);
    expect(() => chooseTools(['scp'], all)).toThrow(/unknown tool scp/);
  });
});

describe('alternation and aggregation', () => {
  it('rotates the tool order by one per run', () => {
    expect(rotation(['a', 'b', 'c'], 0)).toEqual(['a', 'b', 'c']);
    expect(rotation(['a', 'b', 'c'], 1)).toEqual(['b', 'c', 'a']);
    expect(rotation(['a', 'b', 'c'], 4)).toEqual(['b', 'c', 'a']);
    expect(rotation([], 2)).toEqual([]);
  });

  it('takes medians with min and max, leaving out failed runs', () => {
    expect(spreadOf([3, 1, 2])).toEqual({ median: 2, min: 1, max: 3, n: 3 });
    expect(spreadOf([]).n).toBe(0);
    const s = summarize([run(3), run(1), run(2, { error: 'timeout' })]);
    expect(s.failed).toBe(1);
    expect(s.seconds).toEqual({ median: 1, min: 1, max: 3, n: 2 });
    expect(s.rssMb.B.max).toBe(83);
    expect(ratio(3, 2)).toBe(1.5);
    expect(ratio(3, 0)).toBeNaN();
    expect(ratio(Number.NaN, 2)).toBeNaN();
  });

  it('judges the goals against rsync and the fixed limits', () => {
    const g = goals(report());
    const s1 = g.find((x) => x.goal.startsWith('S1 time'));
    expect(s1?.met).toBe(false);
    expect(s1?.measured).toMatch(/^1\.50× rsync/);
    expect(s1?.by).toMatch(/50%/);
    expect(g.find((x) => x.goal.startsWith('S4 latency p50'))?.met).toBe(true);
    const p90 = g.find((x) => x.goal.startsWith('S4 latency p90'));
    expect(p90?.met).toBe(false);
    expect(p90?.measured).toBe('60.0 ms');
    expect(g.find((x) => x.goal.startsWith('S3 time'))?.met).toBeUndefined();
    expect(g.find((x) => x.goal.startsWith('S1 peak RSS'))?.met).toBe(true);
  });

  it('prints a table with the ratio, the n/a tools and the failures', () => {
    const text = vsTable(report()).join('\n');
    expect(text).toMatch(/Lockstep\s+3\.00 s \(2\.00–4\.00\)\s+1\.50/);
    expect(text).toContain('rsync run FAILED: x');
    expect(text).toContain('n/a: one-shot');
    expect(text).toContain('Unison: skipped (not installed)');
  });
});

describe('docs', () => {
  it('keeps the hand-written part and flags a busy machine', () => {
    const old = `# old\n\n${NOTES_MARK}\n\n## What stands in the way\n\nmy notes\n`;
    const md = renderBenchmarksMd(report(), keptNotes(old), 'npm run bench:docs');
    expect(md).toContain('my notes');
    expect(md).not.toContain('# old');
    expect(md).toContain('Noisy run');
    expect(md).toContain('| Lockstep | 3.00 s (2.00–4.00) | 1.50 |');
    expect(keptNotes(undefined)).toContain(NOTES_MARK);
  });
});

describe('tool configuration', () => {
  it('rsync: a writable module, delta mode, temp names', () => {
    const conf = rsyncdConf({ dir: '/d/B', log: '/w/log', uid: 0, gid: 0 });
    expect(conf).toMatch(/\[b\]\n\s+path = \/d\/B\n\s+read only = no/);
    expect(conf).toContain('use chroot = no');
    const args = rsyncClientArgs('/d/A', 1234, false);
    expect(args).toEqual(expect.arrayContaining(['-a', '--delete', '--no-whole-file']));
    expect(args).not.toContain('--whole-file');
    expect(args).not.toContain('--fsync');
    expect(args.slice(-2)).toEqual(['/d/A/', 'rsync://127.0.0.1:1234/b/']);
    expect(rsyncClientArgs('/d/A/', 1, true)).toContain('--fsync');
    expect(rsyncPartial('d0001/.f1.bin.Ab12Cd')).toBe(true);
    expect(rsyncPartial('d0001/f1.bin')).toBe(false);
    expect(
      rsyncStatsNote(['Literal data: 1,060,000 bytes', 'Matched data: 25,789,280 bytes']),
    ).toBe('rsync --stats: literal data 1,060,000 bytes, matched data 25,789,280 bytes');
    expect(rsyncStatsNote(['nothing'])).toBeUndefined();
  });

  it('lsyncd: default.rsync to the daemon, delay 0, quoted paths', () => {
    const conf = lsyncdConf({
      source: '/d/"A"',
      port: 99,
      log: '/w/l',
      status: '/w/s',
      fsync: false,
    });
    expect(conf).toContain('default.rsync');
    expect(conf).toContain('delay = 0,');
    expect(conf).toContain('source = "/d/\\"A\\"/",');
    expect(conf).toContain('target = "rsync://127.0.0.1:99/b/",');
    expect(conf).toContain('whole_file = false');
    expect(() => luaString('a\nb')).toThrow(/control character/);
  });

  it('Unison: socket root, batch, times, repeat only when continuous', () => {
    const once = unisonClientArgs('/d/A', '/d/B', 5, false);
    expect(once.slice(0, 2)).toEqual(['/d/A', 'socket://127.0.0.1:5//d/B']);
    expect(once).toEqual(expect.arrayContaining(['-batch', '-auto', '-times']));
    expect(once).not.toContain('-repeat');
    expect(unisonClientArgs('/d/A', '/d/B', 5, true).join(' ')).toContain('-repeat 1');
    expect(unisonPartial('x/.unison.f.bin.123.unison.tmp')).toBe(true);
    expect(unisonPartial('x/f.bin')).toBe(false);
  });

  it('Syncthing: static addresses through the proxy, everything that calls out off', () => {
    const xml = syncthingConfigXml({
      version: 36,
      self: { id: 'AAA', name: 'A' },
      peer: { id: 'BBB', name: 'B', address: 'tcp://127.0.0.1:7000' },
      folder: '/d/A & co',
      listen: 'tcp://127.0.0.1:6000',
      gui: '127.0.0.1:8000',
      apiKey: 'k',
    });
    expect(xml).toMatch(/^<configuration version="36">/);
    expect(xml).toContain('path="/d/A &amp; co"');
    expect(xml).toContain('fsWatcherDelayS="1"');
    expect(xml).toContain('<address>tcp://127.0.0.1:7000</address>');
    expect(xml).toContain('<listenAddress>tcp://127.0.0.1:6000</listenAddress>');
    for (const off of [
      'globalAnnounceEnabled',
      'localAnnounceEnabled',
      'relaysEnabled',
      'natEnabled',
    ]) {
      expect(xml).toContain(`<${off}>false</${off}>`);
    }
    expect(xml).toContain('<urAccepted>-1</urAccepted>');
    expect(xml).toContain('<stunKeepaliveStartS>0</stunKeepaliveStartS>');
    expect(xml).toContain('<address>127.0.0.1:8000</address>');
    const id = 'Y23XXR7-HVT7FWH-RN2RJDP-3PHPNJU-CJRT2KW-ZIMAMBE-3NHTEJI-3B564QF';
    expect(parseDeviceId(`INFO: x\nDevice ID: ${id}\n`)).toBe(id);
    expect(() => parseDeviceId('nothing')).toThrow();
    expect(parseConfigVersion('<configuration version="37">')).toBe(37);
    expect(syncthingOwn('.stfolder')).toBe(true);
    expect(syncthingOwn('.stfolder/x')).toBe(true);
    expect(syncthingOwn('d/.stfolder')).toBe(false);
    expect(syncthingPartial('d/.syncthing.f.bin.tmp')).toBe(true);
  });
});

describe('process trees and the scale mix', () => {
  it('parses /proc/PID/stat past a command name with spaces and parentheses', () => {
    const line = '42 (a b) c) S 7 42 42 0 -1 0 0 0 0 0 30 12 5 3 20 0 1 0';
    expect(parseStat(line)).toEqual({ ppid: 7, selfTicks: 42, childTicks: 8 });
  });

  it('finds every descendant of a process', () => {
    const parents = new Map([
      [2, 1],
      [3, 2],
      [4, 3],
      [5, 1],
      [6, 9],
    ]);
    expect(descendants(2, parents).sort()).toEqual([2, 3, 4]);
    expect(descendants(1, parents).sort()).toEqual([1, 2, 3, 4, 5]);
  });

  it('reads the scan time from the device log', () => {
    const log = [
      '{"msg":"full scan done","ms":5000,"scanned":10}',
      'noise',
      '{"level":30,"msg":"full scan done","ms":712.4,"scanned":101001}',
    ].join('\n');
    expect(scanLogged(log)).toBe('the scan itself 0.71 s for 101001 entries, as logged');
    expect(scanLogged('nothing')).toBeUndefined();
    expect(mbOr(undefined)).toBe('-');
    expect(mbOr(99.6)).toBe('100 MB');
  });

  it('mixes 100,000 files into 2 GiB', () => {
    const mix = scaleMix(100_000, 2 * 2 ** 30);
    expect(mix.reduce((s, c) => s + c.count, 0)).toBe(100_000);
    const bytes = mix.reduce((s, c) => s + c.count * c.size, 0);
    expect(Math.abs(bytes - 2 * 2 ** 30)).toBeLessThan(100 * 1024);
    expect(mix[0]?.size).toBe(2048);
  });
});

/**
 * `npm run bench -- --vs[=rsync,lsyncd,unison,syncthing]`: the peer-sync
 * scenarios S1–S4 for Lockstep and for each other tool that is installed,
 * alternating: for each scenario, run 1 goes through the tools in order, run
 * 2 through the order rotated by one, and so on, so that the machine's drift
 * (page cache, other load, thermal) hits them alike. A missing tool is skipped
 * with a message; a tool that cannot do a scenario (rsync and S4) is marked
 * n/a.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { LockstepRunner } from './lockstep-runner.js';
import { LsyncdRunner } from './lsyncd-runner.js';
import type { SyncRunner } from './runner.js';
import { RsyncRunner } from './rsync-runner.js';
import { attempt, planScenario, syncMethod, type SyncBenchOptions } from './sync.js';
import { SyncthingRunner } from './syncthing-runner.js';
import type { ScenarioId, SyncRun } from './sync-report.js';
import { UnisonRunner } from './unison-runner.js';
import {
  rotation,
  type VsMachine,
  type VsReport,
  type VsScenario,
  type VsTool,
} from './vs-report.js';

/** A tool the benchmark can compare. */
export interface ToolDef {
  readonly name: string;
  /** Why it cannot run here (not installed), or undefined. */
  readonly missing: () => string | undefined;
  /** Its version, in one line. */
  readonly version: () => string;
  /** A fresh runner for scenario `id`, or a reason it cannot do that scenario. */
  readonly runner: (id: ScenarioId) => SyncRunner | string;
}

function firstLine(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000 });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n').find((l) => l.trim() !== '') ?? '?';
}

const lockstepVersion = () => {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version?: string;
    };
    return `lockstep ${pkg.version ?? '?'}`;
  } catch {
    return 'lockstep';
  }
};

/** Every tool, in the order of the first run. */
export const TOOLS: readonly ToolDef[] = [
  {
    name: 'Lockstep',
    missing: () => undefined,
    version: lockstepVersion,
    runner: () => new LockstepRunner(),
  },
  {
    name: 'rsync',
    missing: RsyncRunner.available,
    version: () => firstLine('rsync', ['--version']),
    runner: (id) =>
      id === 'S4' ? 'one-shot, not continuous (lsyncd runs rsync continuously)' : new RsyncRunner(),
  },
  {
    name: 'lsyncd',
    missing: LsyncdRunner.available,
    version: () => `lsyncd ${firstLine('lsyncd', ['-version']).replace(/^Version:\s*/, '')}`,
    runner: () => new LsyncdRunner(),
  },
  {
    name: 'Unison',
    missing: UnisonRunner.available,
    version: () => firstLine('unison', ['-version']),
    runner: (id) => new UnisonRunner(id === 'S4' ? 'continuous' : 'once'),
  },
  {
    name: 'Syncthing',
    missing: SyncthingRunner.available,
    version: () => firstLine('syncthing', ['--version']),
    runner: () => new SyncthingRunner(),
  },
];

/**
 * The tools `--vs` names: `undefined` or `[]` for all, else Lockstep and the
 * named ones (case does not matter); throws on an unknown name.
 */
export function chooseTools(names: readonly string[] | undefined, all = TOOLS): ToolDef[] {
  if (names === undefined || names.length === 0) return [...all];
  const want = new Set(names.map((n) => n.toLowerCase()));
  for (const n of want) {
    if (!all.some((t) => t.name.toLowerCase() === n)) {
      throw new Error(`--vs: unknown tool ${n}; known: ${all.map((t) => t.name).join(', ')}`);
    }
  }
  return all.filter((t, i) => i === 0 || want.has(t.name.toLowerCase()));
}

/** The machine: cores, CPU, memory, kernel, the disk under `dir`, Node. */
export function describeMachine(dir: string): VsMachine {
  let disk = '?';
  const m = spawnSync('findmnt', ['-n', '-o', 'SOURCE,FSTYPE', '--target', dir], {
    encoding: 'utf8',
  });
  const [source, fstype] = (m.stdout ?? '').trim().split(/\s+/);
  if (source !== undefined && source !== '') {
    const dev = source.replace(/^\/dev\//, '').replace(/p?\d+$/, '');
    let kind = '';
    try {
      const rot = readFileSync(`/sys/block/${dev}/queue/rotational`, 'utf8').trim();
      kind = rot === '0' ? ', non-rotational' : ', rotational';
    } catch {
      // not a block device we can see
    }
    disk = `${source} (${fstype ?? '?'}${kind})`;
  }
  return {
    cores: cpus().length,
    cpu: cpus()[0]?.model.trim() ?? '?',
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: `Linux ${release()}`,
    disk,
    node: process.version,
  };
}

/** Runs the selected scenarios for every chosen tool, alternating run by run. */
export async function benchVs(
  opts: SyncBenchOptions,
  chosen: readonly ToolDef[],
): Promise<VsReport> {
  const startedAt = new Date().toISOString();
  const loadStart = loadavg();
  const tools: VsTool[] = [];
  const active: ToolDef[] = [];
  for (const t of chosen) {
    const missing = t.missing();
    if (missing !== undefined) {
      opts.progress?.(`${t.name}: skipped, ${missing} (scripts/install-peers.sh installs it)`);
      tools.push({ name: t.name, skipped: missing });
    } else {
      tools.push({ name: t.name, version: t.version() });
      active.push(t);
    }
  }
  const scenarios: VsScenario[] = [];
  for (const id of opts.scenarios) {
    const plan = planScenario(opts, id);
    const byTool: Record<string, SyncRun[]> = {};
    const notApplicable: Record<string, string> = {};
    if (plan.skipped !== undefined) {
      opts.progress?.(`${id} skipped: ${plan.skipped}`);
      scenarios.push({ ...plan.base, skipped: plan.skipped, byTool, notApplicable });
      continue;
    }
    const here = active.filter((t) => {
      const r = t.runner(id);
      if (typeof r === 'string') {
        notApplicable[t.name] = r;
        return false;
      }
      return true;
    });
    opts.progress?.(`${id}: ${opts.runs} run(s) of ${here.map((t) => t.name).join(', ')}`);
    for (let r = 0; r < opts.runs; r++) {
      for (const t of rotation(here, r)) {
        const runner = () => t.runner(id) as SyncRunner;
        const run = await attempt(() => plan.once({ ...opts, runner }));
        (byTool[t.name] ??= []).push(run);
        opts.progress?.(
          `  ${id} run ${r + 1}/${opts.runs} ${t.name}: ${run.error ? `FAILED: ${run.error}` : plan.show(run)}${run.note ? ` (${run.note})` : ''}`,
        );
      }
    }
    scenarios.push({ ...plan.base, byTool, notApplicable });
  }
  return {
    startedAt,
    finishedAt: new Date().toISOString(),
    machine: describeMachine(opts.dir),
    load: { start: loadStart, end: loadavg() },
    runs: opts.runs,
    scale: opts.scale > 0 ? opts.scale : 1,
    tools,
    scenarios,
    method: vsMethod(),
  };
}

/** How the tools were run and measured, in words. */
export function vsMethod(): string[] {
  return [
    ...syncMethod('tool').slice(1),
    'Every tool’s peer traffic goes through the same counting TCP proxy on 127.0.0.1 (TCP payload both ways, whatever the tool’s own framing, TLS or not); each tool starts its own processes with its own temporary configuration and home, and they are stopped by process group, the group of the process the benchmark started.',
    'Lockstep: two `lockstep serve` devices, A started and indexed first; S1/S2 time from starting B.',
    'rsync: an rsync daemon (`rsync --daemon --no-detach`) on B with one module for B’s folder; on A `rsync -a --delete --no-whole-file --stats` to rsync://127.0.0.1:PORT/b/ through the proxy, started when both sides are up (S1/S2: the clock includes the daemon’s start) and again right after S3’s rename; done when the client exits and B matches. Delta transfer is rsync’s default for daemon transfers (whole-file is the default only between local paths); `--no-whole-file` says so explicitly and `--stats` (matched data) confirms it. rsync does not fsync unless BENCH_RSYNC_FSYNC=1 adds `--fsync`. S4: n/a (not continuous).',
    'lsyncd: `lsyncd` with `default.rsync` (archive, delete, no whole-file) into the same rsync daemon URL, delay 0, inotify; it starts with a full rsync (S1/S2: started with B, the clock includes it).',
    'Unison: `unison -socket PORT -listen 127.0.0.1` as the server on B; on A `unison A socket://127.0.0.1:PROXY//B -batch -auto -times` one-shot (S1–S3, started like rsync), and with `-repeat 1` for S4 (Debian ships no unison-fsmonitor). Each side has its own UNISON and HOME directories.',
    'Syncthing: two instances (`syncthing serve --no-restart --no-browser`) with their own homes, generated keys, a written config.xml: static device addresses tcp://127.0.0.1:PORT through the proxy, global and local discovery, relays, NAT traversal, STUN, usage reporting and crash reporting off, low priority off, folder watcher delay 1 s (its lowest), rescan interval 1 day; GUI/REST on 127.0.0.1 used only to see that a side has scanned its folder.',
    'Completion is the same check for every tool: B has every path of A with A’s size and an mtime within the tool’s precision (1 ms; Unison 1 s), no temp file of the tool remains, and the tool says it is done (one-shot tools: the client exited 0); then the contents are compared by SHA-256 (untimed) and a difference fails the run.',
  ];
}

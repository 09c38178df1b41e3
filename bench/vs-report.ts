/**
 * What `npm run bench -- --vs` measured ({@link VsReport}): the peer-sync
 * scenarios for Lockstep and the other tools, run alternately, and the pure
 * arithmetic on it: medians with min–max, the ratios Lockstep / rsync, and
 * the goals of issue 7 met or missed by how much.
 */
import { median, quantile } from './stats.js';
import { fmt, mb, type ScenarioId, type SyncRun, type SyncScenarioResult } from './sync-report.js';
import type { Side } from './runner.js';

/** A tool as the report names it. */
export interface VsTool {
  readonly name: string;
  /** Its version line, or why it was skipped. */
  readonly version?: string;
  readonly skipped?: string;
}

/** A scenario's runs per tool; a tool without an entry did not take part. */
export interface VsScenario extends Omit<SyncScenarioResult, 'runs'> {
  readonly byTool: Readonly<Record<string, readonly SyncRun[]>>;
  /** Tools that cannot do this scenario, and why (rsync has no continuous mode: no S4). */
  readonly notApplicable: Readonly<Record<string, string>>;
}

/** The machine, in detail, for the docs. */
export interface VsMachine {
  readonly cores: number;
  readonly cpu: string;
  readonly memoryGiB: number;
  readonly kernel: string;
  readonly disk: string;
  readonly node: string;
}

/** Everything one `--vs` run measured. */
export interface VsReport {
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly machine: VsMachine;
  /** os.loadavg() (1, 5, 15 min) at the start and the end. */
  readonly load: { readonly start: readonly number[]; readonly end: readonly number[] };
  readonly runs: number;
  readonly scale: number;
  /** The tools in their order of the first run (later runs rotate it). */
  readonly tools: readonly VsTool[];
  readonly scenarios: readonly VsScenario[];
  /** The scale scenario (Lockstep alone), when run. */
  readonly scaleRun?: ScaleResult;
  readonly method: readonly string[];
}

/** One phase of the scale scenario. */
export interface ScalePhase {
  readonly name: string;
  readonly seconds: number;
  /** Peak RSS per device over the phase, MB. */
  readonly rssMb: Partial<Record<Side, number>>;
  /** Size of each device's index database (with its WAL) after the phase, bytes. */
  readonly dbBytes: Partial<Record<Side, number>>;
  /** More about the phase (the scan's own time as the device logged it). */
  readonly detail?: string;
  readonly error?: string;
}

/** The scale scenario: many files into an empty device, a rescan, a change burst. */
export interface ScaleResult {
  /** When it ran, and the load average (1 min) at its start and end: it may be a run of its own. */
  readonly startedAt?: string;
  readonly load?: { readonly start: number; readonly end: number };
  readonly description: string;
  readonly files: number;
  readonly bytes: number;
  readonly phases: readonly ScalePhase[];
}

/** Median, min, max and count of some numbers. */
export interface Spread {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly n: number;
}

/** The spread of `xs` (NaN fields when empty). */
export function spreadOf(xs: readonly number[]): Spread {
  const ok = xs.filter((x) => Number.isFinite(x));
  if (ok.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN, n: 0 };
  return { median: median(ok), min: Math.min(...ok), max: Math.max(...ok), n: ok.length };
}

/** `median (min–max)` with `d` decimals and a unit. */
export function spreadText(s: Spread, d: number, unit = ''): string {
  if (s.n === 0) return '-';
  const m = `${fmt(s.median, d)}${unit}`;
  return s.n === 1 ? m : `${m} (${fmt(s.min, d)}–${fmt(s.max, d)})`;
}

/** The runs that did not fail. */
export const okRuns = (runs: readonly SyncRun[] | undefined): SyncRun[] =>
  (runs ?? []).filter((r) => r.error === undefined);

/** What a tool's runs of one scenario came to. */
export interface ToolSummary {
  /** S1–S3: seconds per run. S4: the median latency of each run, in seconds. */
  readonly seconds: Spread;
  /** S4: every sample of every run, ms. */
  readonly p50Ms?: number;
  readonly p90Ms?: number;
  readonly wire: Spread;
  readonly rssMb: Readonly<Record<Side, Spread>>;
  readonly cpuS: Readonly<Record<Side, Spread>>;
  readonly failed: number;
}

/** The summary of `runs` (failed runs are counted, not measured). */
export function summarize(runs: readonly SyncRun[]): ToolSummary {
  const ok = okRuns(runs);
  const side = (s: Side, f: 'peakRssMb' | 'cpuS') =>
    spreadOf(ok.flatMap((r) => (r.usage[s] ? [r.usage[s][f]] : [])));
  const samples = ok.flatMap((r) => r.samplesMs ?? []);
  return {
    seconds: spreadOf(ok.map((r) => r.seconds)),
    ...(samples.length > 0 ? { p50Ms: quantile(samples, 0.5), p90Ms: quantile(samples, 0.9) } : {}),
    wire: spreadOf(ok.map((r) => r.wire.total)),
    rssMb: { A: side('A', 'peakRssMb'), B: side('B', 'peakRssMb') },
    cpuS: { A: side('A', 'cpuS'), B: side('B', 'cpuS') },
    failed: runs.length - ok.length,
  };
}

/** `a / b`, NaN unless both are finite and b > 0. */
export function ratio(a: number, b: number): number {
  return Number.isFinite(a) && Number.isFinite(b) && b > 0 ? a / b : Number.NaN;
}

/** One goal of the issue and where the run left it. */
export interface GoalResult {
  readonly goal: string;
  /** What was measured, in words ("1.23× rsync", "p50 14.2 ms"). */
  readonly measured: string;
  /** true met, false missed, undefined not measured. */
  readonly met: boolean | undefined;
  /** How far off, in words, when missed. */
  readonly by?: string;
}

const LOCKSTEP = 'Lockstep';
const RSYNC = 'rsync';

function scenario(r: VsReport, id: ScenarioId): VsScenario | undefined {
  return r.scenarios.find((s) => s.id === id);
}

/** A ratio goal (`value` / `base` ≤ 1). */
function ratioGoal(
  goal: string,
  value: number,
  base: number,
  unit: (n: number) => string,
): GoalResult {
  const q = ratio(value, base);
  if (!Number.isFinite(q)) return { goal, measured: 'not measured', met: undefined };
  const measured = `${fmt(q, 2)}× rsync (${unit(value)} vs ${unit(base)})`;
  if (q <= 1) return { goal, measured, met: true };
  return { goal, measured, met: false, by: `${fmt((q - 1) * 100, 0)}% over rsync` };
}

/** A ceiling goal (`value` ≤ `limit`). */
function limitGoal(goal: string, value: number, limit: number, unit: string): GoalResult {
  if (!Number.isFinite(value)) return { goal, measured: 'not measured', met: undefined };
  const measured = `${fmt(value, 1)} ${unit}`;
  if (value <= limit) return { goal, measured, met: true };
  return {
    goal,
    measured,
    met: false,
    by: `${fmt(value - limit, 1)} ${unit} over (${fmt(value / limit, 2)}×)`,
  };
}

/** Lockstep's summary and rsync's for scenario `id`. */
function pairOf(r: VsReport, id: ScenarioId) {
  const s = scenario(r, id);
  return {
    l: s ? summarize(s.byTool[LOCKSTEP] ?? []) : undefined,
    r: s ? summarize(s.byTool[RSYNC] ?? []) : undefined,
  };
}

/** The goals of issue 7, from the run. */
export function goals(report: VsReport): GoalResult[] {
  const out: GoalResult[] = [];
  const secs = (n: number) => `${fmt(n, 2)} s`;
  for (const id of ['S1', 'S2'] as const) {
    const { l, r } = pairOf(report, id);
    out.push(
      ratioGoal(
        `${id} time ≤ 1.0× rsync`,
        l?.seconds.median ?? NaN,
        r?.seconds.median ?? NaN,
        secs,
      ),
    );
  }
  {
    const { l, r } = pairOf(report, 'S3');
    out.push(
      ratioGoal(
        'S3 bytes on the wire ≤ 1.0× rsync',
        l?.wire.median ?? NaN,
        r?.wire.median ?? NaN,
        mb,
      ),
    );
    out.push(
      ratioGoal('S3 time ≤ 1.0× rsync', l?.seconds.median ?? NaN, r?.seconds.median ?? NaN, secs),
    );
  }
  {
    const { l } = pairOf(report, 'S4');
    out.push(limitGoal('S4 latency p50 ≤ 20 ms', l?.p50Ms ?? NaN, 20, 'ms'));
    out.push(limitGoal('S4 latency p90 ≤ 50 ms', l?.p90Ms ?? NaN, 50, 'ms'));
  }
  for (const id of ['S1', 'S2'] as const) {
    const { l } = pairOf(report, id);
    const worst = l ? Math.max(l.rssMb.A.median, l.rssMb.B.median) : NaN;
    out.push(limitGoal(`${id} peak RSS per device ≤ 100 MB`, worst, 100, 'MB'));
  }
  return out;
}

/** The text of one goal line. */
export function goalText(g: GoalResult): string {
  if (g.met === undefined) return `${g.goal}: not measured`;
  return `${g.goal}: ${g.measured} — ${g.met ? 'met' : `MISSED by ${g.by}`}`;
}

/** One row per tool of one scenario, as cells. */
export function scenarioRows(s: VsScenario, tools: readonly VsTool[]): string[][] {
  const rows: string[][] = [];
  const base = summarize(s.byTool[RSYNC] ?? []);
  for (const t of tools) {
    if (t.skipped !== undefined) continue;
    const na = s.notApplicable[t.name];
    if (na !== undefined) {
      rows.push([t.name, `n/a: ${na}`, '', '', '', '']);
      continue;
    }
    const runs = s.byTool[t.name];
    if (runs === undefined) continue;
    const m = summarize(runs);
    const failed = m.failed > 0 ? ` [${m.failed} failed]` : '';
    const time =
      s.id === 'S4'
        ? m.p50Ms === undefined
          ? '-'
          : `p50 ${fmt(m.p50Ms, 1)} / p90 ${fmt(m.p90Ms ?? NaN, 1)} ms`
        : spreadText(m.seconds, 2, ' s');
    const q = s.id === 'S4' ? '' : fmt(ratio(m.seconds.median, base.seconds.median), 2);
    const use = (side: Side) =>
      m.rssMb[side].n === 0
        ? '-'
        : `${fmt(m.rssMb[side].median, 0)} MB / ${fmt(m.cpuS[side].median, 2)} s`;
    rows.push([
      t.name,
      time + failed,
      q,
      m.wire.n === 0 ? '-' : spreadWire(m.wire),
      use('A'),
      use('B'),
    ]);
  }
  return rows;
}

function spreadWire(w: Spread): string {
  const [lo, hi] = [mb(w.min), mb(w.max)];
  return w.n > 1 && lo !== hi ? `${mb(w.median)} (${lo}–${hi})` : mb(w.median);
}

export const ROW_HEAD = [
  'tool',
  'time: median (min–max)',
  '÷ rsync',
  'wire',
  'A: peak RSS / CPU',
  'B: peak RSS / CPU',
];

/** Pads cells into aligned columns. */
export function columns(rows: readonly (readonly string[])[]): string[] {
  const widths = (rows[0] ?? []).map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) =>
    r
      .map((c, i) => c.padEnd(widths[i] as number))
      .join('  ')
      .trimEnd(),
  );
}

/** The human table of a report. */
export function vsTable(report: VsReport): string[] {
  const lines = [
    `Peer sync side by side on ${report.machine.cores} cores, ${report.machine.memoryGiB} GiB, Node ${report.machine.node}: ${report.runs} run(s) each, tools alternating; medians (min–max)${report.scale !== 1 ? `; sizes scaled x${report.scale}` : ''}`,
    `load average at start ${report.load.start.map((x) => fmt(x, 2)).join(' ')}, at end ${report.load.end.map((x) => fmt(x, 2)).join(' ')}`,
  ];
  for (const t of report.tools)
    if (t.skipped !== undefined) lines.push(`${t.name}: skipped (${t.skipped})`);
  for (const s of report.scenarios) {
    lines.push('', `${s.id} ${s.title}: ${s.data.description}`);
    if (s.skipped !== undefined) {
      lines.push(`  skipped: ${s.skipped}`);
      continue;
    }
    lines.push(...columns([ROW_HEAD, ...scenarioRows(s, report.tools)]).map((l) => `  ${l}`));
    for (const [tool, runs] of Object.entries(s.byTool)) {
      for (const r of runs)
        if (r.error !== undefined) lines.push(`  ${tool} run FAILED: ${r.error}`);
    }
  }
  lines.push('', 'Goals (Lockstep):', ...goals(report).map((g) => `  ${goalText(g)}`));
  return lines;
}

/** Whether any run failed. */
export function vsFailed(report: VsReport): boolean {
  return report.scenarios.some((s) =>
    Object.values(s.byTool).some((runs) => runs.some((r) => r.error !== undefined)),
  );
}

/** The tools of run `r` (0-based): the list rotated by `r`, so each tool takes each place in turn. */
export function rotation<T>(tools: readonly T[], r: number): T[] {
  if (tools.length === 0) return [];
  const k = r % tools.length;
  return [...tools.slice(k), ...tools.slice(0, k)];
}

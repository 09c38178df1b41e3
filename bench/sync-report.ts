/**
 * What the peer-sync benchmarks measured ({@link SyncReport}), and the human
 * table of it.
 */
import type { Side, SideUsage } from './runner.js';
import { median, quantile } from './stats.js';

const MiB = 2 ** 20;
const GiB = 2 ** 30;

/** The scenarios, by ID. */
export const SYNC_SCENARIOS = ['S1', 'S2', 'S3', 'S4'] as const;
export type ScenarioId = (typeof SYNC_SCENARIOS)[number];

/** One timed run of a scenario. */
export interface SyncRun {
  /** Seconds from the clock start until B matched (S1–S3); for S4 the median sample. */
  readonly seconds: number;
  /** S4: each sample's latency in ms. */
  readonly samplesMs?: readonly number[];
  /** Bytes through the proxy during the timed phase, by direction. */
  readonly wire: { readonly aToB: number; readonly bToA: number; readonly total: number };
  /** Per device: peak RSS (MB) and CPU seconds over the timed phase. */
  readonly usage: SideUsage;
  /** CPU seconds of the benchmark process itself (proxy, polling) over the timed phase. */
  readonly harnessCpuS?: number;
  /** Why the run failed (timeout, content differs), if it did. */
  readonly error?: string;
  /** What the tool said about the run (rsync: literal and matched data). */
  readonly note?: string;
}

/** A scenario's runs and what they measured. */
export interface SyncScenarioResult {
  readonly id: ScenarioId;
  readonly title: string;
  /** The data, in words and numbers. */
  readonly data: { readonly files: number; readonly bytes: number; readonly description: string };
  /** Bytes the scenario asks to move (S1/S2: all of it; S3: the changed bytes; S4: per sample). */
  readonly payloadBytes: number;
  readonly runs: readonly SyncRun[];
  /** Why it did not run, if it did not. */
  readonly skipped?: string;
}

/** Everything the peer-sync benchmarks measured. */
export interface SyncReport {
  readonly tool: string;
  readonly machine: { readonly cores: number; readonly memoryGiB: number; readonly node: string };
  readonly runs: number;
  readonly scale: number;
  readonly scenarios: readonly SyncScenarioResult[];
  readonly method: readonly string[];
}

/** `n` with `d` decimals, or '-' when it is not a number. */
export const fmt = (n: number, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : '-');

/** Bytes in MB (10^6), or kB below 1 MB. */
export function mb(n: number): string {
  return n >= 1e6 ? `${fmt(n / 1e6, 1)} MB` : `${fmt(n / 1e3, 1)} kB`;
}

/** A size in binary units without needless decimals. */
export function sizeText(n: number): string {
  for (const [u, v] of [
    ['GiB', GiB],
    ['MiB', MiB],
    ['KiB', 1024],
  ] as const) {
    if (n >= v) {
      const x = n / v;
      return `${Number.isInteger(x) ? x : x.toFixed(1)} ${u}`;
    }
  }
  return `${n} B`;
}

/** Median (min–max) of `xs` with `d` decimals. */
function spread(xs: number[], d: number, unit = ''): string {
  if (xs.length === 0) return '-';
  const m = `${fmt(median(xs), d)}${unit}`;
  if (xs.length === 1) return m;
  return `${m} (${fmt(Math.min(...xs), d)}–${fmt(Math.max(...xs), d)})`;
}

function usageText(runs: readonly SyncRun[], side: Side): string {
  const rss = runs.flatMap((r) => (r.usage[side] ? [r.usage[side].peakRssMb] : []));
  const cpu = runs.flatMap((r) => (r.usage[side] ? [r.usage[side].cpuS] : []));
  if (rss.length === 0) return '-';
  return `${fmt(median(rss), 0)} MB / ${fmt(median(cpu), 2)} s`;
}

/** The human table of a report: one line per scenario, then the failures and the method. */
export function syncTable(report: SyncReport): string[] {
  const head = [
    'scenario',
    'data',
    'time',
    'rate',
    'wire (A→B + B→A)',
    'A: peak RSS / CPU',
    'B: peak RSS / CPU',
  ];
  const rows: string[][] = [head];
  const notes: string[] = [];
  for (const s of report.scenarios) {
    const label = `${s.id} ${s.title}`;
    if (s.skipped !== undefined) {
      rows.push([label, s.data.description, 'skipped', '', '', '', '']);
      notes.push(`${s.id} skipped: ${s.skipped}`);
      continue;
    }
    const ok = s.runs.filter((r) => r.error === undefined);
    for (const r of s.runs) if (r.error !== undefined) notes.push(`${s.id} run FAILED: ${r.error}`);
    const wire = ok.map((r) => r.wire.total);
    const wireText =
      ok.length === 0
        ? '-'
        : `${mb(median(wire))} (${mb(median(ok.map((r) => r.wire.aToB)))} + ${mb(median(ok.map((r) => r.wire.bToA)))})`;
    if (s.id === 'S4') {
      const all = ok.flatMap((r) => r.samplesMs ?? []);
      rows.push([
        label,
        s.data.description,
        all.length === 0
          ? '-'
          : `p50 ${fmt(quantile(all, 0.5), 1)} / p90 ${fmt(quantile(all, 0.9), 1)} / max ${fmt(Math.max(...all), 1)} ms (n=${all.length})`,
        '',
        ok.length === 0
          ? '-'
          : `${mb(median(wire) / Math.max(1, ok[0]?.samplesMs?.length ?? 1))} per file`,
        usageText(ok, 'A'),
        usageText(ok, 'B'),
      ]);
      continue;
    }
    const secs = ok.map((r) => r.seconds);
    rows.push([
      label,
      s.data.description,
      spread(secs, 2, ' s'),
      ok.length === 0
        ? '-'
        : `${fmt(s.payloadBytes / 1e6 / median(secs), 1)} MB/s${s.id === 'S2' ? `, ${fmt(s.data.files / median(secs), 0)} files/s` : ''}`,
      wireText,
      usageText(ok, 'A'),
      usageText(ok, 'B'),
    ]);
  }
  const widths = head.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  const lines = [
    `Peer sync, ${report.tool}, on ${report.machine.cores} cores, ${report.machine.memoryGiB} GiB, Node ${report.machine.node}: ${report.runs} run(s) each, medians (min–max)${report.scale !== 1 ? `; sizes scaled x${report.scale}` : ''}`,
    ...rows.map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i] as number))
        .join('  ')
        .trimEnd(),
    ),
  ];
  if (notes.length > 0) lines.push(...notes);
  lines.push(...report.method.map((m) => `  ${m}`));
  return lines;
}

/** Whether any run of the report failed. */
export function syncFailed(report: SyncReport): boolean {
  return report.scenarios.some((s) => s.runs.some((r) => r.error !== undefined));
}

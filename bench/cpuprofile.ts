/**
 * Reading V8 CPU profiles (`node --cpu-prof`): the self time of each
 * function and of each source file or package, optionally only within a
 * window of the process's monotonic clock (the timed phase of a benchmark).
 */

/** The parts of a .cpuprofile this reads. */
export interface CpuProfile {
  readonly nodes: readonly {
    readonly id: number;
    readonly callFrame: {
      readonly functionName: string;
      readonly url: string;
      readonly lineNumber: number;
    };
  }[];
  /** Microseconds, CLOCK_MONOTONIC. */
  readonly startTime: number;
  readonly endTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** Self time of one function or one place. */
export interface Cost {
  readonly name: string;
  readonly ms: number;
  /** Share of all samples in the window, percent. */
  readonly pct: number;
}

/** What a profile came to. */
export interface ProfileSummary {
  /** Sampled time in the window, ms (idle included). */
  readonly totalMs: number;
  /** Of which not idle, ms. */
  readonly busyMs: number;
  readonly functions: readonly Cost[];
  readonly places: readonly Cost[];
}

/** Where a function lives, in short: a package, a Lockstep file, a part of Node, or V8 itself. */
export function placeOf(url: string, functionName: string): string {
  if (url === '') {
    if (functionName.startsWith('(')) return functionName; // (garbage collector), (program), (idle)
    return '(native)';
  }
  const pkg = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (pkg?.[1]) return `package ${pkg[1]}`;
  if (url.startsWith('node:')) return url.replace(/^node:(internal\/)?/, 'node ');
  const ours = /\/dist\/(.+)$/.exec(url);
  if (ours?.[1]) return ours[1];
  return url.slice(url.lastIndexOf('/') + 1);
}

function nameOf(n: CpuProfile['nodes'][number]): string {
  const f = n.callFrame;
  const fn = f.functionName === '' ? '(anonymous)' : f.functionName;
  if (f.url === '') return fn;
  return `${fn} ${placeOf(f.url, f.functionName)}:${f.lineNumber + 1}`;
}

function top(m: Map<string, number>, total: number, n: number): Cost[] {
  return [...m]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([name, us]) => ({ name, ms: us / 1000, pct: total > 0 ? (100 * us) / total : 0 }));
}

/**
 * Sums self time per function and per place, over the samples taken within
 * [`from`, `to`] (µs of the process's monotonic clock; all when not given).
 * Each sample is charged the time up to the next one.
 */
export function summarizeProfile(
  p: CpuProfile,
  window: { from?: number; to?: number } = {},
  n = 12,
): ProfileSummary {
  const byId = new Map(p.nodes.map((x) => [x.id, x]));
  const fn = new Map<string, number>();
  const place = new Map<string, number>();
  let total = 0;
  let idle = 0;
  let t = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i] ?? 0;
    const dt = p.timeDeltas[i + 1] ?? 0;
    if (
      (window.from !== undefined && t < window.from) ||
      (window.to !== undefined && t > window.to)
    )
      continue;
    const node = byId.get(p.samples[i] as number);
    if (node === undefined) continue;
    total += dt;
    if (node.callFrame.functionName === '(idle)') {
      idle += dt;
      continue;
    }
    const name = nameOf(node);
    fn.set(name, (fn.get(name) ?? 0) + dt);
    const where = placeOf(node.callFrame.url, node.callFrame.functionName);
    place.set(where, (place.get(where) ?? 0) + dt);
  }
  const busy = total - idle;
  return {
    totalMs: total / 1000,
    busyMs: busy / 1000,
    functions: top(fn, busy, n),
    places: top(place, busy, n),
  };
}

/** A summary as Markdown lines: busy time, then the top places and functions with their share. */
export function profileMarkdown(title: string, s: ProfileSummary): string[] {
  const row = (c: Cost) =>
    `| ${c.name.replace(/\|/g, '\\|')} | ${c.ms.toFixed(0)} ms | ${c.pct.toFixed(1)}% |`;
  return [
    `#### ${title}`,
    '',
    `${s.busyMs.toFixed(0)} ms on the CPU (this thread) of ${s.totalMs.toFixed(0)} ms sampled; shares are of the CPU time.`,
    '',
    '| where | self time | share |',
    '| --- | --- | --- |',
    ...s.places.map(row),
    '',
    '| function | self time | share |',
    '| --- | --- | --- |',
    ...s.functions.map(row),
    '',
  ];
}

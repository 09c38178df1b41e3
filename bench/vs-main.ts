/**
 * The `--vs` entry point: runs the side-by-side benchmark (and, with
 * BENCH_ONLY naming `scale`, the scale scenario), prints the table or the
 * JSON, and with `--write-docs` writes docs/benchmarks.md and
 * docs/benchmarks.json; `--docs-from=FILE` only renders the page.
 */
import * as fs from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchArgs } from './args.js';
import { onInterrupt } from './procs.js';
import { benchScale, scaleSelected } from './scale.js';
import { syncOptionsFromEnv } from './sync.js';
import { benchVs, chooseTools } from './vs.js';
import { keptNotes, renderBenchmarksMd, scaleLines } from './vs-docs.js';
import { vsFailed, vsTable, type VsReport } from './vs-report.js';

const DOCS = fileURLToPath(new URL('../docs/', import.meta.url));
const COMMAND = 'npm run bench:docs';

/**
 * `text` formatted by the project's Prettier (a development dependency, there
 * when the benchmarks run from a checkout), so that the written docs pass
 * `npm run lint`; unformatted if Prettier cannot be loaded.
 */
async function pretty(text: string, file: string): Promise<string> {
  try {
    const prettier = await import('prettier');
    const options = (await prettier.resolveConfig(file)) ?? {};
    return await prettier.format(text, { ...options, filepath: file });
  } catch {
    return text;
  }
}

/** Writes docs/benchmarks.md (keeping its hand-written part) and, given, docs/benchmarks.json. */
export async function writeDocs(report: VsReport, withJson: boolean): Promise<void> {
  fs.mkdirSync(DOCS, { recursive: true });
  const md = join(DOCS, 'benchmarks.md');
  const existing = fs.existsSync(md) ? fs.readFileSync(md, 'utf8') : undefined;
  fs.writeFileSync(md, await pretty(renderBenchmarksMd(report, keptNotes(existing), COMMAND), md));
  if (withJson) {
    const json = join(DOCS, 'benchmarks.json');
    fs.writeFileSync(json, await pretty(`${JSON.stringify(report, null, 2)}\n`, json));
  }
  console.error(`wrote ${md}${withJson ? ' and benchmarks.json' : ''}`);
}

export async function vsMain(args: BenchArgs): Promise<void> {
  if (args.docsFrom !== undefined) {
    await writeDocs(JSON.parse(fs.readFileSync(args.docsFrom, 'utf8')) as VsReport, false);
    return;
  }
  const dir = fs.mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), 'lockstep-vs-'));
  const off = onInterrupt(() => fs.rmSync(dir, { recursive: true, force: true }), true);
  try {
    const progress = (line: string) => console.error(line);
    const opts = syncOptionsFromEnv(
      dir,
      () => {
        throw new Error('no default runner in --vs');
      },
      progress,
    );
    const tools = chooseTools(args.vs);
    let report = await benchVs(opts, tools);
    if (scaleSelected(process.env.BENCH_ONLY)) {
      const scaleRun = await benchScale(dir, progress);
      report = {
        ...report,
        scaleRun,
        finishedAt: new Date().toISOString(),
        load: { start: report.load.start, end: loadavg() },
      };
    }
    if (args.json) process.stdout.write(`${JSON.stringify({ vs: report }, null, 2)}\n`);
    else console.log([...vsTable(report), ...scaleLines(report)].join('\n'));
    if (args.writeDocs) await writeDocs(report, true);
    if (vsFailed(report) || report.scaleRun?.phases.some((p) => p.error !== undefined)) {
      process.exitCode = 1;
    }
  } finally {
    off();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

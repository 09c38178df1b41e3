/**
 * The command line of `npm run bench -- …`:
 *
 * - `--vs` or `--vs=rsync,syncthing`: the peer-sync scenarios side by side
 *   with the other tools (all installed ones, or Lockstep and those named).
 * - `--json`: one JSON document on stdout instead of the tables.
 * - `--write-docs`: (with `--vs`) write docs/benchmarks.md and
 *   docs/benchmarks.json from the run.
 * - `--docs-from=FILE`: write docs/benchmarks.md from a saved JSON report
 *   (docs/benchmarks.json) without running anything.
 * - `--profile`: Lockstep's S1 and S2 under `node --cpu-prof`, summed up.
 */

/** What the command line asks for. */
export interface BenchArgs {
  /** undefined: no `--vs`; [] all tools; else the tools named. */
  readonly vs?: readonly string[];
  readonly json: boolean;
  readonly writeDocs: boolean;
  readonly docsFrom?: string;
  readonly profile: boolean;
}

/** Parses `argv` (without node and the script); throws on an unknown argument. */
export function parseBenchArgs(argv: readonly string[]): BenchArgs {
  let vs: string[] | undefined;
  let json = false;
  let writeDocs = false;
  let docsFrom: string | undefined;
  let profile = false;
  for (const a of argv) {
    if (a === '--vs') vs = [];
    else if (a.startsWith('--vs=')) {
      vs = a
        .slice(5)
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '');
    } else if (a === '--json') json = true;
    else if (a === '--write-docs') writeDocs = true;
    else if (a === '--profile') profile = true;
    else if (a.startsWith('--docs-from=')) docsFrom = a.slice('--docs-from='.length);
    else
      throw new Error(
        `unknown argument ${a}; known: --vs[=TOOL,…] --json --write-docs --docs-from=FILE --profile`,
      );
  }
  if (writeDocs && vs === undefined) throw new Error('--write-docs needs --vs');
  return {
    ...(vs !== undefined ? { vs } : {}),
    json,
    writeDocs,
    profile,
    ...(docsFrom !== undefined ? { docsFrom } : {}),
  };
}

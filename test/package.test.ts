// The published package holds the product and nothing else: what `npm pack`
// would put in it is read from npm itself, so that a change to the "files"
// list, the build or the layout cannot quietly ship the benchmarks or tests,
// nor leave out what the product needs to run.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** The paths `npm pack` would publish from the built tree. */
function packedFiles(): string[] {
  const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (r.status !== 0) throw new Error(`npm pack exited ${r.status}: ${r.stderr}`);
  const [pack] = JSON.parse(r.stdout) as [{ files: { path: string }[] }];
  return pack.files.map((f) => f.path);
}

/** Why `path` does not belong in the package, or undefined when it does. */
function notProduct(path: string): string | undefined {
  if (/^(bench|dist-bench|test|web)\//.test(path)) return 'outside the product';
  if (/(^|\/)(bench|testing)\//.test(path)) return 'a benchmark or test helper';
  if (/\.test\.[cm]?[jt]sx?(\.map)?$/.test(path)) return 'a test';
  if (/\.d\.ts$/.test(path)) return 'a declaration (the build emits them for the benchmarks)';
  return undefined;
}

describe('the published package', () => {
  let files: string[] = [];
  beforeAll(() => {
    files = packedFiles();
  });

  it('holds no benchmark, test or declaration file', () => {
    const wrong = files.flatMap((f) => {
      const why = notProduct(f);
      return why === undefined ? [] : [`${f}: ${why}`];
    });
    expect(wrong).toEqual([]);
  });

  it("holds the product's entry points, migrations and web page", () => {
    for (const want of [
      'package.json',
      'bin/lockstep.js',
      'dist/cli/main.js',
      'dist/store/migrate.js',
      'dist/store/migrations/001-index.sql',
      'dist/web/index.html',
    ]) {
      expect(files, want).toContain(want);
    }
    expect(files.some((f) => f.startsWith('dist/web/assets/'))).toBe(true);
  });

  it('tells the two apart (named cases)', () => {
    const cases: [string, boolean][] = [
      ['dist/cli/main.js', true],
      ['dist/sync/puller.js.map', true],
      ['src/store/migrations/001-index.sql', true],
      ['dist/bench/main.js', false],
      ['bench/main.ts', false],
      ['dist-bench/main.js', false],
      ['dist/cli/format.test.js', false],
      ['dist/testing/fake-backend.js', false],
      ['test/helpers.ts', false],
      ['dist/cli/main.d.ts', false],
    ];
    for (const [path, ok] of cases) expect(notProduct(path) === undefined, path).toBe(ok);
  });
});

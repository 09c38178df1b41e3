import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LockstepError } from '../base/errors.js';
import { homePaths } from '../config/home.js';
import { deviceIdOfCert } from '../identity/identity.js';
import { registerId, registerInit } from './init.js';
import { exitCodeOf, fail } from './output.js';

class Exit extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

let dir: string;
let stdout: string;
let stderr: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'lockstep-cli-'));
  stdout = '';
  stderr = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    stdout += String(chunk);
    return true;
  });
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
    stderr += String(chunk);
    return true;
  });
  vi.spyOn(process, 'exit').mockImplementation((code) => {
    throw new Exit(Number(code ?? 0));
  });
});
afterEach(() => {
  vi.restoreAllMocks();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs `lockstep ARGS` on a fresh program; returns the exit code (0 if none). */
async function run(...args: string[]): Promise<number> {
  const program = new Command('lockstep').exitOverride().configureOutput({
    writeOut: (s) => (stdout += s),
    writeErr: (s) => (stderr += s),
  });
  registerInit(program);
  registerId(program);
  try {
    await program.parseAsync(args, { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof Exit) return err.code;
    if (err instanceof Error && 'exitCode' in err) return 2; // commander usage error
    throw err;
  }
}

const lastLine = (s: string) => s.trimEnd().split('\n').at(-1);

describe('lockstep init', () => {
  it('creates the home, summarizes it and prints the device ID alone on the last line', async () => {
    const home = join(dir, 'home');
    const folder = join(dir, 'folder');
    const code = await run(
      'init',
      '--home',
      home,
      '--folder',
      folder,
      '--name',
      'A',
      '--api-listen',
      '127.0.0.1:9001',
    );
    expect(code).toBe(0);
    const id = deviceIdOfCert(readFileSync(homePaths(home).cert, 'utf8'));
    expect(lastLine(stdout)).toBe(id);
    expect(stdout).toContain(home);
    expect(stdout).toContain(folder);
    expect(stdout).toContain('0.0.0.0:7700');
    expect(stdout).toContain('127.0.0.1:9001');
    expect(statSync(homePaths(home).key).mode & 0o777).toBe(0o600);

    stdout = '';
    expect(await run('id', '--home', home)).toBe(0);
    expect(stdout).toBe(`${id}\n`);
  });

  it('exits 1 with one line on stderr when the home exists', async () => {
    const home = join(dir, 'home');
    expect(await run('init', '--home', home, '--folder', join(dir, 'f'), '--name', 'A')).toBe(0);
    stderr = '';
    expect(await run('init', '--home', home, '--folder', join(dir, 'f'), '--name', 'A')).toBe(1);
    expect(stderr).toMatch(/^lockstep: .* is already a Lockstep home .*\n$/);
  });

  it('exits 2 for a bad listen address or a missing option', async () => {
    const home = join(dir, 'home');
    expect(
      await run(
        'init',
        '--home',
        home,
        '--folder',
        join(dir, 'f'),
        '--name',
        'A',
        '--peer-listen',
        'x',
      ),
    ).toBe(2);
    expect(stderr).toContain('lockstep: Invalid --peer-listen: expected HOST:PORT');
    expect(() => statSync(home)).toThrow();
    expect(await run('init', '--home', home, '--folder', join(dir, 'f'))).toBe(2);
  });

  it('writes an etcd lock authority with --lock-etcd, and refuses a bad URL before making the home', async () => {
    const home = join(dir, 'home');
    const base = ['init', '--home', home, '--folder', join(dir, 'f'), '--name', 'A'];
    expect(await run(...base, '--lock-etcd', 'http://10.0.0.1:2379,10.0.0.2:2379')).toBe(2);
    expect(stderr).toContain(
      'lockstep: Invalid --lock-etcd (endpoints[1]): expected http://HOST:PORT or https://HOST:PORT, got "10.0.0.2:2379"',
    );
    expect(() => statSync(home)).toThrow();
    expect(await run(...base, '--lock-etcd-prefix', '/x/')).toBe(2);
    expect(stderr).toContain('--lock-etcd-prefix needs --lock-etcd');
    const urls = ['http://10.0.0.1:2379', 'http://10.0.0.2:2379', 'http://10.0.0.3:2379'];
    expect(
      await run(...base, '--lock-etcd', urls.join(','), '--lock-etcd-prefix', '/lockstep/team/'),
    ).toBe(0);
    expect(stdout).toContain(`locks        in etcd at ${urls.join(', ')}, prefix /lockstep/team/`);
    const config = JSON.parse(readFileSync(join(home, 'config.json'), 'utf8')) as unknown;
    expect(config).toMatchObject({
      lockAuthority: { etcd: { endpoints: urls, prefix: '/lockstep/team/' } },
    });
  });

  it('describes its options in --help', async () => {
    await run('init', '--help');
    expect(stdout).toMatch(
      /--folder <dir>[\s\S]*--name <name>[\s\S]*--peer-listen <host:port>[\s\S]*--api-listen/,
    );
  });
});

describe('lockstep id', () => {
  it('exits 1 saying to run init when there is no home', async () => {
    expect(await run('id', '--home', join(dir, 'none'))).toBe(1);
    expect(stderr).toMatch(/^lockstep: .*lockstep init/);
  });
});

describe('fail', () => {
  it.each([
    [new LockstepError('USAGE', 'bad flag'), 2, 'lockstep: bad flag\n'],
    [new LockstepError('CONFIG_INVALID', 'bad config'), 1, 'lockstep: bad config\n'],
    [new TypeError('boom'), 1, 'lockstep: unexpected error: boom\n'],
    ['text', 1, 'lockstep: unexpected error: text\n'],
  ])('maps %s to exit %i', (err, code, line) => {
    expect(exitCodeOf(err)).toBe(code);
    expect(() => fail(err)).toThrow(new Exit(code));
    expect(stderr).toBe(line);
  });
});

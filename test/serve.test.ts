// End to end: the built `lockstep` binary, real processes, real folders.
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { indexRow, lockstep, serve, waitFor, type Served } from './helpers.js';

describe('lockstep init, id and serve', () => {
  let tmp: string;
  let home: string;
  let folder: string;
  let db: string;
  const running: Served[] = [];
  const start = () => {
    const s = serve(home);
    running.push(s);
    return s;
  };

  beforeEach(() => {
    tmp = mkdtempSync(join(tmpdir(), 'lockstep-e2e-'));
    home = join(tmp, 'home');
    folder = join(tmp, 'folder');
    db = join(home, 'index.db');
  });
  afterEach(async () => {
    await Promise.all(running.splice(0).map((s) => s.stop('SIGKILL')));
    rmSync(tmp, { recursive: true, force: true });
  });

  const init = () => {
    const r = lockstep(['init', '--home', home, '--folder', folder, '--name', 'A']);
    expect(r.code, r.stderr).toBe(0);
    return r.stdout.trim().split('\n').at(-1) as string;
  };

  it('init prints the device ID last, id prints it again, secrets are 0600', () => {
    const id = init();
    expect(id).toMatch(/^[A-Z2-7]{7}(-[A-Z2-7]{7}){7}$/);
    expect(lockstep(['id', '--home', home]).stdout.trim()).toBe(id);
    expect(lockstep(['id'], { LOCKSTEP_HOME: home }).stdout.trim()).toBe(id);
    for (const f of ['key.pem', 'token', 'config.json'])
      expect(statSync(join(home, f)).mode & 0o777).toBe(0o600);
    expect(statSync(join(folder, '.lockstep-folder')).isFile()).toBe(true);
  });

  it('init refuses to overwrite an existing home', () => {
    const id = init();
    const again = lockstep(['init', '--home', home, '--folder', folder, '--name', 'B']);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already/i);
    expect(lockstep(['id', '--home', home]).stdout.trim()).toBe(id);
  });

  it('every command has --help, and bad usage exits 2', () => {
    for (const cmd of [[], ['init'], ['id'], ['serve'], ['demo']]) {
      const r = lockstep([...cmd, '--help']);
      expect(r.code, cmd.join(' ')).toBe(0);
      expect(r.stdout).toMatch(/Usage: lockstep/);
    }
    expect(lockstep(['init', '--home', home]).code).toBe(2);
    expect(lockstep(['frobnicate']).code).toBe(2);
  });

  it('serve rejects a bad configuration with a message naming the field', () => {
    init();
    const cfgFile = join(home, 'config.json');
    const cfg = JSON.parse(readFileSync(cfgFile, 'utf8')) as Record<string, unknown>;
    writeFileSync(cfgFile, JSON.stringify({ ...cfg, peerListen: 'nowhere' }));
    const r = lockstep(['serve', '--home', home]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/peerListen/);
  });

  it('indexes the folder, then each change within moments, and exits 0 on SIGTERM and SIGINT', async () => {
    init();
    writeFileSync(join(folder, 'before.txt'), 'was here first');
    const s = start();
    await waitFor('the first scan', () => indexRow(db, 'before.txt'));
    writeFileSync(join(folder, 'new.txt'), 'hello');
    await waitFor('new.txt indexed', () => indexRow(db, 'new.txt'));
    mkdirSync(join(folder, 'a', 'b'), { recursive: true });
    writeFileSync(join(folder, 'a', 'b', 'deep.txt'), 'deep');
    await waitFor('a/b/deep.txt indexed', () => indexRow(db, 'a/b/deep.txt'));
    writeFileSync(join(folder, 'new.txt'), 'hello again');
    await waitFor(
      'new.txt re-indexed',
      () => indexRow(db, 'new.txt')?.size === 'hello again'.length,
    );
    expect(Object.values(JSON.parse(indexRow(db, 'new.txt')?.version ?? '{}'))).toEqual([2]);
    unlinkSync(join(folder, 'before.txt'));
    await waitFor('before.txt tombstoned', () => indexRow(db, 'before.txt')?.deleted === 1);
    expect(await s.stop('SIGTERM')).toBe(0);
    expect(s.output()).toMatch(/stopped cleanly/);
    const s2 = start();
    await waitFor('serve restarted', () => /serving/.test(s2.output()));
    expect(await s2.stop('SIGINT')).toBe(0);
  });

  it('finds changes made while it was stopped', async () => {
    init();
    writeFileSync(join(folder, 'a.txt'), 'one');
    const s = start();
    await waitFor('a.txt indexed', () => indexRow(db, 'a.txt'));
    expect(await s.stop()).toBe(0);
    writeFileSync(join(folder, 'a.txt'), 'one, edited while stopped');
    writeFileSync(join(folder, 'b.txt'), 'new while stopped');
    start();
    await waitFor('b.txt indexed', () => indexRow(db, 'b.txt'));
    await waitFor(
      'a.txt re-indexed',
      () => indexRow(db, 'a.txt')?.size === 'one, edited while stopped'.length,
    );
  });

  it('safety stop: a removed folder marker stops the folder and nothing is recorded as deleted', async () => {
    init();
    writeFileSync(join(folder, 'precious.txt'), 'do not lose me');
    const s = start();
    await waitFor('precious.txt indexed', () => indexRow(db, 'precious.txt'));
    unlinkSync(join(folder, '.lockstep-folder'));
    unlinkSync(join(folder, 'precious.txt'));
    await waitFor('the stop to be logged', () => /folder stopped/.test(s.output()));
    expect(indexRow(db, 'precious.txt')?.deleted).toBe(0);
    expect(s.child.exitCode).toBeNull();
    // The marker returns: the device resumes and indexes what happened.
    writeFileSync(join(folder, '.lockstep-folder'), 'back');
    await waitFor('the device to resume', () => /folder is back/.test(s.output()), 15_000);
    await waitFor(
      'precious.txt tombstoned after resuming',
      () => indexRow(db, 'precious.txt')?.deleted === 1,
    );
  });

  it('safety stop: a vanished folder root stops the folder and nothing is recorded as deleted', async () => {
    init();
    writeFileSync(join(folder, 'precious.txt'), 'do not lose me');
    const s = start();
    await waitFor('precious.txt indexed', () => indexRow(db, 'precious.txt'));
    rmSync(folder, { recursive: true });
    await waitFor('the stop to be logged', () => /folder stopped/.test(s.output()));
    expect(indexRow(db, 'precious.txt')?.deleted).toBe(0);
    // A stopped folder does not stop the device: it waits for the folder.
    await new Promise((r) => setTimeout(r, 300));
    expect(s.child.exitCode, s.output()).toBeNull();
    const code = await s.stop();
    expect(code, `${s.child.signalCode ?? ''}\n${s.output()}`).toBe(0);
  });
});

// End to end: the client commands against real `lockstep serve` processes
// (devices A and B, peered on 127.0.0.1): the merged listing, numbered lock
// and unlock, users and tokens, exit codes, --json shapes, watch and shell.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  errorSchema,
  listPageSchema,
  lockInfoSchema,
  locksSchema,
  statusSchema,
  userSchema,
} from '../src/api/schemas.js';
import { TestCluster, type TestDevice } from './cluster.js';
import { BIN, freePort, lockstepAsync, waitUntil } from './helpers.js';

/** Terminal escape sequences (CSI), as readline writes them. */
const ANSI = new RegExp(`${String.fromCharCode(27)}\\[[0-9;?]*[A-Za-z]`, 'g');

const ajv = new Ajv({ allowUnionTypes: true, strict: false });

interface Page {
  dir: string;
  total: number;
  entries: { name: string; path: string; type: string; devices: { name: string }[] }[];
}

/** The API URL of a device, from its configuration. */
const apiOf = (d: TestDevice): string => {
  const cfg = JSON.parse(readFileSync(join(d.home, 'config.json'), 'utf8')) as {
    apiListen: string;
  };
  return `http://${cfg.apiListen}`;
};

/** The rows of a printed listing: `#` → NAME. */
function rowsOf(table: string): Map<number, string> {
  const rows = new Map<number, string>();
  for (const line of table.split('\n')) {
    const m = /^\s+(\d+)\s{2}(\S+)/.exec(line);
    if (m) rows.set(Number(m[1]), m[2] as string);
  }
  return rows;
}

/** A listing table in text: the header line and the numbered rows after it. */
function tablesIn(text: string): string[] {
  const tables: string[] = [];
  let cur: string[] | undefined;
  for (const line of text.split('\n')) {
    if (/^\s+#\s+NAME\s+SIZE/.test(line)) {
      cur = [line];
      tables.push('');
    } else if (cur !== undefined && /^\s+\d+\s{2}/.test(line)) {
      cur.push(line);
    } else {
      cur = undefined;
    }
    if (cur !== undefined) tables[tables.length - 1] = cur.join('\n');
  }
  return tables;
}

describe('client commands against real devices', () => {
  let cluster: TestCluster;
  let a: TestDevice;
  let b: TestDevice;
  let cache: string;
  /** Runs `lockstep ARGS` with this suite's listing cache. */
  const run = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    lockstepAsync(args, { XDG_CACHE_HOME: cache, LOCKSTEP_API: '', LOCKSTEP_TOKEN: '', ...env });
  const onA = (...args: string[]) => run([...args, '--home', a.home]);

  beforeAll(async () => {
    cluster = await TestCluster.create(['A', 'B']);
    a = cluster.get('A');
    b = cluster.get('B');
    cache = join(cluster.tmp, 'cache');
    writeFileSync(join(a.folder, 'from-a.txt'), 'written on A\n');
    writeFileSync(join(b.folder, 'from-b.bin'), Buffer.alloc(50_000, 7));
    mkdirSync(join(a.folder, 'docs'));
    writeFileSync(join(a.folder, 'docs', 'plan.md'), '# plan\n');
    writeFileSync(join(b.folder, 'notes.txt'), 'notes\n');
    await cluster.startAll();
    // Both devices hold every file: the listing on A shows A and B for each.
    await waitUntil(
      'the listing on A to show every file on both devices',
      async () => {
        const r = await onA('ls', '--json');
        if (r.code !== 0) return false;
        const page = JSON.parse(r.stdout) as Page;
        return (
          page.entries.length === 4 &&
          page.entries.every(
            (e) =>
              e.devices
                .map((d) => d.name)
                .sort()
                .join() === 'A,B',
          )
        );
      },
      20_000,
      100,
    );
  }, 60_000);
  afterAll(() => cluster?.close());

  it('ls shows the files of both devices as one table, and --json its page', async () => {
    const [human, json, docs] = await Promise.all([
      onA('ls'),
      onA('ls', '--json'),
      onA('ls', 'docs', '--json'),
    ]);
    expect(human.code, human.stderr).toBe(0);
    const lines = human.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^\s+#\s+NAME\s+SIZE\s+MODIFIED\s+LOCK\s+ON$/);
    expect([...rowsOf(human.stdout).values()].sort()).toEqual([
      'docs/',
      'from-a.txt',
      'from-b.bin',
      'notes.txt',
    ]);
    expect(human.stdout).toMatch(/from-b\.bin\s+48\.8 KiB\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+A B/);
    expect(json.code).toBe(0);
    const page = JSON.parse(json.stdout) as Page;
    expect(ajv.validate(listPageSchema, page), ajv.errorsText()).toBe(true);
    expect(page.total).toBe(4);
    const sub = JSON.parse(docs.stdout) as Page;
    expect(ajv.validate(listPageSchema, sub), ajv.errorsText()).toBe(true);
    expect(sub.dir).toBe('docs');
    expect(sub.entries.map((e) => e.path)).toEqual(['docs/plan.md']);
  });

  it('ls -R lists everything below a directory, by path, in one document', async () => {
    const [human, json] = await Promise.all([onA('ls', '-R'), onA('ls', '--recursive', '--json')]);
    expect(human.code, human.stderr).toBe(0);
    expect([...rowsOf(human.stdout).values()]).toEqual([
      'docs/',
      'docs/plan.md',
      'from-a.txt',
      'from-b.bin',
      'notes.txt',
    ]);
    const page = JSON.parse(json.stdout) as Page;
    expect(ajv.validate(listPageSchema, page), ajv.errorsText()).toBe(true);
    expect(page.total).toBe(5);
    expect(page.entries.map((e) => e.path)).toEqual([
      'docs',
      'docs/plan.md',
      'from-a.txt',
      'from-b.bin',
      'notes.txt',
    ]);
  });

  it('lock 2 after ls locks the path shown at #2; locks shows it; unlock 2 removes it', async () => {
    const ls = await onA('ls', '--sort', 'size', '--reverse');
    expect(ls.code, ls.stderr).toBe(0);
    const second = rowsOf(ls.stdout).get(2) as string;
    expect(second).toBeDefined();
    // A listing in another order (--json prints no numbers) does not move #2.
    await onA('ls', '--json');
    const lock = await onA('lock', '2', '--reason', 'e2e');
    expect(lock.code, lock.stderr).toBe(0);
    expect(lock.stdout.trim()).toBe(
      `locked ${second} for admin.${a.id.slice(0, 7)} (no expiry) — read-only on every other device`,
    );
    const locks = await onA('locks', '--json');
    expect(ajv.validate(locksSchema, JSON.parse(locks.stdout)), ajv.errorsText()).toBe(true);
    expect(
      (JSON.parse(locks.stdout) as { locks: { path: string; owner: string }[] }).locks,
    ).toMatchObject([
      { path: second, owner: expect.stringMatching(/^admin\.[A-Z2-7]{7}$/), reason: 'e2e' },
    ]);
    const table = await onA('locks');
    expect(table.stdout).toMatch(
      new RegExp(`^${second.replace('.', '\\.')}\\s+admin\\.[A-Z2-7]{7}@A\\s`, 'm'),
    );
    // Locking it again fails: exit 1, the holder named.
    const again = await onA('lock', second);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/admin/);
    const unlock = await onA('unlock', '2', '--json');
    expect(unlock.code, unlock.stderr).toBe(0);
    const info = JSON.parse(unlock.stdout) as { path: string };
    expect(ajv.validate(lockInfoSchema, info), ajv.errorsText()).toBe(true);
    expect(info.path).toBe(second);
    const none = await onA('locks');
    expect(none.stdout.trim()).toBe('No locks.');
  });

  it('exit 1 when the request fails, with the reason', async () => {
    const [missing, notLocked, json] = await Promise.all([
      onA('lock', 'no-such-file.txt'),
      onA('unlock', 'notes.txt'),
      onA('lock', 'no-such-file.txt', '--json'),
    ]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^lockstep: .*no-such-file\.txt/);
    expect(notLocked.code).toBe(1);
    // A directory can be locked; a file below it then cannot, and the refusal names the directory.
    expect((await onA('lock', 'docs')).code).toBe(0);
    const inside = await onA('lock', 'docs/plan.md');
    expect(inside.code).toBe(1);
    expect(inside.stderr).toMatch(
      /docs\/plan\.md is inside docs\/, locked by admin\.[A-Z2-7]{7}@A since/,
    );
    expect((await onA('unlock', 'docs')).code).toBe(0);
    expect(json.code).toBe(1);
    const doc = JSON.parse(json.stdout) as unknown;
    expect(ajv.validate(errorSchema, doc), ajv.errorsText()).toBe(true);
  });

  it('exit 2 for bad usage of every client command, with a useful message', async () => {
    const cases: [string[], RegExp][] = [
      [['ls', '--sort', 'color'], /Allowed choices are name, size, modified/],
      [['ls', '--bogus'], /unknown option '--bogus'/],
      [['lock'], /missing required argument/],
      [['lock', '1', '--ttl', '5'], /Invalid --ttl "5": give a unit/],
      [['lock', '99'], /#99 is not in the last listing/],
      [['unlock'], /missing required argument/],
      [['unlock', 'a', 'b'], /too many arguments/],
      [['locks', 'extra'], /too many arguments/],
      [['watch', '--bogus'], /unknown option/],
      [['status', '--bogus'], /unknown option/],
      [['whoami', 'x'], /too many arguments/],
      [['shell', '--bogus'], /unknown option/],
      [['user', 'add'], /missing required argument/],
      [['user', 'add', 'bad name'], /Invalid user name/],
      [['ls', '--api', 'ftp://x', '--token', 't'], /use http:\/\/ or https:\/\//],
      [['ls', '--api', 'http://127.0.0.1:7701'], /No token/],
    ];
    await onA('ls'); // a listing of 4 rows, so #99 is out of range
    const results = await Promise.all(cases.map(([args]) => run(args, { LOCKSTEP_HOME: a.home })));
    results.forEach((r, i) => {
      const [args, want] = cases[i] as [string[], RegExp];
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(want);
    });
  });

  it('exit 3 when the device does not answer, naming the address and how to start it', async () => {
    const port = await freePort();
    const c = await cluster.add('C'); // initialised, never started
    const [byApi, byHome, watch] = await Promise.all([
      run(['ls', '--api', `http://127.0.0.1:${port}`, '--token', 'x']),
      run(['status', '--home', c.home]),
      run(['watch', '--home', c.home]),
    ]);
    expect(byApi.code).toBe(3);
    expect(byApi.stderr).toMatch(
      new RegExp(
        `Cannot reach the device at http://127\\.0\\.0\\.1:${port} \\(connection refused\\)`,
      ),
    );
    expect(byHome.code).toBe(3);
    expect(byHome.stderr).toContain(`${apiOf(c)}`);
    expect(byHome.stderr).toContain(`lockstep serve --home ${c.home}`);
    expect(watch.code).toBe(3);
  });

  it("user add: that user's token works and owns its locks; a wrong token gets 401 and exit 1", async () => {
    const added = await run(['user', 'add', '--home', a.home, 'alice']);
    expect(added.code, added.stderr).toBe(0);
    const token = added.stdout.trim().split('\n').at(-1) as string;
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const dup = await run(['user', 'add', '--home', a.home, 'alice']);
    expect(dup.code).toBe(1);
    expect(dup.stderr).toMatch(/already exists/);

    const api = apiOf(a);
    const who = await run(['whoami', '--json', '--api', api, '--token', token]);
    expect(who.code, who.stderr).toBe(0);
    expect(ajv.validate(userSchema, JSON.parse(who.stdout))).toBe(true);
    expect(JSON.parse(who.stdout)).toEqual({ name: 'alice', admin: false });
    // The same through the environment.
    const lock = await run(['lock', 'notes.txt'], { LOCKSTEP_API: api, LOCKSTEP_TOKEN: token });
    expect(lock.code, lock.stderr).toBe(0);
    expect(lock.stdout).toMatch(/^locked notes\.txt for alice /);
    // Not alice's to unlock for a plain user; the administrator may force.
    const bob = await run(['user', 'add', '--home', a.home, 'bob']);
    const bobToken = bob.stdout.trim().split('\n').at(-1) as string;
    const notOwner = await run(['unlock', 'notes.txt', '--api', api, '--token', bobToken]);
    expect(notOwner.code).toBe(1);
    expect(notOwner.stderr).toMatch(/alice/);
    const forced = await onA('unlock', 'notes.txt', '--force');
    expect(forced.code, forced.stderr).toBe(0);

    const wrong = await run(['ls', '--api', api, '--token', 'not-a-token']);
    expect(wrong.code).toBe(1);
    expect(wrong.stdout).toBe('');
    expect(wrong.stderr).toMatch(/refused the token/);
    const raw = await fetch(`${api}/api/v1/files`, {
      headers: { authorization: 'Bearer not-a-token' },
    });
    expect(raw.status).toBe(401);
    const body = (await raw.json()) as unknown;
    expect(body).toEqual({ error: { code: 'UNAUTHORIZED', message: expect.any(String) } });
    const none = await fetch(`${api}/api/v1/status`);
    expect(none.status).toBe(401);
    expect(await none.text()).not.toMatch(/from-a|notes|docs|"A"/);
  });

  it('status --json follows its schema and names both devices', async () => {
    const [json, human] = await Promise.all([onA('status', '--json'), onA('status')]);
    expect(json.code, json.stderr).toBe(0);
    const s = JSON.parse(json.stdout) as { device: { name: string }; peers: { name: string }[] };
    expect(ajv.validate(statusSchema, s), ajv.errorsText()).toBe(true);
    expect(s.device.name).toBe('A');
    expect(s.peers.map((p) => p.name)).toEqual(['B']);
    expect(human.stdout).toMatch(/^Device\s+A \(/m);
    expect(human.stdout).toMatch(/^\s+B \(\w{7}\)\s+127\.0\.0\.1:\d+\s+connected/m);
  });

  it('watch prints changes as they happen and exits 0 on SIGINT', async () => {
    const child = spawn(process.execPath, [BIN, 'watch', '--home', a.home], {
      env: { ...process.env, XDG_CACHE_HOME: cache, LOCKSTEP_API: '', LOCKSTEP_TOKEN: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    await waitUntil('watch to start', () => err.includes('watching'), 10_000, 20);
    writeFileSync(join(a.folder, 'watched.txt'), 'x'.repeat(2048));
    await waitUntil(
      'watch to print the new file',
      () => /^\d\d:\d\d:\d\d {2}added {5}watched\.txt on A \(2\.0 KiB\)$/m.test(out),
      10_000,
      20,
    );
    child.kill('SIGINT');
    expect(await exited).toBe(0);
  });

  it('shell, through a pseudo-terminal: server and ls print the same table; server lock/unlock N act on it', async () => {
    const expected = await onA('ls');
    expect(expected.code).toBe(0);
    const second = rowsOf(expected.stdout).get(2) as string;
    const input = [
      'server',
      'ls',
      'server lock 2',
      'locks',
      'server unlock 2',
      'bogus',
      'exit',
      '',
    ];
    const out = await runShell(['shell', '--home', a.home], input.join('\n'), {
      XDG_CACHE_HOME: cache,
    });
    expect(out.code, out.text).toBe(0);
    const text = out.text;
    const tables = tablesIn(text);
    expect(tables.length, text).toBeGreaterThanOrEqual(2);
    expect(tables[0]).toBe(tables[1]);
    expect(tables[0]).toBe(expected.stdout.trimEnd());
    expect(text).toContain(
      `locked ${second} for admin.${a.id.slice(0, 7)} (no expiry) — read-only on every other device`,
    );
    expect(text).toMatch(
      new RegExp(`unlocked ${second.replace('.', '\\.')} \\(was locked by admin\\.[A-Z2-7]{7}@A`),
    );
    expect(text).toMatch(/unknown command 'bogus'/);
    const locks = await onA('locks');
    expect(locks.stdout.trim()).toBe('No locks.');
  });
});

/**
 * Runs `lockstep ARGS` on a pseudo-terminal (util-linux `script`), typing
 * `input`; resolves with everything the terminal showed, escape sequences and
 * carriage returns removed, and the prompt taken off the start of lines.
 * Without `script`, stdin is a pipe instead.
 */
async function runShell(
  args: string[],
  input: string,
  env: NodeJS.ProcessEnv,
): Promise<{ code: number | null; text: string }> {
  const hasScript = spawnSync('script', ['--version']).status === 0;
  const cmd = [process.execPath, BIN, ...args].map((s) => `'${s.replaceAll("'", "'\\''")}'`);
  const child = hasScript
    ? spawn('script', ['-qfec', cmd.join(' '), '/dev/null'], {
        env: { ...process.env, ...env, TERM: 'dumb' },
      })
    : spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env } });
  let raw = '';
  child.stdout.on('data', (d: Buffer) => (raw += d.toString()));
  child.stderr.on('data', (d: Buffer) => (raw += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  await waitUntil('the shell to connect', () => raw.includes('Type help'), 15_000, 20);
  child.stdin.write(input);
  const code = await Promise.race([
    exited,
    new Promise<null>((r) => setTimeout(() => r(null), 20_000)),
  ]);
  if (code === null) child.kill('SIGKILL');
  const text = raw
    .replace(ANSI, '')
    .replaceAll('\r', '')
    .replace(/^(lockstep A> )+/gm, '');
  return { code, text };
}

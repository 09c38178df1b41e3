// `npm run demo -- --etcd`, as a user runs it without a terminal: three etcd
// members and two devices whose locks are in them; a lock taken through A is
// listed and enforced on B; SIGINT stops everything it started.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BIN, lockstepAsync, waitUntil } from './helpers.js';

/** Whether a process with this PID is alive. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('the demo on etcd', () => {
  let dir: string | undefined;
  let demoPid: number | undefined;
  afterEach(async () => {
    if (demoPid !== undefined && alive(demoPid)) process.kill(demoPid, 'SIGKILL');
    demoPid = undefined;
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it("keeps the two devices' locks in a three-member etcd it starts, and stops it on SIGINT", async () => {
    dir = await mkdtemp(join(tmpdir(), 'lockstep-demo-test-'));
    const child = spawn(process.execPath, [BIN, 'demo', '--etcd', '--dir', dir], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    demoPid = child.pid;
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    await waitUntil('the demo to be ready', () => out.includes('Press Ctrl-C to stop.'), 60_000);
    expect(out).toMatch(/etcd: three members, client URLs http:\/\/127\.0\.0\.1:\d+/);
    const memberPids = [...out.matchAll(/kill (\d+) or (\d+) or (\d+)/g)].flatMap((m) =>
      m.slice(1).map(Number),
    );
    expect(memberPids).toHaveLength(3);
    const homeA = join(dir, 'A', 'home');
    const homeB = join(dir, 'B', 'home');
    const config = JSON.parse(readFileSync(join(homeA, 'config.json'), 'utf8')) as {
      lockAuthority: unknown;
    };
    expect(config.lockAuthority).toMatchObject({ etcd: { prefix: '/lockstep/demo/' } });

    await waitUntil('notes-A.txt on B', () =>
      existsSync(join(dir as string, 'B', 'folder', 'notes-A.txt')),
    );
    const lock = await lockstepAsync(['lock', 'notes-A.txt', '--home', homeA]);
    expect(lock.code, lock.stderr).toBe(0);
    await waitUntil('the lock listed on B', async () => {
      const r = await lockstepAsync(['locks', '--json', '--home', homeB]);
      return r.stdout.includes('"notes-A.txt"');
    });
    await waitUntil(
      'notes-A.txt read-only on B',
      () => (statSync(join(dir as string, 'B', 'folder', 'notes-A.txt')).mode & 0o222) === 0,
    );
    const status = await lockstepAsync(['status', '--home', homeB]);
    expect(status.stdout).toMatch(/etcd/);

    child.kill('SIGINT');
    expect(await exited).toBe(0);
    for (const pid of memberPids) expect(alive(pid), `etcd member ${pid}`).toBe(false);
  }, 120_000);
});

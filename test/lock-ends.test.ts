// No lock ends silently: a holder's rename moves the lock with the file, a
// holder's delete ends it, and each is announced on every device (`watch`,
// the events stream). Real devices, the real CLI.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TestCluster, converged, sha256, type TestDevice } from './cluster.js';
import { BIN, lockstepAsync, waitUntil } from './helpers.js';

const cli = (d: TestDevice, ...args: string[]) => lockstepAsync([...args, '--home', d.home]);

/** The locks `d` lists, by path, with their IDs. */
async function locksOn(d: TestDevice): Promise<Map<string, string>> {
  const r = await cli(d, 'locks', '--json');
  expect(r.code, r.stderr).toBe(0);
  const { locks } = JSON.parse(r.stdout) as { locks: { path: string; id: string }[] };
  return new Map(locks.map((l) => [l.path, l.id]));
}

const readOnly = (d: TestDevice, path: string) =>
  (statSync(join(d.folder, path)).mode & 0o222) === 0;

/** `lockstep watch --json` on `d`, its events collected; stopped by PID in `stop`. */
function watchJson(d: TestDevice): { events: Record<string, unknown>[]; stop: () => void } {
  const child: ChildProcess = spawn(process.execPath, [BIN, 'watch', '--json', '--home', d.home], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const events: Record<string, unknown>[] = [];
  let buf = '';
  child.stdout?.on('data', (b: Buffer) => {
    buf += b.toString();
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line.startsWith('{')) events.push(JSON.parse(line) as Record<string, unknown>);
    }
  });
  return { events, stop: () => child.kill('SIGINT') };
}

describe('lock ends', () => {
  let cluster: TestCluster | undefined;
  const stops: (() => void)[] = [];
  afterEach(async () => {
    for (const stop of stops.splice(0)) stop();
    await cluster?.close();
    cluster = undefined;
  });

  it("moves a lock with its holder's rename and ends it with its holder's delete, announced on every device", async () => {
    cluster = await TestCluster.create(['A', 'B', 'C']);
    const [a, b, c] = cluster.devices as [TestDevice, TestDevice, TestDevice];
    mkdirSync(join(a.folder, 'proj'));
    writeFileSync(join(a.folder, 'proj', 'spec.md'), 'the spec\n');
    writeFileSync(join(a.folder, 'proj', 'old.md'), 'an old note\n');
    await cluster.startAll();
    await cluster.connected([a, b, c]);
    const all = [a, b, c];
    await converged(all, (t) => t['proj/spec.md'] !== undefined && t['proj/old.md'] !== undefined);
    const watch = watchJson(b);
    stops.push(watch.stop);
    // The holder works on A.
    for (const path of ['proj/spec.md', 'proj/old.md']) {
      const r = await cli(a, 'lock', path);
      expect(r.code, r.stderr).toBe(0);
    }
    const before = await locksOn(a);
    await waitUntil('both locks and read-only on B and C', async () => {
      for (const d of [b, c]) if ((await locksOn(d)).size !== 2) return false;
      return readOnly(b, 'proj/spec.md') && readOnly(c, 'proj/old.md');
    });

    // Renamed by its holder: the lock follows, the same lock.
    renameSync(join(a.folder, 'proj', 'spec.md'), join(a.folder, 'proj', 'spec-v2.md'));
    await waitUntil('the lock at the new name on every device', async () => {
      for (const d of all) {
        const locks = await locksOn(d);
        if (locks.get('proj/spec-v2.md') !== before.get('proj/spec.md')) return false;
        if (locks.has('proj/spec.md')) return false;
      }
      return true;
    });
    await waitUntil('the new name read-only on B and C', () =>
      [b, c].every((d) => {
        try {
          return readOnly(d, 'proj/spec-v2.md');
        } catch {
          return false;
        }
      }),
    );
    // Still enforced under its new name: a change on C is undone.
    writeFileSync(join(c.folder, 'proj', 'spec-v2.md'), 'an edit on C\n');
    await converged(all, (t) => {
      const e = t['proj/spec-v2.md'];
      return (
        e?.type === 'file' && e.sha256 === sha256('the spec\n') && t['proj/spec.md'] === undefined
      );
    });

    // Deleted by its holder: the lock ends with it, announced.
    unlinkSync(join(a.folder, 'proj', 'old.md'));
    await waitUntil('the lock on old.md gone everywhere', async () => {
      for (const d of all) if ((await locksOn(d)).has('proj/old.md')) return false;
      return true;
    });
    await waitUntil('B to announce the move and the end', () => {
      const types = watch.events.map(
        (e) => `${String(e.type)} ${String((e.lock as { path?: string } | undefined)?.path)}`,
      );
      return types.includes('moved proj/spec-v2.md') && types.includes('dropped proj/old.md');
    });
    const moved = watch.events.find((e) => e.type === 'moved');
    expect(moved).toMatchObject({
      from: 'proj/spec.md',
      lock: { owner: expect.stringMatching(/^admin\./) },
    });
    // Not announced as an ordinary unlock or a forced one.
    expect(watch.events.filter((e) => e.type === 'unlocked' || e.type === 'forced')).toEqual([]);
    expect((await locksOn(a)).has('proj/spec-v2.md')).toBe(true);
  }, 90_000);
});

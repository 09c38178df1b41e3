// Group fsync on a real disk: many waiting files share one syncfs and still
// each get their own fsync; a missing or failing syncfs changes nothing but
// speed; a file whose fsync fails is reported alone.
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GroupSync, syncFsProcess } from './group-sync.js';

describe('GroupSync', () => {
  let dir: string;
  const open: number[] = [];
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'lockstep-gsync-'));
  });
  afterEach(() => {
    for (const fd of open.splice(0)) closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  });
  const files = (n: number) =>
    Array.from({ length: n }, (_, i) => {
      const fd = openSync(join(dir, `f${i}`), 'w');
      writeSync(fd, `content ${i}`);
      open.push(fd);
      return fd;
    });

  it('writes out a group of waiting files with one syncfs, then fsyncs each', async () => {
    const calls: number[] = [];
    const g = new GroupSync(dir, async () => {
      calls.push(Date.now());
    });
    await Promise.all(files(40).map((fd) => g.fsync(fd)));
    expect(calls).toHaveLength(1);
    expect(g.stats).toEqual({ groups: 1, files: 40 });
  });

  it('fsyncs a few files one by one, without a syncfs', async () => {
    let calls = 0;
    const g = new GroupSync(dir, async () => {
      calls++;
    });
    await Promise.all(files(3).map((fd) => g.fsync(fd)));
    expect(calls).toBe(0);
  });

  it('still fsyncs every file when syncfs fails, and then leaves syncfs alone for a while', async () => {
    let calls = 0;
    const g = new GroupSync(dir, () => {
      calls++;
      return Promise.reject(new Error('no sync here'));
    });
    await Promise.all(files(20).map((fd) => g.fsync(fd)));
    await Promise.all(files(20).map((fd) => g.fsync(fd)));
    expect(calls).toBe(1);
    expect(g.stats.groups).toBe(0);
  });

  it('rejects only the file whose fsync fails', async () => {
    const g = new GroupSync(dir, async () => undefined);
    const good = files(20);
    const bad = openSync(join(dir, 'bad'), 'w');
    closeSync(bad); // a closed descriptor: its fsync fails with EBADF
    const results = await Promise.allSettled([...good, bad].map((fd) => g.fsync(fd)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(20);
    const failed = results.at(-1);
    expect(failed?.status).toBe('rejected');
    expect((failed as PromiseRejectedResult).reason).toMatchObject({ code: 'EBADF' });
  });

  it('runs the real sync -f through one helper process', async () => {
    const s = syncFsProcess(dir);
    try {
      await s();
      await Promise.all([s(), s(), s()]);
    } finally {
      s.close();
    }
  });

  it('reports a failing sync -f (a folder that is gone) as an error', async () => {
    const s = syncFsProcess(join(dir, 'missing'));
    try {
      await expect(s()).rejects.toThrow(/sync -f failed/);
    } finally {
      s.close();
    }
  });
});

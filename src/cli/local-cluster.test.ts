// The local-cluster harness's process handling, with a shell script standing
// in for `lockstep serve` (through `wrap`, which puts its command first; the
// script ignores the arguments after it), so each case is quick and exact.
import { describe, expect, it } from 'vitest';
import { ServeProcess } from './local-cluster.js';

/** A stand-in device that runs `script` in `sh`. */
const fake = (script: string, extra: { keepLines?: number; onLine?: (l: string) => void } = {}) =>
  ServeProcess.start({
    home: '/nonexistent',
    name: 'X',
    wrap: ['/bin/sh', '-c', script],
    ...extra,
  });

describe('ServeProcess', () => {
  it('is up once it prints the ready line, keeps its output, and stops by its PID', async () => {
    const p = fake('echo starting; echo "listening for peers" >&2; exec sleep 30');
    await p.ready('listening for peers', 10_000);
    expect(p.running).toBe(true);
    expect(p.output()).toContain('starting\n');
    // Already printed: at once.
    await p.ready('starting', 0);
    expect(await p.stop('SIGTERM')).toBeNull();
    expect(p.child.signalCode).toBe('SIGTERM');
  });

  it('says so, with its last lines, when it exits before it is up', async () => {
    const p = fake('echo "bad configuration: peers[0].address"; exit 3');
    await expect(p.ready('listening for peers', 10_000)).rejects.toThrow(
      /X exited \(3\) before it was up:\nbad configuration: peers\[0\]\.address/,
    );
    expect(await p.stop()).toBe(3);
  });

  it('gives up after the timeout, and SIGKILL follows a SIGTERM it ignores', async () => {
    const p = fake('trap "" TERM; echo ready-not; while :; do sleep 0.05; done');
    await expect(p.ready('listening for peers', 300)).rejects.toThrow(/X was not up within 300 ms/);
    await p.stop('SIGTERM', 200);
    expect(p.child.signalCode).toBe('SIGKILL');
  });

  it('keeps only the last lines when told, and hands every line to onLine', async () => {
    const seen: string[] = [];
    const p = fake(
      'for i in 1 2 3 4 5; do echo "line $i"; done; printf "half"; printf " line\\n"',
      {
        keepLines: 2,
        onLine: (l) => seen.push(l),
      },
    );
    await p.exited;
    expect(p.output()).toBe('line 5\nhalf line');
    expect(seen).toEqual(['line 1', 'line 2', 'line 3', 'line 4', 'line 5', 'half line']);
  });
});

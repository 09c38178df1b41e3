// Planning many paths window by window: deletes wait for every window's
// other steps, are planned again, and run children first.
import { describe, expect, it } from 'vitest';
import { inWindows } from './windows.js';

type S = { kind: string; path: string };

/** Plans from a fixed table of kinds; records what was planned and run, in order. */
function harness(kinds: Record<string, string>) {
  const log: string[] = [];
  const plan = (paths: readonly string[]): S[] => {
    log.push(`plan ${paths.join(',')}`);
    return paths
      .filter((p) => kinds[p] !== 'none')
      .map((p) => ({ kind: kinds[p] ?? '?', path: p }));
  };
  const run = async (steps: S[]) => {
    log.push(`run ${steps.map((s) => `${s.kind}:${s.path}`).join(',')}`);
  };
  return { log, plan, run };
}

describe('inWindows', () => {
  it('plans and runs everything at once when it fits one window', async () => {
    const h = harness({ a: 'pull', b: 'delete', c: 'mkdir' });
    await inWindows(['a', 'b', 'c'], 3, h.plan, h.run);
    expect(h.log).toEqual(['plan a,b,c', 'run pull:a,delete:b,mkdir:c']);
  });

  it('holds deletes back until every window ran, then plans them again, children first', async () => {
    const h = harness({
      old: 'delete', // a rename's old path, in the first window…
      x: 'pull',
      d: 'delete',
      'd/f': 'delete',
      y: 'none',
      new: 'pull', // …its new path in the last
    });
    await inWindows(['old', 'x', 'd', 'd/f', 'y', 'new'], 2, h.plan, h.run);
    expect(h.log).toEqual([
      'plan old,x',
      'run pull:x',
      'plan d,d/f',
      'run ',
      'plan y,new',
      'run pull:new',
      'plan old,d/f',
      'run delete:old,delete:d/f',
      'plan d',
      'run delete:d',
    ]);
  });

  it('stops between windows when asked', async () => {
    const h = harness({ a: 'pull', b: 'pull', c: 'pull' });
    let n = 0;
    await inWindows(
      ['a', 'b', 'c'],
      1,
      h.plan,
      async (s) => {
        n++;
        await h.run(s);
      },
      () => n >= 2,
    );
    expect(h.log).toEqual(['plan a', 'run pull:a', 'plan b', 'run pull:b']);
  });
});

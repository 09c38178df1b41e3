import { describe, expect, it } from 'vitest';
import { placeOf, profileMarkdown, summarizeProfile, type CpuProfile } from './cpuprofile.js';
import { threadOf } from './profile-main.js';

const frame = (functionName: string, url = '', lineNumber = 0) => ({
  functionName,
  url,
  lineNumber,
});

const profile: CpuProfile = {
  nodes: [
    { id: 1, callFrame: frame('(root)') },
    { id: 2, callFrame: frame('(idle)') },
    { id: 3, callFrame: frame('pull', 'file:///x/dist/sync/puller.js', 9) },
    { id: 4, callFrame: frame('step', 'file:///x/node_modules/better-sqlite3/lib/x.js', 1) },
    { id: 5, callFrame: frame('(garbage collector)') },
  ],
  startTime: 1000,
  endTime: 2000,
  // Sample times: 1000, 1100, 1200, 1300, 1400, 1500; each charged the gap to the next.
  samples: [3, 3, 4, 2, 5, 3],
  timeDeltas: [0, 100, 100, 100, 100, 100],
};

describe('CPU profiles', () => {
  it('names places: packages, Lockstep files, Node, V8', () => {
    expect(placeOf('file:///a/node_modules/@napi-rs/blake-hash/index.js', 'f')).toBe(
      'package @napi-rs/blake-hash',
    );
    expect(placeOf('file:///a/dist/sync/puller.js', 'f')).toBe('sync/puller.js');
    expect(placeOf('node:internal/fs/promises', 'f')).toBe('node fs/promises');
    expect(placeOf('', '(garbage collector)')).toBe('(garbage collector)');
    expect(placeOf('', 'writeSync')).toBe('(native)');
  });

  it('sums self time per function and place, idle apart, within a window', () => {
    const all = summarizeProfile(profile);
    expect(all.totalMs).toBeCloseTo(0.5);
    expect(all.busyMs).toBeCloseTo(0.4);
    expect(all.functions[0]).toEqual({ name: 'pull sync/puller.js:10', ms: 0.2, pct: 50 });
    expect(all.places.map((p) => p.name)).toEqual([
      'sync/puller.js',
      'package better-sqlite3',
      '(garbage collector)',
    ]);
    const late = summarizeProfile(profile, { from: 1150 });
    expect(late.busyMs).toBeCloseTo(0.2);
    expect(profileMarkdown('t', late).join('\n')).toContain(
      '| package better-sqlite3 | 0 ms | 50.0% |',
    );
  });

  it('tells the thread from the file name', () => {
    expect(threadOf('CPU.20260101.101010.123.0.001.cpuprofile')).toBe('main thread');
    expect(threadOf('CPU.20260101.101010.123.7.002.cpuprofile')).toBe('worker thread 7');
  });
});

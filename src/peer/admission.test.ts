import { describe, expect, it } from 'vitest';
import { ManualClock } from '../base/clock.js';
import type { Logger } from '../base/log.js';
import { Admission, WarnLimiter, addressGroup } from './admission.js';

describe('Admission', () => {
  it('admits up to the per-group cap, then displaces the oldest of that group only', () => {
    const a = new Admission<string>(10, 3);
    for (const x of ['a1', 'a2', 'a3', 'b1']) {
      expect(a.admit(x[0] as string, x)).toEqual([]);
    }
    expect(a.admit('a', 'a4')).toEqual(['a1']);
    expect(a.admit('a', 'a5')).toEqual(['a2']);
    expect(a.count('a')).toBe(3);
    expect(a.count('b')).toBe(1);
    expect([...a.items()]).toEqual(['a3', 'b1', 'a4', 'a5']);
  });

  it('past the total cap displaces the oldest of all, whatever its group', () => {
    const a = new Admission<string>(3, 3);
    expect(a.admit('x', 'x1')).toEqual([]);
    expect(a.admit('y', 'y1')).toEqual([]);
    expect(a.admit('z', 'z1')).toEqual([]);
    expect(a.admit('w', 'w1')).toEqual(['x1']);
    expect(a.size).toBe(3);
    expect(a.count('x')).toBe(0);
    expect(a.has('x1')).toBe(false);
  });

  it('displaces at most one per cap when both are reached', () => {
    const a = new Admission<string>(4, 2);
    a.admit('x', 'x1');
    a.admit('y', 'y1');
    a.admit('y', 'y2');
    a.admit('z', 'z1');
    // y is at its cap (y1 goes), then the total is still 3 < 4: nothing more.
    expect(a.admit('y', 'y3')).toEqual(['y1']);
    // z2: z has room, the total is at its cap: the oldest of all (x1) goes.
    expect(a.admit('z', 'z2')).toEqual(['x1']);
    expect([...a.items()]).toEqual(['y2', 'z1', 'y3', 'z2']);
  });

  it('frees a slot when an item is released (its handshake ended)', () => {
    const a = new Admission<string>(2, 2);
    a.admit('x', 'x1');
    a.admit('x', 'x2');
    expect(a.release('x1')).toBe(true);
    expect(a.release('x1')).toBe(false);
    expect(a.admit('x', 'x3')).toEqual([]);
    expect([...a.items()]).toEqual(['x2', 'x3']);
  });

  it('admits the same item once', () => {
    const a = new Admission<string>(1, 1);
    a.admit('x', 'x1');
    expect(a.admit('x', 'x1')).toEqual([]);
    expect(a.size).toBe(1);
  });

  it('refuses caps below 1', () => {
    expect(() => new Admission(0, 1)).toThrow(RangeError);
    expect(() => new Admission(1, 0)).toThrow(RangeError);
  });
});

describe('addressGroup', () => {
  const cases: [string | undefined, string][] = [
    ['127.0.0.1', '127.0.0.1'],
    ['::ffff:192.0.2.7', '192.0.2.7'],
    ['::FFFF:192.0.2.7', '192.0.2.7'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:0db8:0001:0002:aaaa::1', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['2001:db8:0:0:ffff::1%eth0', '2001:db8:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
    ['fe80::1:2.3.4.5', 'fe80:0:0:0::/64'],
    [undefined, 'unknown'],
    ['', 'unknown'],
  ];
  it.each(cases)('%s counts as %s', (address, group) => {
    expect(addressGroup(address)).toBe(group);
  });

  it('puts two hosts of one /64 together and two /64s apart', () => {
    expect(addressGroup('2001:db8:1:2::a')).toBe(addressGroup('2001:db8:1:2:ffff::b'));
    expect(addressGroup('2001:db8:1:2::a')).not.toBe(addressGroup('2001:db8:1:3::a'));
  });
});

/** A logger that keeps its warnings. */
function recorder(): { log: Logger; lines: { fields: object; msg: string }[] } {
  const lines: { fields: object; msg: string }[] = [];
  const nop = () => undefined;
  const log: Logger = {
    debug: nop,
    info: nop,
    error: nop,
    warn: (fields: object | string, msg?: string) => {
      lines.push(
        typeof fields === 'string' ? { fields: {}, msg: fields } : { fields, msg: msg ?? '' },
      );
    },
    child: () => log,
  };
  return { log, lines };
}

describe('WarnLimiter', () => {
  const more = (n: number, s: number) => `${n} more in ${s} s`;

  it('logs the first warning of a kind, counts the rest and sums them up once per interval', () => {
    const { log, lines } = recorder();
    const clock = new ManualClock();
    const w = new WarnLimiter(log, clock, 60_000);
    for (let i = 0; i < 1000; i++) w.warn('cap', { i }, `first ${i}`, more);
    expect(lines.map((l) => l.msg)).toEqual(['first 0']);
    clock.advance(60_000);
    expect(lines.map((l) => l.msg)).toEqual(['first 0', '999 more in 60 s']);
    expect(lines[1]?.fields).toEqual({ count: 999 });
    // Still within the next interval: counted, not logged.
    w.warn('cap', {}, 'again', more);
    expect(lines).toHaveLength(2);
    clock.advance(60_000);
    expect(lines.map((l) => l.msg).at(-1)).toBe('1 more in 60 s');
    // A quiet interval: the next one is logged at once again.
    clock.advance(60_000);
    expect(clock.pending).toBe(0);
    w.warn('cap', {}, 'after a pause', more);
    expect(lines.map((l) => l.msg).at(-1)).toBe('after a pause');
  });

  it('limits each kind on its own', () => {
    const { log, lines } = recorder();
    const w = new WarnLimiter(log, new ManualClock(), 60_000);
    w.warn('a', {}, 'a1', more);
    w.warn('b', {}, 'b1', more);
    w.warn('a', {}, 'a2', more);
    expect(lines.map((l) => l.msg)).toEqual(['a1', 'b1']);
  });

  it('logs what it counted when closed, and stops its timers', () => {
    const { log, lines } = recorder();
    const clock = new ManualClock();
    const w = new WarnLimiter(log, clock, 60_000);
    w.warn('a', {}, 'a1', more);
    w.warn('a', {}, 'a2', more);
    w.close();
    expect(lines.map((l) => l.msg)).toEqual(['a1', '1 more in 60 s']);
    expect(clock.pending).toBe(0);
  });
});

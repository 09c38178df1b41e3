import { describe, expect, it } from 'vitest';
import { ManualClock, systemClock } from './clock.js';
import { Disposables } from './disposable.js';

describe('ManualClock', () => {
  it('runs timers only when time is advanced past them, in order of due time', () => {
    const c = new ManualClock(1000);
    const ran: string[] = [];
    c.after(50, () => ran.push('b'));
    c.after(10, () => ran.push('a'));
    c.after(50, () => ran.push('c'));
    c.advance(9);
    expect(ran).toEqual([]);
    c.advance(1);
    expect(ran).toEqual(['a']);
    expect(c.now()).toBe(1010);
    c.advance(100);
    expect(ran).toEqual(['a', 'b', 'c']);
    expect(c.now()).toBe(1110);
    expect(c.pending).toBe(0);
  });

  it('a cancelled timer never runs; a timer armed by a timer runs in the same advance if due', () => {
    const c = new ManualClock();
    const ran: number[] = [];
    const t = c.after(5, () => ran.push(1));
    t.cancel();
    c.after(5, () => c.after(5, () => ran.push(2)));
    c.advance(10);
    expect(ran).toEqual([2]);
  });
});

describe('systemClock', () => {
  it('fires a short timer and does not fire a cancelled one', async () => {
    let fired = 0;
    systemClock.after(1, () => fired++);
    systemClock.after(1, () => fired++).cancel();
    await new Promise((r) => setTimeout(r, 30));
    expect(fired).toBe(1);
  });
});

describe('Disposables', () => {
  it('undoes what it owns newest first, once, and at once when added after dispose', () => {
    const d = new Disposables();
    const log: string[] = [];
    d.add(() => log.push('first'));
    d.add({ dispose: () => log.push('second') });
    d.dispose();
    d.dispose();
    expect(log).toEqual(['second', 'first']);
    d.add(() => log.push('late'));
    expect(log).toEqual(['second', 'first', 'late']);
    expect(d.isDisposed).toBe(true);
  });

  it('removes the listeners it added', () => {
    const calls: number[] = [];
    const listeners = new Set<(n: number) => void>();
    const emitter = {
      on: (_e: string, fn: (n: number) => void) => listeners.add(fn),
      off: (_e: string, fn: (n: number) => void) => listeners.delete(fn),
    };
    const d = new Disposables();
    d.on(emitter, 'x', (n: number) => calls.push(n));
    for (const fn of listeners) fn(1);
    d.dispose();
    expect(listeners.size).toBe(0);
    expect(calls).toEqual([1]);
  });

  it('runs every undo even when one throws, then reports it', () => {
    const d = new Disposables();
    let ran = false;
    d.add(() => (ran = true));
    d.add(() => {
      throw new Error('boom');
    });
    expect(() => d.dispose()).toThrow(AggregateError);
    expect(ran).toBe(true);
  });
});

// Per-file log lines: each while few, a summary per second when many.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { FileRecord } from '../core/record.js';
import { FileLog } from './file-log.js';
import type { Logger } from '../base/log.js';

const rec = (path: string, size = 1000, deleted = false): FileRecord =>
  ({ path, size, deleted, type: 'file', sequence: 1 }) as unknown as FileRecord;

describe('FileLog', () => {
  let info: string[];
  let debug: string[];
  let log: Logger;
  beforeEach(() => {
    vi.useFakeTimers();
    info = [];
    debug = [];
    log = {
      info: (_f: unknown, m: string) => info.push(m),
      debug: (_f: unknown, m: string) => debug.push(m),
    } as unknown as Logger;
  });
  afterEach(() => vi.useRealTimers());

  it('logs each file while they come slowly', () => {
    const l = new FileLog(log, 'synced', () => Date.now());
    for (let i = 0; i < 5; i++) {
      l.add(rec(`f${i}`), `synced f${i}`);
      vi.advanceTimersByTime(300);
    }
    expect(info).toEqual(['synced f0', 'synced f1', 'synced f2', 'synced f3', 'synced f4']);
    expect(debug).toEqual([]);
  });

  it('summarizes a burst after the first 20 and logs each of the rest at debug', () => {
    const l = new FileLog(log, 'synced', () => Date.now());
    for (let i = 0; i < 1000; i++) l.add(rec(`f${i}`, 2048, i % 100 === 0), `synced f${i}`);
    expect(info).toHaveLength(20);
    expect(debug).toHaveLength(980);
    vi.advanceTimersByTime(1000);
    expect(info).toHaveLength(21);
    expect(info[20]).toBe(
      'synced 980 more entries (1.9 MiB, 9 of them deletes); each is logged at debug level',
    );
    // A new second logs files one by one again.
    l.add(rec('late'), 'synced late');
    expect(info.at(-1)).toBe('synced late');
  });

  it('flush() logs what is held back at once, and nothing when nothing is', () => {
    const l = new FileLog(log, 'indexed', () => Date.now());
    l.flush();
    expect(info).toEqual([]);
    for (let i = 0; i < 21; i++) l.add(rec(`f${i}`, 10), `indexed f${i}`);
    l.flush();
    expect(info.at(-1)).toBe('indexed 1 more entry (10 B); each is logged at debug level');
  });
});

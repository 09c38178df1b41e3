// The composition root in process: the local half of a device started from
// its home, and a stop that comes while it starts.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { initHome } from '../config/home.js';
import { memoryLog } from '../testing/folder.js';
import { startDevice } from './start.js';

describe('startDevice', () => {
  let dir: string;
  let home: string;
  let folder: string;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lockstep-start-'));
    home = join(dir, 'home');
    folder = join(dir, 'folder');
    await initHome({ home, folder, name: 'A' });
    for (let d = 0; d < 20; d++) {
      mkdirSync(join(folder, `d${d}`));
      for (let f = 0; f < 20; f++) writeFileSync(join(folder, `d${d}`, `f${f}.txt`), `${d}/${f}`);
    }
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('starts the local half, indexes the folder, and closes', async () => {
    const log = memoryLog();
    const running = await startDevice(home, { parts: 'local', log });
    expect(running.cluster).toBeUndefined();
    expect(running.api).toBeUndefined();
    expect(running.device.store.totals().files).toBeGreaterThanOrEqual(420);
    expect(log.lines.some((l) => l.endsWith('full scan done'))).toBe(true);
    await running.close();
    await running.close();
  });

  it('a stop during the start closes the device at once: no first scan, no watcher left', async () => {
    const log = memoryLog();
    const stop = new AbortController();
    const starting = startDevice(home, { log, signal: stop.signal });
    stop.abort();
    const running = await starting;
    expect(log.lines.some((l) => l.endsWith('full scan done'))).toBe(false);
    expect(running.cluster).toBeUndefined();
    expect(running.api).toBeUndefined();
    await running.close();
  });
});

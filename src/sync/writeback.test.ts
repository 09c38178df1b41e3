import * as fs from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { WriteBack } from './writeback.js';

describe('WriteBack', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('settles quietly after early syncs that succeeded', async () => {
    dir = mkdtempSync(join(tmpdir(), 'lockstep-wb-'));
    const fd = fs.openSync(join(dir, 'f'), 'w');
    const wb = new WriteBack(fd, 4);
    fs.writeSync(fd, Buffer.from('12345678'));
    wb.wrote(8);
    wb.wrote(8);
    await expect(wb.settle()).resolves.toBeUndefined();
    fs.closeSync(fd);
  });

  it('keeps the error of an early sync for settle (the kernel reports it only once)', async () => {
    // A descriptor that is not open: the early sync fails with EBADF.
    const wb = new WriteBack(1_000_000, 1);
    wb.wrote(1);
    await wb.idle();
    await expect(wb.settle()).rejects.toMatchObject({ code: 'EBADF' });
  });
});

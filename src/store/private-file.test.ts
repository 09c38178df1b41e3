// The index database and its -wal / -shm are readable by their user only.
import { chmodSync, existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { formatDeviceId } from '../core/device-id.js';
import { IndexStore } from './index-store.js';

const DEV = formatDeviceId(new Uint8Array(32).fill(7));
const mode = (p: string) => statSync(p).mode & 0o777;

describe('the index database file modes', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'lockstep-db-mode-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('creates the database, its -wal and its -shm 0600', () => {
    const file = join(dir, 'index.db');
    const store = new IndexStore(file, DEV);
    try {
      store.commit([
        {
          path: 'a.txt',
          seen: {
            type: 'file',
            size: 0,
            mtimeNs: 1n,
            mode: 0o644,
            inode: 1,
            chunks: [],
            target: '',
          },
        },
      ]);
      for (const f of [file, `${file}-wal`, `${file}-shm`]) {
        expect(existsSync(f), f).toBe(true);
        expect(mode(f), f).toBe(0o600);
      }
    } finally {
      store.close();
    }
  });

  it('makes an existing database and its -wal and -shm 0600', () => {
    const file = join(dir, 'index.db');
    new IndexStore(file, DEV).close();
    for (const f of [file, `${file}-wal`, `${file}-shm`]) {
      if (!existsSync(f)) writeFileSync(f, '');
      chmodSync(f, 0o644);
    }
    const store = new IndexStore(file, DEV);
    try {
      for (const f of [file, `${file}-wal`, `${file}-shm`]) expect(mode(f), f).toBe(0o600);
    } finally {
      store.close();
    }
  });
});

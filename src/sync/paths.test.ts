import {
  closeSync,
  existsSync,
  fstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TEMP_PREFIX } from '../core/path.js';
import { formatDeviceId } from '../core/device-id.js';
import { hashHex } from '../scan/chunker.js';
import { IndexStore } from '../store/index-store.js';
import { seededBytes } from '../testing/seeded.js';
import { FdCache } from './fd-cache.js';
import { readLocalChunk } from './local-chunks.js';
import { ensureParents, inFolder, landedInside, tempPath } from '../folder/temp-files.js';
import { confinedFs } from '../confined/fs.js';

describe('inFolder and tempPath', () => {
  it.each([
    ['/srv/share', 'a.txt', '/srv/share/a.txt'],
    ['/srv/share', 'd/e/f.bin', '/srv/share/d/e/f.bin'],
    ['/srv/share/', 'd/f', '/srv/share/d/f'],
    ['/', 'top', '/top'],
  ])('inFolder(%s, %s) is %s, as join would make it', (root, rel, abs) => {
    expect(inFolder(root, rel)).toBe(abs);
    expect(inFolder(root, rel)).toBe(join(root, rel));
  });

  it('puts the temp file beside its target, hashing a name too long to prefix', () => {
    expect(tempPath('/srv/share/d/f.txt')).toBe(`/srv/share/d/${TEMP_PREFIX}f.txt`);
    const long = 'n'.repeat(250);
    const t = tempPath(`/srv/share/d/${long}`);
    expect(t.startsWith(`/srv/share/d/${TEMP_PREFIX}`)).toBe(true);
    expect(t.length - `/srv/share/d/${TEMP_PREFIX}`.length).toBe(40);
    expect(tempPath(`/srv/share/d/${long}`)).toBe(t);
    expect(tempPath(`/srv/share/d/${long}x`)).not.toBe(t);
  });
});

describe('ensureParents', () => {
  const root = mkdtempSync(join(tmpdir(), 'lockstep-parents-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('makes missing parents, or reports them missing when it must not create', () => {
    expect(ensureParents(root, 'a/b/c/file', false, confinedFs(root))).toBe(false);
    expect(existsSync(join(root, 'a'))).toBe(false);
    expect(ensureParents(root, 'a/b/c/file', true, confinedFs(root))).toBe(true);
    expect(existsSync(join(root, 'a/b/c'))).toBe(true);
    expect(ensureParents(root, 'a/b/c/file', false, confinedFs(root))).toBe(true);
    expect(ensureParents(root, 'top-level-file', false, confinedFs(root))).toBe(true);
  });

  it('refuses a parent that is a symlink or a file, naming it', () => {
    mkdirSync(join(root, 'x'));
    symlinkSync(tmpdir(), join(root, 'x', 'link'));
    writeFileSync(join(root, 'x', 'plain'), '');
    expect(() => ensureParents(root, 'x/link/f', true, confinedFs(root))).toThrow(
      /x\/link is a symlink here/,
    );
    expect(() => ensureParents(root, 'x/plain/g/f', true, confinedFs(root))).toThrow(
      /x\/plain is not a directory here/,
    );
  });
});

describe('landedInside', () => {
  const root = mkdtempSync(join(tmpdir(), 'lockstep-landed-'));
  const outside = mkdtempSync(join(tmpdir(), 'lockstep-landed-outside-'));
  afterAll(() => {
    rmSync(root, { recursive: true, force: true });
    rmSync(outside, { recursive: true, force: true });
  });
  // d/ replaced by a link to a directory outside the folder.
  symlinkSync(outside, join(root, 'd'));
  const idOf = (p: string) => {
    const fd = openSync(p, 'r');
    try {
      const st = fstatSync(fd, { bigint: true });
      return { ino: st.ino, dev: st.dev };
    } finally {
      closeSync(fd);
    }
  };

  it('refuses a file that is outside and leaves one that was not ours where it is', () => {
    const there = join(outside, `${TEMP_PREFIX}x`);
    writeFileSync(there, 'not ours');
    const at = tempPath(join(root, 'd', 'x'));
    expect(() => landedInside('d/x', at, idOf(at), false, confinedFs(root))).toThrow(
      /d\/x: a directory above it was replaced.*nothing was written outside/,
    );
    expect(existsSync(there)).toBe(true);
  });

  it('never reaches outside through the link, not even to remove a file of its own', () => {
    const there = join(outside, `${TEMP_PREFIX}y`);
    writeFileSync(there, 'ours');
    const at = tempPath(join(root, 'd', 'y'));
    expect(() => landedInside('d/y', at, idOf(at), true, confinedFs(root))).toThrow(
      /a directory above it was replaced/,
    );
    expect(existsSync(there)).toBe(true);
  });

  it('passes a file inside the folder, answering its lstat', () => {
    mkdirSync(join(root, 'e'));
    writeFileSync(join(root, 'e', 'z'), 'here');
    const id = idOf(join(root, 'e', 'z'));
    expect(landedInside('e/z', join(root, 'e', 'z'), id, true, confinedFs(root)).ino).toBe(id.ino);
  });
});

describe('readLocalChunk', () => {
  const root = mkdtempSync(join(tmpdir(), 'lockstep-local-chunk-'));
  const store = new IndexStore(
    join(root, '..', `${root.split('/').pop()}.db`),
    formatDeviceId(new Uint8Array(32).fill(3)),
  );
  const fds = new FdCache(confinedFs(root));
  afterAll(() => {
    fds.close();
    store.close();
    rmSync(root, { recursive: true, force: true });
    rmSync(`${root}.db`, { force: true });
    rmSync(`${root}.db-wal`, { force: true });
    rmSync(`${root}.db-shm`, { force: true });
  });
  const data = seededBytes(5000, 11);
  const hash = hashHex(data);
  writeFileSync(join(root, 'now.bin'), data);
  store.commit([
    {
      path: 'now.bin',
      seen: {
        type: 'file',
        size: data.length,
        mtimeNs: 1n,
        mode: 0o644,
        inode: 1,
        chunks: [{ offset: 0, length: data.length, hash }],
        target: '',
      },
    },
  ]);

  it('reads a chunk from the places given, verified', () => {
    const got = readLocalChunk(root, store, fds, hash, data.length, [
      { path: 'now.bin', offset: 0, length: data.length },
    ]);
    expect(got?.equals(data)).toBe(true);
  });

  it('asks the index again when every place given has moved on', () => {
    writeFileSync(join(root, 'then.bin'), seededBytes(5000, 12)); // other bytes there now
    const got = readLocalChunk(root, store, fds, hash, data.length, [
      { path: 'then.bin', offset: 0, length: data.length },
      { path: 'gone.bin', offset: 0, length: data.length },
    ]);
    expect(got?.equals(data)).toBe(true);
  });

  it('gives undefined when the chunk is nowhere', () => {
    expect(readLocalChunk(root, store, fds, 'ab'.repeat(32), 10, [])).toBeUndefined();
    expect(readLocalChunk(root, store, fds, 'ab'.repeat(32), 10)).toBeUndefined();
  });
});

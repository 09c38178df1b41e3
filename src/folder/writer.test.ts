// The folder writer, in process, on a real disk with faults injected by a
// FaultyFs: a failed call leaves the old content and its record, nothing is
// written outside the folder, and the hooks see every replace and remove.
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LockstepError } from '../base/errors.js';
import { SerialQueue } from '../base/serial-queue.js';
import { conflictName } from '../core/conflict-name.js';
import { TEMP_PREFIX } from '../core/path.js';
import type { FileRecord } from '../core/record.js';
import { fileRecord, localFile, makeFixture, type Fixture } from '../testing/folder.js';
import { FaultyFs } from './faulty-fs.js';
import { confinedFs } from '../confined/fs.js';
import { tempPath } from './temp-files.js';
import { FolderWriter, type FolderChange, type ReplaceReason } from './writer.js';

const OLD = Buffer.from('old content\n');
const NEW = Buffer.from('new content from the peer\n');

let fx: Fixture;
let faulty: FaultyFs;
let noted: string[];
let replaced: string[];
let bytes: number;
let locked: Set<string>;
let writer: FolderWriter;

beforeEach(() => {
  fx = makeFixture();
  faulty = new FaultyFs(confinedFs(fx.root));
  noted = [];
  replaced = [];
  bytes = 0;
  locked = new Set();
  writer = new FolderWriter({
    root: fx.root,
    store: fx.store,
    queue: new SerialQueue(),
    fs: faulty,
    noteWrite: (r) => noted.push(r.path),
    isLocked: (p) => locked.has(p),
    hooks: {
      beforeReplace: (p, w) => replaced.push(`${w.why} ${w.type} ${p}`),
      countBytes: (n) => (bytes += n),
    },
  });
});
afterEach(() => fx.close());

/** A pull of `data` to `path` from the peer, its temp file assembled already. */
function pull(path: string, data: Buffer, over: Partial<FolderChange> = {}): FolderChange {
  const tmp = tempPath(join(fx.root, path));
  writeFileSync(tmp, data);
  const st = lstatSync(tmp, { bigint: true });
  const local = fx.store.get(path);
  const version = { ...(local?.version ?? {}), BBBBBBB: 2 };
  return {
    kind: 'pull',
    path,
    record: fileRecord(path, data, version),
    version,
    sources: ['BBBBBBB'],
    local,
    tmp,
    id: { ino: st.ino, dev: st.dev },
    ...over,
  };
}

function deletion(local: FileRecord): FolderChange {
  const version = { ...local.version, BBBBBBB: 2 };
  return {
    kind: 'delete',
    path: local.path,
    record: { ...local, deleted: true, size: 0, chunks: [], version },
    version,
    sources: [],
    local,
  };
}

function read(path: string): string {
  return readFileSync(join(fx.root, path), 'utf8');
}

function tempsIn(dir: string): string[] {
  return readdirSync(dir).filter((n) => n.startsWith(TEMP_PREFIX));
}

describe('FolderWriter.apply', () => {
  it('puts a pulled file in place, records it, and notes it for the watcher once the batch commits', () => {
    localFile(fx.store, fx.root, 'a.txt', OLD);
    const out = writer.batch(() => {
      const o = writer.apply(pull('a.txt', NEW));
      expect(noted).toEqual([]); // not before the transaction commits
      return o;
    });
    expect(typeof out === 'object' && out.record.version).toEqual({ AAAAAAA: 1, BBBBBBB: 2 });
    expect(read('a.txt')).toBe(NEW.toString());
    expect(fx.store.get('a.txt')?.inode).toBe(Number(statSync(join(fx.root, 'a.txt')).ino));
    expect(noted).toEqual(['a.txt']);
    expect(replaced).toEqual(['pull file a.txt']);
    expect(bytes).toBe(NEW.length);
  });

  it('disk full on the rename: the change fails, the old content and record stay, the temp file waits for the retry', () => {
    const before = localFile(fx.store, fx.root, 'a.txt', OLD);
    faulty.inject({ op: 'rename', path: '/a.txt', code: 'ENOSPC' });
    expect(() => writer.batch(() => writer.apply(pull('a.txt', NEW)))).toThrow(/ENOSPC/);
    expect(read('a.txt')).toBe(OLD.toString());
    expect(fx.store.get('a.txt')).toEqual(before);
    expect(tempsIn(fx.root)).toEqual([`${TEMP_PREFIX}a.txt`]);
    expect(noted).toEqual([]);
  });

  it('a parent swapped for a symlink right before the rename: nothing is left outside the folder', () => {
    mkdirSync(join(fx.root, 'd'));
    const change = pull('d/x.txt', NEW);
    // The race no path walk can close: the directory moves outside and a
    // link to it takes its place between the walk and the rename.
    faulty.inject({
      op: 'rename',
      path: '/d/x.txt',
      times: 1,
      before: () => {
        renameSync(join(fx.root, 'd'), join(fx.outside, 'd'));
        symlinkSync(join(fx.outside, 'd'), join(fx.root, 'd'));
      },
    });
    expect(() => writer.apply(change)).toThrow(LockstepError);
    expect(existsSync(join(fx.outside, 'd', 'x.txt'))).toBe(false);
    // It did land in the moved directory, and was taken back through the
    // descriptor of that directory the write had used.
    expect(faulty.calls.some((c) => c === `unlink ${join(fx.root, 'd', 'x.txt')}`)).toBe(true);
    expect(fx.store.get('d/x.txt')).toBeUndefined();
  });

  it('a parent that is a symlink when the change starts: refused before anything is made', () => {
    symlinkSync(fx.outside, join(fx.root, 'd'));
    const version = { BBBBBBB: 1 };
    const change: FolderChange = {
      kind: 'mkdir',
      path: 'd/sub',
      record: { ...fileRecord('d/sub', Buffer.alloc(0), version), type: 'directory' },
      version,
      sources: [],
      local: undefined,
    };
    expect(() => writer.apply(change)).toThrow(/d is a symlink/);
    expect(readdirSync(fx.outside)).toEqual([]);
  });

  it('permission denied on a delete: the change fails, the file and its live record stay', () => {
    const local = localFile(fx.store, fx.root, 'c.txt', OLD);
    faulty.inject({ op: 'unlink', path: '/c.txt', code: 'EACCES' });
    expect(() => writer.apply(deletion(local))).toThrow(/EACCES/);
    expect(read('c.txt')).toBe(OLD.toString());
    expect(fx.store.get('c.txt')?.deleted).toBe(false);
  });

  it('a changed target is rescanned and a changed record replanned, never overwritten', () => {
    localFile(fx.store, fx.root, 'a.txt', OLD);
    const change = pull('a.txt', NEW);
    writeFileSync(join(fx.root, 'a.txt'), 'edited meanwhile');
    expect(writer.apply(change)).toBe('rescan');
    localFile(fx.store, fx.root, 'a.txt', OLD, { AAAAAAA: 2 });
    expect(writer.apply(change)).toBe('replan');
    expect(read('a.txt')).toBe(OLD.toString());
  });

  it('a save in place between the re-check and the rename is put back, never overwritten (rescan)', () => {
    const before = localFile(fx.store, fx.root, 'a.txt', OLD);
    const change = pull('a.txt', NEW);
    const saved = 'appended here just as the pull finished\n';
    // The re-check saw the recorded file; the save (same file, written in
    // place, as an editor or an append does) lands right before the rename.
    faulty.inject({
      op: 'rename',
      path: /\/a\.txt$/,
      times: 1,
      before: () => writeFileSync(join(fx.root, 'a.txt'), saved),
    });
    expect(writer.batch(() => writer.apply(change))).toBe('rescan');
    expect(read('a.txt')).toBe(saved);
    // Still recorded as before: the rescan records the save, the replan makes the conflict.
    expect(fx.store.get('a.txt')).toEqual(before);
    expect(tempsIn(fx.root)).toEqual([]);
    expect(noted).toEqual([]);
  });

  it('a file replaced by a pull leaves no second name behind', () => {
    localFile(fx.store, fx.root, 'a.txt', OLD);
    writer.apply(pull('a.txt', NEW));
    expect(readdirSync(fx.root).filter((n) => n !== '.lockstep-folder')).toEqual(['a.txt']);
    expect(statSync(join(fx.root, 'a.txt')).nlink).toBe(1);
  });

  it('moves a conflict loser aside under a numbered name when the first ones hold other content', () => {
    const local = localFile(fx.store, fx.root, 'e.txt', OLD);
    const first = conflictName('e.txt', local.mtimeNs, local.modifiedBy);
    const second = first.replace(/\.txt$/, '-2.txt');
    writeFileSync(join(fx.root, first), 'another loser');
    writeFileSync(join(fx.root, second), 'and another');
    // Read-only here for a lock held elsewhere (the index compares no mode bits).
    locked.add('e.txt');
    chmodSync(join(fx.root, 'e.txt'), 0o444);
    const out = writer.apply(pull('e.txt', NEW, { conflictCopy: first }));
    const third = first.replace(/\.txt$/, '-3.txt');
    expect(out).toMatchObject({ copy: third });
    expect(read(third)).toBe(OLD.toString());
    // The copy of a file read-only for a lock is not locked itself.
    expect(statSync(join(fx.root, third)).mode & 0o200).toBe(0o200);
    expect(read('e.txt')).toBe(NEW.toString());
    expect(replaced).toEqual([]);
  });

  it('a loser whose identical copy is already kept is removed rather than kept twice', () => {
    const local = localFile(fx.store, fx.root, 'e.txt', OLD);
    const first = conflictName('e.txt', local.mtimeNs, local.modifiedBy);
    localFile(fx.store, fx.root, first, OLD, { BBBBBBB: 5 });
    const out = writer.apply(pull('e.txt', NEW, { conflictCopy: first }));
    expect(out).toMatchObject({ copy: first });
    expect(readdirSync(fx.root).sort()).toEqual([first, 'e.txt'].sort());
    expect(replaced).toEqual(['duplicate file e.txt']);
  });

  it('a failing beforeReplace stops the change (a version that cannot be kept is not replaced)', () => {
    const local = localFile(fx.store, fx.root, 'c.txt', OLD);
    const w = new FolderWriter({
      root: fx.root,
      store: fx.store,
      queue: new SerialQueue(),
      hooks: {
        beforeReplace: () => {
          throw new Error('version store full');
        },
      },
    });
    expect(() => w.apply(deletion(local))).toThrow('version store full');
    expect(read('c.txt')).toBe(OLD.toString());
  });
});

describe('FolderWriter.setAsideLocked', () => {
  it('keeps the change as a writable conflict copy, numbered on a clash', () => {
    writeFileSync(join(fx.root, 'l.txt'), 'changed under a lock');
    chmodSync(join(fx.root, 'l.txt'), 0o444);
    const now = 1_795_543_420_000_000_000n;
    const first = conflictName('l.txt', now, 'AAAAAAA');
    writeFileSync(join(fx.root, first), 'an earlier copy');
    const copy = writer.setAsideLocked('l.txt', now, 'AAAAAAA');
    expect(copy).toBe('l.conflict-20261124-180340-AAAAAAA-2.txt');
    expect(read(copy as string)).toBe('changed under a lock');
    expect(statSync(join(fx.root, copy as string)).mode & 0o200).toBe(0o200);
    expect(existsSync(join(fx.root, 'l.txt'))).toBe(false);
    expect(writer.setAsideLocked('l.txt', now, 'AAAAAAA')).toBeUndefined();
  });

  // Regression: restoreLocked renamed and chmodded through a parent that a
  // symlink had replaced, outside the folder.
  it('never follows a parent swapped for a symlink out of the folder', () => {
    writeFileSync(join(fx.outside, 'l.txt'), 'not ours');
    chmodSync(join(fx.outside, 'l.txt'), 0o444);
    symlinkSync(fx.outside, join(fx.root, 'd'));
    expect(() => writer.setAsideLocked('d/l.txt', 0n, 'AAAAAAA')).toThrow(/d is a symlink/);
    expect(readdirSync(fx.outside)).toEqual(['l.txt']);
    expect(statSync(join(fx.outside, 'l.txt')).mode & 0o777).toBe(0o444);
  });
});

async function* chunks(...parts: string[]): AsyncIterable<Uint8Array> {
  for (const p of parts) yield Buffer.from(p);
}

describe('FolderWriter.upload and remove', () => {
  it('uploads into place, keeping the permission bits of the file it replaces', async () => {
    writeFileSync(join(fx.root, 'run.sh'), 'old');
    chmodSync(join(fx.root, 'run.sh'), 0o755);
    const out = await writer.upload('run.sh', chunks('echo ', 'hi\n'), () => undefined);
    expect(out).toEqual({ size: 8 });
    expect(read('run.sh')).toBe('echo hi\n');
    expect(statSync(join(fx.root, 'run.sh')).mode & 0o777).toBe(0o755);
    expect(replaced).toEqual(['upload file run.sh']);
    expect(bytes).toBe(8);
    expect(noted).toEqual([]); // not recorded here: the scan indexes it
  });

  it.each<[string, (f: FaultyFs) => void, RegExp]>([
    ['disk full on fsync', (f) => f.inject({ op: 'fsync', code: 'ENOSPC' }), /ENOSPC/],
    ['disk full on write', (f) => f.inject({ op: 'write', code: 'ENOSPC' }), /ENOSPC/],
    ['disk full on rename', (f) => f.inject({ op: 'rename', code: 'ENOSPC' }), /ENOSPC/],
  ])('%s: the upload fails, the old content stays, no temp file is left', async (_, arm, want) => {
    writeFileSync(join(fx.root, 'a.txt'), 'old');
    arm(faulty);
    await expect(writer.upload('a.txt', chunks('new'), () => undefined)).rejects.toThrow(want);
    expect(read('a.txt')).toBe('old');
    expect(tempsIn(fx.root)).toEqual([]);
  });

  it('a lock taken while the data came in: the recheck on the queue refuses the rename', async () => {
    writeFileSync(join(fx.root, 'a.txt'), 'old');
    let allowed = true;
    const recheck = () => {
      if (!allowed) throw new LockstepError('LOCKED', 'a.txt is locked');
    };
    async function* slow(): AsyncIterable<Uint8Array> {
      yield Buffer.from('new');
      allowed = false;
    }
    await expect(writer.upload('a.txt', slow(), recheck)).rejects.toThrow(/locked/);
    expect(read('a.txt')).toBe('old');
    expect(tempsIn(fx.root)).toEqual([]);
  });

  it('a parent swapped for a symlink right before the rename: nothing is left outside', async () => {
    mkdirSync(join(fx.root, 'd'));
    faulty.inject({
      op: 'rename',
      path: '/d/up.txt',
      times: 1,
      before: () => {
        renameSync(join(fx.root, 'd'), join(fx.outside, 'd'));
        symlinkSync(join(fx.outside, 'd'), join(fx.root, 'd'));
      },
    });
    await expect(writer.upload('d/up.txt', chunks('x'), () => undefined)).rejects.toThrow(
      /replaced/,
    );
    expect(readdirSync(join(fx.outside, 'd'))).toEqual([]);
    expect(faulty.calls.some((c) => c === `unlink ${join(fx.root, 'd', 'up.txt')}`)).toBe(true);
  });

  it.each<[string, () => void, RegExp]>([
    [
      'permission denied',
      () => faulty.inject({ op: 'unlink', path: '/a.txt', code: 'EACCES' }),
      /EACCES/,
    ],
    ['a parent that is a symlink', () => symlinkSync(fx.outside, join(fx.root, 'd')), /symlink/],
  ])('remove with %s fails and removes nothing', async (_, arm, want) => {
    writeFileSync(join(fx.root, 'a.txt'), 'kept');
    writeFileSync(join(fx.outside, 'a.txt'), 'not ours');
    arm();
    const path = want.source === 'symlink' ? 'd/a.txt' : 'a.txt';
    await expect(writer.remove(path, () => undefined)).rejects.toThrow(want);
    expect(read('a.txt')).toBe('kept');
    expect(readdirSync(fx.outside)).toEqual(['a.txt']);
  });

  it('removes a file (announced to beforeReplace) and reports a missing one', async () => {
    writeFileSync(join(fx.root, 'a.txt'), 'x');
    await writer.remove('a.txt', () => undefined);
    expect(existsSync(join(fx.root, 'a.txt'))).toBe(false);
    expect(replaced).toEqual(['remove file a.txt' satisfies `${ReplaceReason} file a.txt`]);
    await expect(writer.remove('a.txt', () => undefined)).rejects.toThrow(/No such path/);
  });
});

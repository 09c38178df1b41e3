// The named cases of the confined path layer (root.ts, fs.ts), one table at a
// time: paths not beneath the root, the root itself, a symlink or a file on
// the way, a missing parent, the directory cache (forgotten after this
// process's own rename or rmdir, closed at the end of the synchronous run),
// chmod and open never through a link, safeMode, stillThere, and the one
// known window (a held directory moved out of the folder) caught and undone
// by landedInside. The random form is confined.property.test.ts.
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { constants } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { errorCode } from '../base/errors.js';
import { FaultyFs } from '../folder/faulty-fs.js';
import { ensureParents, landedInside, openTemp, tempPath } from '../folder/temp-files.js';
import { confinedFs, safeMode, type FolderFs } from './fs.js';
import { ConfinedRoot, folderMessage } from './root.js';

let top: string;
let root: string;
let outside: string;

/** root/ holds a/b/, a/f, file, and links to outside; outside/ holds a secret and a directory. */
beforeEach(() => {
  top = mkdtempSync(join(tmpdir(), 'lockstep-confined-'));
  root = join(top, 'root');
  outside = join(top, 'outside');
  mkdirSync(join(root, 'a', 'b'), { recursive: true });
  writeFileSync(join(root, 'a', 'f'), 'inside\n');
  writeFileSync(join(root, 'file'), 'a file\n');
  mkdirSync(join(outside, 'dir'), { recursive: true });
  writeFileSync(join(outside, 'secret'), 'secret\n');
  chmodSync(join(outside, 'secret'), 0o600);
  writeFileSync(join(outside, 'dir', 'x'), 'outside x\n');
  symlinkSync(join(outside, 'dir'), join(root, 'ldir'));
  symlinkSync('../outside/dir', join(root, 'rel-ldir'));
  symlinkSync(join(outside, 'secret'), join(root, 'lfile'));
});
afterEach(() => rmSync(top, { recursive: true, force: true }));

/** The outside tree: every name with its mode, size and content. */
function outsideTree(): string[] {
  const out: string[] = [];
  const walk = (dir: string, rel: string): void => {
    for (const n of readdirSync(dir).sort()) {
      const st = lstatSync(join(dir, n));
      const content = st.isFile() ? readFileSync(join(dir, n), 'utf8') : '';
      out.push(`${rel}${n} ${st.mode.toString(8)} ${st.size} ${content}`);
      if (st.isDirectory()) walk(join(dir, n), `${rel}${n}/`);
    }
  };
  walk(top, '');
  return out.filter((e) => !e.startsWith('root'));
}

const fdCount = (): number => readdirSync('/proc/self/fd').length;
/** Lets the roots of earlier tests close what they keep (after 100 ms unused). */
const settle = () => new Promise((resolve) => setTimeout(resolve, 300));

/** Every call of the seam that takes a path, at `abs`. */
const pathCalls: [string, (f: FolderFs, abs: string) => unknown][] = [
  ['lstat', (f, abs) => f.lstat(abs)],
  ['readlink', (f, abs) => f.readlink(abs)],
  ['readdir', (f, abs) => f.readdir(abs)],
  ['unlink', (f, abs) => f.unlink(abs)],
  ['rmdir', (f, abs) => f.rmdir(abs)],
  ['mkdir', (f, abs) => f.mkdir(abs)],
  ['mkdir -p', (f, abs) => f.mkdir(`${abs}/new`, true)],
  ['symlink', (f, abs) => f.symlink('target', abs)],
  ['chmod', (f, abs) => f.chmod(abs, 0o777)],
  ['open', (f, abs) => f.close(f.open(abs, constants.O_WRONLY | constants.O_TRUNC))],
  ['create', (f, abs) => f.close(f.open(`${abs}/new`, constants.O_WRONLY | constants.O_CREAT))],
  ['rename from', (f, abs) => f.rename(abs, `${root}/file`)],
  ['rename to', (f, abs) => f.rename(`${root}/file`, abs)],
  ['link from', (f, abs) => f.link(abs, `${root}/new-name`)],
  ['link to', (f, abs) => f.link(`${root}/file`, abs)],
];

/** What each call must refuse, as a suffix of the root's path (`@` for the outside tree). */
const notBeneath = [
  '/../outside/secret',
  '/a/../../outside/secret',
  '/..',
  '/../outside/dir',
  '@/secret',
  '@/dir',
  'x', // a sibling whose name starts with the root's
  '/./a/f',
  '/a//f',
  '/a/f/',
  '/a/.',
];

describe('confinedFs refuses every path that is not beneath the root', () => {
  it.each(pathCalls.flatMap(([name, fn]) => notBeneath.map((p) => [name, p, fn] as const)))(
    '%s %s: PATH_INVALID, nothing outside touched',
    (_name, p, fn) => {
      const before = outsideTree();
      const abs = p.startsWith('@') ? `${outside}${p.slice(1)}` : `${root}${p}`;
      let thrown: unknown;
      try {
        fn(confinedFs(root), abs);
      } catch (err) {
        thrown = err;
      }
      expect(errorCode(thrown), String(thrown)).toBe('PATH_INVALID');
      expect(outsideTree()).toEqual(before);
    },
  );

  it.each(['..', 'a/..', '../outside', '.', 'a/./b', '/a', 'a//b', 'a/'])(
    'ConfinedRoot refuses %j in dir, at and withDir',
    async (rel) => {
      const r = new ConfinedRoot(root);
      expect(() => r.dir(rel)).toThrow(/is not a path in the folder/);
      expect(() => r.at(rel)).toThrow(/is not a path in the folder/);
      await expect(r.withDir(rel, (at) => fsp.readdir(at))).rejects.toThrow(
        /is not a path in the folder/,
      );
      r.flush();
    },
  );
});

describe('the root itself', () => {
  it('lstat of the root is the root directory, readdir lists it, readlink is refused', () => {
    const f = confinedFs(root);
    expect(f.lstat(root)?.ino).toBe(lstatSync(root, { bigint: true }).ino);
    expect(f.lstat(`${root}/`)?.ino).toBe(lstatSync(root, { bigint: true }).ino);
    expect(f.readdir(root).sort()).toEqual(readdirSync(root).sort());
    // Not the descriptor's own link (the root's real path).
    expect(() => f.readlink(root)).toThrow(/is the folder root, not a symlink/);
  });

  it('a symlink as the root is the administrator’s choice: followed once', () => {
    symlinkSync(root, join(top, 'root-link'));
    const f = confinedFs(join(top, 'root-link'));
    expect(f.lstat(`${top}/root-link/a/f`)?.size).toBe(7n);
    expect(() => f.lstat(`${top}/root-link/ldir/x`)).toThrow(/ldir is a symlink here/);
  });
});

describe('a symlink or a file on the way', () => {
  it.each([
    ['ldir/x', 'an absolute link to a directory outside'],
    ['rel-ldir/x', 'a relative link (..) to a directory outside'],
    ['lfile/x', 'a link to a file outside'],
    ['file/x', 'a file'],
    ['a/f/x', 'a file deeper down'],
  ])('%s (%s) is refused with PATH_INVALID by every call', (rel) => {
    const before = outsideTree();
    for (const [name, fn] of pathCalls) {
      let thrown: unknown;
      try {
        fn(confinedFs(root), `${root}/${rel}`);
      } catch (err) {
        thrown = err;
      }
      expect(errorCode(thrown), `${name}: ${String(thrown)}`).toBe('PATH_INVALID');
    }
    expect(outsideTree()).toEqual(before);
  });

  it('readdir of a link to a directory is refused; lstat and readlink see the link itself', () => {
    const f = confinedFs(root);
    expect(() => f.readdir(`${root}/ldir`)).toThrow(/ldir is a symlink here/);
    expect(f.lstat(`${root}/ldir`)?.isSymbolicLink()).toBe(true);
    expect(f.readlink(`${root}/rel-ldir`)).toBe('../outside/dir');
  });

  it('a missing parent reads as absent in lstat, and as ENOENT elsewhere', () => {
    const f = confinedFs(root);
    expect(f.lstat(`${root}/missing/x`)).toBeUndefined();
    expect(f.lstat(`${root}/a/missing/x/y`)).toBeUndefined();
    expect(f.lstat(`${root}/a/missing`)).toBeUndefined();
    expect(() => f.readlink(`${root}/missing/x`)).toThrow(
      expect.objectContaining({ code: 'ENOENT' }),
    );
    expect(() => f.readdir(`${root}/missing`)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });
});

describe('chmod and open never act through a link', () => {
  it('chmod of a symlink is refused and leaves its target alone', () => {
    const f = confinedFs(root);
    expect(() => f.chmod(`${root}/lfile`, 0o777)).toThrow(
      /lfile is a symlink; its mode is not changed/,
    );
    expect(statSync(join(outside, 'secret')).mode & 0o7777).toBe(0o600);
  });

  it('chmod and fchmod add no setuid, setgid or sticky bit, and keep those the entry had', () => {
    const f = confinedFs(root);
    const file = `${root}/a/f`;
    f.chmod(file, 0o7755);
    expect(statSync(file).mode & 0o7777).toBe(0o755);
    chmodSync(file, 0o4755);
    f.chmod(file, 0o4750);
    expect(statSync(file).mode & 0o7777).toBe(0o4750);
    f.chmod(file, 0o755);
    expect(statSync(file).mode & 0o7777).toBe(0o755);
    const fd = f.open(file, constants.O_RDONLY);
    try {
      f.fchmod(fd, 0o6711);
      expect(statSync(file).mode & 0o7777).toBe(0o711);
    } finally {
      f.close(fd);
    }
  });

  it('open never follows a symlink at the last component (O_NOFOLLOW is always added)', () => {
    const f = confinedFs(root);
    const { O_WRONLY, O_TRUNC, O_RDONLY } = constants;
    expect(() => f.open(`${root}/lfile`, O_WRONLY | O_TRUNC)).toThrow(
      expect.objectContaining({ code: 'ELOOP' }),
    );
    expect(() => f.open(`${root}/ldir`, O_RDONLY)).toThrow(
      expect.objectContaining({ code: 'ELOOP' }),
    );
    expect(readFileSync(join(outside, 'secret'), 'utf8')).toBe('secret\n');
  });

  it('link names a symlink itself, never what it points to', () => {
    const f = confinedFs(root);
    f.link(`${root}/lfile`, `${root}/second`);
    expect(lstatSync(join(root, 'second')).isSymbolicLink()).toBe(true);
    expect(statSync(join(outside, 'secret')).nlink).toBe(1);
    f.link(`${root}/file`, `${root}/a/file2`);
    expect(statSync(join(root, 'file')).nlink).toBe(2);
  });
});

describe('safeMode', () => {
  it.each([
    [0o644, 0o755, 0o755],
    [0o644, 0o4755, 0o755], // no setuid added
    [0o644, 0o2755, 0o755], // no setgid added
    [0o755, 0o1777, 0o777], // no sticky bit added
    [0o755, 0o7777, 0o777],
    [0o4755, 0o4755, 0o4755], // kept where it was
    [0o4755, 0o755, 0o755], // and may be dropped
    [0o6755, 0o2750, 0o2750],
    [0o2755, 0o6755, 0o2755],
    [0o1777, 0o1777, 0o1777],
    [0o100644, 0o100755, 0o755], // type bits of either side never pass
    [0o104755, 0o4755, 0o4755],
    [0o7777, 0o7000, 0o7000],
    [0o7777, 0, 0],
  ])('current %o, wanted %o: %o', (current, want, expected) => {
    expect(safeMode(current, want)).toBe(expected);
  });
});

describe('the directory cache', () => {
  it('is forgotten after this process renames a directory: the next call walks afresh', () => {
    const r = new ConfinedRoot(root);
    const f = confinedFs(r);
    // All in one synchronous run, where the held directories are shared.
    expect(f.lstat(`${root}/a/f`)).toBeDefined(); // holds a
    f.rename(`${root}/a`, `${root}/moved`);
    mkdirSync(join(root, 'a'));
    writeFileSync(join(root, 'a', 'new'), '');
    expect(f.lstat(`${root}/a/new`)).toBeDefined();
    expect(f.lstat(`${root}/a/f`)).toBeUndefined();
    expect(f.lstat(`${root}/moved/f`)).toBeDefined();
    r.flush();
  });

  it('is forgotten after this process renames onto a held directory, or removes one', () => {
    const r = new ConfinedRoot(root);
    const f = confinedFs(r);
    mkdirSync(join(root, 'empty'));
    mkdirSync(join(root, 'c'));
    expect(f.readdir(`${root}/empty`)).toEqual([]); // holds empty
    expect(f.readdir(`${root}/c`)).toEqual([]); // holds c
    f.rename(`${root}/a/b`, `${root}/empty`); // replaces the held empty
    f.rmdir(`${root}/c`);
    mkdirSync(join(root, 'c'));
    writeFileSync(join(root, 'c', 'z'), '');
    expect(f.lstat(`${root}/empty`)?.ino).toBe(
      lstatSync(join(root, 'empty'), { bigint: true }).ino,
    );
    expect(f.readdir(`${root}/c`)).toEqual(['z']);
    r.flush();
  });

  it('is not forgotten after someone else moves a directory; stillThere says so', () => {
    const r = new ConfinedRoot(root);
    const f = confinedFs(r);
    expect(r.stillThere('a')).toBe(true); // nothing held: the next call walks afresh
    expect(f.lstat(`${root}/a/f`)).toBeDefined(); // holds a
    expect(r.stillThere('a')).toBe(true);
    renameSync(join(root, 'a'), join(outside, 'moved')); // out of the folder
    symlinkSync(join(outside, 'dir'), join(root, 'a')); // and a link in its place
    expect(r.stillThere('a')).toBe(false);
    expect(f.parentStillThere(`${root}/a/f`)).toBe(false);
    // The held directory is where calls of this run still act (the window).
    expect(f.lstat(`${root}/a/f`)?.ino).toBe(
      lstatSync(join(outside, 'moved', 'f'), { bigint: true }).ino,
    );
    r.flush();
    // A new run walks afresh and meets the link.
    expect(() => f.lstat(`${root}/a/f`)).toThrow(/a is a symlink here/);
  });

  it('without keep, flush closes every directory it opened, and so does the end of the synchronous run', async () => {
    await settle();
    const start = fdCount();
    const r = new ConfinedRoot(root, false);
    r.dir('a/b');
    expect(fdCount()).toBe(start + 3); // the root, a, a/b
    r.dir('a');
    expect(fdCount()).toBe(start + 3); // held already
    r.flush();
    expect(fdCount()).toBe(start);
    r.at('a/b/c');
    expect(fdCount()).toBe(start + 3);
    await Promise.resolve(); // the microtask queued at the first open has run
    expect(fdCount()).toBe(start);
  });

  it('keeps directories between runs until close, or until unused for a while', async () => {
    await settle();
    const start = fdCount();
    const r = new ConfinedRoot(root);
    r.dir('a/b');
    expect(fdCount()).toBe(start + 3);
    await new Promise((resolve) => setImmediate(resolve));
    expect(fdCount()).toBe(start + 3); // kept, checked again at the next use
    expect(r.at('a/b/c')).toMatch(/^\/proc\/self\/fd\/\d+\/c$/);
    expect(fdCount()).toBe(start + 3); // no new descriptor: a stat per level
    r.close();
    expect(fdCount()).toBe(start);
    r.dir('a');
    expect(fdCount()).toBe(start + 2);
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(fdCount()).toBe(start); // closed once idle
  });

  it('withDir holds its own descriptor while it waits and closes it after, also on failure', async () => {
    await settle();
    const start = fdCount();
    const r = new ConfinedRoot(root, false);
    const names = await r.withDir('a', async (at) => {
      await new Promise((resolve) => setImmediate(resolve)); // the run's directories close
      expect(fdCount()).toBe(start + 1);
      return fsp.readdir(at);
    });
    expect(names.sort()).toEqual(['b', 'f']);
    expect(fdCount()).toBe(start);
    await expect(r.withDir('a', () => Promise.reject(new Error('failed inside')))).rejects.toThrow(
      'failed inside',
    );
    await Promise.resolve();
    expect(fdCount()).toBe(start);
  });
});

describe('the window: a held directory moved out of the folder mid-run', () => {
  it('a temp file made in it is found by landedInside and removed from there', () => {
    const r = new ConfinedRoot(root);
    const fsys = new FaultyFs(confinedFs(r));
    const abs = `${root}/a/b/new.txt`;
    const tmp = tempPath(abs);
    // The writer's sequence: parents checked (the root and a now held), then
    // the temp file created; a is moved out of the folder right before the open.
    fsys.inject({
      op: 'open',
      path: tmp,
      times: 1,
      before: () => renameSync(join(root, 'a'), join(outside, 'moved')),
    });
    expect(ensureParents(root, 'a/b/new.txt', true, fsys)).toBe(true);
    const { fd, created } = openTemp(fsys, tmp);
    expect(created).toBe(true);
    try {
      // It was made in the held directory, now outside the folder: the window.
      expect(readdirSync(join(outside, 'moved', 'b'))).toHaveLength(1);
      const st = fsys.fstat(fd);
      expect(() => landedInside('a/b/new.txt', tmp, st, true, fsys)).toThrow(
        /a directory above it was replaced .*nothing was left outside the folder/,
      );
    } finally {
      fsys.close(fd);
      r.flush();
    }
    expect(readdirSync(join(outside, 'moved', 'b'))).toEqual([]);
    expect(existsSync(join(root, 'a'))).toBe(false);
  });
});

describe('folderMessage', () => {
  it("leaves out the descriptor paths in Node's messages", () => {
    const err = Object.assign(
      new Error(
        "EACCES: permission denied, rename '/proc/self/fd/12/.lockstep-tmp-a' -> '/proc/self/fd/12/a'",
      ),
      { code: 'EACCES' },
    );
    expect(folderMessage(err)).toBe("EACCES: permission denied, rename '.lockstep-tmp-a' -> 'a'");
    expect(folderMessage(new Error('no path here'))).toBe('no path here');
  });
});

// End to end: peer sync between real `lockstep serve` processes on 127.0.0.1.
import {
  chmodSync,
  existsSync,
  mkdirSync,
  renameSync,
  rmSync,
  rmdirSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  TestCluster,
  converged,
  hashesIn,
  sha256,
  sha256File,
  tempFiles,
  treeOf,
  writeRandomFile,
  type Entry,
  type TestDevice,
} from './cluster.js';
import { FaultProxy } from './faults.js';
import { indexRow, waitFor, waitUntil } from './helpers.js';

const MiB = 1024 * 1024;

type Tree = Record<string, Entry>;

/** Problems a device reported (a sync that failed and is retried, a failed cycle). */
const problemsOf = (d: TestDevice): string[] =>
  d.allMessages().filter((m) => /^cannot sync|sync cycle failed|^bad index data/.test(m));

const fileHash = (tree: Tree, path: string): string | undefined => {
  const e = tree[path];
  return e?.type === 'file' ? e.sha256 : undefined;
};

describe('peer sync between real devices', () => {
  let cluster: TestCluster | undefined;
  const proxies: FaultProxy[] = [];

  afterEach(async () => {
    await cluster?.close();
    cluster = undefined;
    await Promise.all(proxies.splice(0).map((p) => p.close()));
  });

  const two = async (opts: { start?: boolean } = {}) => {
    cluster = await TestCluster.create(['A', 'B']);
    const a = cluster.get('A');
    const b = cluster.get('B');
    if (opts.start ?? true) await cluster.startAll();
    return { c: cluster, a, b };
  };

  it('two devices: add, edit, delete, rename, mkdir, rmdir, symlinks and the exec bit, both ways', async () => {
    const { a, b } = await two();
    const pair = [a, b];
    const fa = (p: string) => join(a.folder, p);
    const fb = (p: string) => join(b.folder, p);

    // Add on A.
    writeFileSync(fa('a.txt'), 'first version\n');
    await converged(pair, 'a.txt on B', (t) => fileHash(t, 'a.txt') === sha256('first version\n'));
    // Edit on B.
    writeFileSync(fb('a.txt'), 'second version, edited on B\n');
    await converged(
      pair,
      'the edit of a.txt on A',
      (t) => fileHash(t, 'a.txt') === sha256('second version, edited on B\n'),
    );
    // Directories, nested and empty, on A.
    mkdirSync(fa('docs/deep'), { recursive: true });
    writeFileSync(fa('docs/deep/note.md'), '# note\n');
    mkdirSync(fa('empty'));
    await converged(
      pair,
      'docs/ and empty/ on B',
      (t) => t['empty']?.type === 'dir' && fileHash(t, 'docs/deep/note.md') === sha256('# note\n'),
    );
    // Rename on B, into a directory.
    renameSync(fb('a.txt'), fb('docs/moved.txt'));
    await converged(
      pair,
      'the rename on A',
      (t) =>
        t['a.txt'] === undefined &&
        fileHash(t, 'docs/moved.txt') === sha256('second version, edited on B\n'),
    );
    // Symlinks on A: relative, dangling, and one pointing outside the folder
    // at a directory (synced as a link, never followed).
    mkdirSync(join(a.folder, '..', 'outside'));
    writeFileSync(join(a.folder, '..', 'outside', 'secret.txt'), 'not part of the folder');
    symlinkSync('docs/moved.txt', fa('link-to-moved'));
    symlinkSync('/nonexistent/nowhere', fa('dangling'));
    symlinkSync(join(a.folder, '..', 'outside'), fa('outside-link'));
    await converged(
      pair,
      'the symlinks on B',
      (t) =>
        t['link-to-moved']?.type === 'symlink' &&
        t['dangling']?.type === 'symlink' &&
        t['outside-link']?.type === 'symlink',
    );
    const links = await treeOf(b.folder);
    expect(links['link-to-moved']).toEqual({ type: 'symlink', target: 'docs/moved.txt' });
    expect(links['dangling']).toEqual({ type: 'symlink', target: '/nonexistent/nowhere' });
    expect(links['outside-link']).toEqual({
      type: 'symlink',
      target: join(a.folder, '..', 'outside'),
    });
    expect(Object.keys(links).some((p) => p.includes('secret'))).toBe(false);
    // Executable bit on B, then off again on A.
    chmodSync(fb('docs/moved.txt'), 0o755);
    await converged(pair, 'the exec bit on A', (t) => {
      const e = t['docs/moved.txt'];
      return e?.type === 'file' && e.exec;
    });
    chmodSync(fa('docs/moved.txt'), 0o644);
    await converged(pair, 'the exec bit cleared on B', (t) => {
      const e = t['docs/moved.txt'];
      return e?.type === 'file' && !e.exec;
    });
    // A symlink retargeted on B.
    unlinkSync(fb('link-to-moved'));
    symlinkSync('docs/deep/note.md', fb('link-to-moved'));
    await converged(pair, 'the retargeted link on A', (t) => {
      const e = t['link-to-moved'];
      return e?.type === 'symlink' && e.target === 'docs/deep/note.md';
    });
    // rmdir of the empty directory on B; delete of a file and a link on B.
    rmdirSync(fb('empty'));
    unlinkSync(fb('docs/deep/note.md'));
    unlinkSync(fb('dangling'));
    await converged(
      pair,
      'the deletes on A',
      (t) =>
        t['empty'] === undefined &&
        t['docs/deep/note.md'] === undefined &&
        t['dangling'] === undefined,
    );
    // A directory tree removed on A.
    rmSync(fa('docs/deep'), { recursive: true });
    const end = await converged(pair, 'the rmdir on B', (t) => t['docs/deep'] === undefined);
    expect(end).toEqual({
      docs: { type: 'dir' },
      'docs/moved.txt': {
        type: 'file',
        sha256: sha256('second version, edited on B\n'),
        size: 'second version, edited on B\n'.length,
        exec: false,
      },
      'link-to-moved': { type: 'symlink', target: 'docs/deep/note.md' },
      'outside-link': { type: 'symlink', target: join(a.folder, '..', 'outside') },
    });
    for (const d of pair) {
      expect(problemsOf(d)).toEqual([]);
      expect(await tempFiles(d.folder)).toEqual([]);
    }
  }, 60_000);

  it('type changes and directory renames: file to symlink, directory to file, file to directory', async () => {
    const { a, b } = await two();
    const pair = [a, b];
    const fa = (p: string) => join(a.folder, p);
    const fb = (p: string) => join(b.folder, p);
    writeFileSync(fa('empty.txt'), '');
    writeFileSync(fa('was-file'), 'a file that becomes a link');
    mkdirSync(fa('was-dir/inner'), { recursive: true });
    writeFileSync(fa('was-dir/inner/x.txt'), 'inside a directory that becomes a file');
    writeFileSync(fa('was-file-2'), 'a file that becomes a directory');
    mkdirSync(fa('tree/sub'), { recursive: true });
    writeFileSync(fa('tree/sub/leaf.txt'), 'a leaf');
    await converged(pair, 'the start on B', (t) => fileHash(t, 'tree/sub/leaf.txt') !== undefined);
    expect((await treeOf(b.folder))['empty.txt']).toEqual({
      type: 'file',
      sha256: sha256(''),
      size: 0,
      exec: false,
    });

    // On B: a file replaced by a symlink, a directory tree moved.
    unlinkSync(fb('was-file'));
    symlinkSync('empty.txt', fb('was-file'));
    renameSync(fb('tree'), fb('moved-tree'));
    await converged(
      pair,
      'the link and the moved tree on A',
      (t) =>
        t['was-file']?.type === 'symlink' &&
        t['tree'] === undefined &&
        fileHash(t, 'moved-tree/sub/leaf.txt') === sha256('a leaf'),
    );
    // On A: a directory replaced by a file, a file replaced by a directory.
    rmSync(fa('was-dir'), { recursive: true });
    writeFileSync(fa('was-dir'), 'now a file');
    unlinkSync(fa('was-file-2'));
    mkdirSync(fa('was-file-2'));
    writeFileSync(fa('was-file-2/child.txt'), 'in the new directory');
    const end = await converged(
      pair,
      'the replaced directory and file on B',
      (t) =>
        fileHash(t, 'was-dir') === sha256('now a file') &&
        fileHash(t, 'was-file-2/child.txt') === sha256('in the new directory'),
    );
    expect(Object.keys(end).sort()).toEqual([
      'empty.txt',
      'moved-tree',
      'moved-tree/sub',
      'moved-tree/sub/leaf.txt',
      'was-dir',
      'was-file',
      'was-file-2',
      'was-file-2/child.txt',
    ]);
    for (const d of pair) {
      expect(problemsOf(d)).toEqual([]);
      expect(await tempFiles(d.folder)).toEqual([]);
    }
  }, 60_000);

  it('offline catch-up: changes made while a device was stopped reach it, both ways', async () => {
    const { a, b } = await two();
    const pair = [a, b];
    const fa = (p: string) => join(a.folder, p);
    const fb = (p: string) => join(b.folder, p);
    writeFileSync(fa('keep.txt'), 'kept');
    writeFileSync(fa('edit.txt'), 'before the edit');
    writeFileSync(fa('gone.txt'), 'to be deleted');
    writeFileSync(fa('move-me.txt'), 'renamed while B was down');
    writeFileSync(fb('from-b.txt'), 'written on B');
    await converged(pair, 'the first sync', (t) => Object.keys(t).length === 5);

    // B is down while A changes.
    expect(await b.stop()).toBe(0);
    writeFileSync(fa('new-on-a.txt'), 'added while B was down');
    writeFileSync(fa('edit.txt'), 'edited on A while B was down');
    unlinkSync(fa('gone.txt'));
    mkdirSync(fa('dir-on-a'));
    renameSync(fa('move-me.txt'), fa('dir-on-a/moved.txt'));
    // A directory tree that comes and goes while B is down: B gets only tombstones.
    mkdirSync(fa('transient/deep'), { recursive: true });
    writeFileSync(fa('transient/deep/t.txt'), 'here for a moment');
    await waitFor('A to index transient/', () => indexRow(a.db, 'transient/deep/t.txt'));
    rmSync(fa('transient'), { recursive: true });
    await waitFor('A to index its changes', () =>
      ['gone.txt', 'transient', 'transient/deep', 'transient/deep/t.txt'].every(
        (p) => indexRow(a.db, p)?.deleted === 1,
      ),
    );
    await b.start();
    await converged(
      pair,
      "B to catch up with A's changes",
      (t) =>
        t['gone.txt'] === undefined &&
        t['move-me.txt'] === undefined &&
        fileHash(t, 'dir-on-a/moved.txt') === sha256('renamed while B was down') &&
        fileHash(t, 'new-on-a.txt') === sha256('added while B was down') &&
        fileHash(t, 'edit.txt') === sha256('edited on A while B was down'),
    );

    // Changes made on B's disk while B was stopped reach A.
    expect(await b.stop()).toBe(0);
    writeFileSync(fb('new-on-b.txt'), 'added on B while it was down');
    writeFileSync(fb('keep.txt'), 'kept, and edited on B while it was down');
    unlinkSync(fb('from-b.txt'));
    rmSync(fb('dir-on-a'), { recursive: true });
    await b.start();
    const end = await converged(
      pair,
      "A to catch up with B's offline changes",
      (t) =>
        t['from-b.txt'] === undefined &&
        t['dir-on-a'] === undefined &&
        t['dir-on-a/moved.txt'] === undefined &&
        fileHash(t, 'new-on-b.txt') === sha256('added on B while it was down') &&
        fileHash(t, 'keep.txt') === sha256('kept, and edited on B while it was down'),
    );
    expect(end['transient'], 'a directory deleted while B was down came back').toBeUndefined();
    expect(Object.keys(end).sort()).toEqual([
      'edit.txt',
      'keep.txt',
      'new-on-a.txt',
      'new-on-b.txt',
    ]);
    // The tombstones of transient/ made nothing on B, so nothing came back to A.
    for (const d of pair) expect(indexRow(d.db, 'transient')?.deleted, d.name).toBe(1);
    for (const d of pair) {
      expect(problemsOf(d)).toEqual([]);
      expect(await tempFiles(d.folder)).toEqual([]);
    }
  }, 60_000);

  it('conflict: the newer mtime wins on both devices and the loser is kept as a conflict copy', async () => {
    const { c, a, b } = await two();
    const pair = [a, b];
    writeFileSync(join(a.folder, 'doc.txt'), 'the common ancestor');
    await converged(pair, 'doc.txt on B', (t) => fileHash(t, 'doc.txt') !== undefined);
    await Promise.all(pair.map((d) => d.stop()));

    // doc.txt: edited on both, B's edit is newer. new.md: created on both, A's is newer.
    const older = new Date('2024-01-01T00:00:00Z');
    const newer = new Date('2024-01-02T03:04:05Z');
    writeFileSync(join(a.folder, 'doc.txt'), 'doc edited on A (older)');
    utimesSync(join(a.folder, 'doc.txt'), older, older);
    writeFileSync(join(b.folder, 'doc.txt'), 'doc edited on B (newer)');
    utimesSync(join(b.folder, 'doc.txt'), newer, newer);
    writeFileSync(join(a.folder, 'new.md'), 'new.md made on A (newer)');
    utimesSync(join(a.folder, 'new.md'), newer, newer);
    writeFileSync(join(b.folder, 'new.md'), 'new.md made on B (older)');
    utimesSync(join(b.folder, 'new.md'), older, older);

    await Promise.all(pair.map((d) => d.start()));
    await c.connected(pair);
    const docCopy = `doc.conflict-20240101-000000-${a.short}.txt`;
    const mdCopy = `new.conflict-20240101-000000-${b.short}.md`;
    const end = await converged(
      pair,
      'both conflicts resolved the same way on both devices',
      (t) => t[docCopy] !== undefined && t[mdCopy] !== undefined,
    );
    expect(fileHash(end, 'doc.txt')).toBe(sha256('doc edited on B (newer)'));
    expect(fileHash(end, docCopy)).toBe(sha256('doc edited on A (older)'));
    expect(fileHash(end, 'new.md')).toBe(sha256('new.md made on A (newer)'));
    expect(fileHash(end, mdCopy)).toBe(sha256('new.md made on B (older)'));
    expect(Object.keys(end).sort()).toEqual([docCopy, 'doc.txt', 'new.md', mdCopy].sort());
    for (const d of pair) {
      const hashes = hashesIn(await treeOf(d.folder));
      for (const text of [
        'doc edited on A (older)',
        'doc edited on B (newer)',
        'new.md made on A (newer)',
        'new.md made on B (older)',
      ]) {
        expect(hashes.has(sha256(text)), `${text} on ${d.name}`).toBe(true);
      }
      expect(d.allOutput()).toMatch(/conflict on (doc\.txt|new\.md)/);
      expect(problemsOf(d)).toEqual([]);
      expect(await tempFiles(d.folder)).toEqual([]);
    }
  }, 60_000);

  it('delete against edit: the edit survives on both and stale content never comes back', async () => {
    const { c, a, b } = await two();
    const pair = [a, b];
    // x.txt: deleted on A, edited on B. y.txt: edited on A, deleted on B.
    writeFileSync(join(a.folder, 'x.txt'), 'the original x');
    writeFileSync(join(a.folder, 'y.txt'), 'the original y');
    writeFileSync(join(a.folder, 'other.txt'), 'unrelated');
    await converged(pair, 'x.txt and y.txt on B', (t) => fileHash(t, 'y.txt') !== undefined);
    await Promise.all(pair.map((d) => d.stop()));
    unlinkSync(join(a.folder, 'x.txt'));
    writeFileSync(join(b.folder, 'x.txt'), 'x edited on B');
    writeFileSync(join(a.folder, 'y.txt'), 'y edited on A');
    unlinkSync(join(b.folder, 'y.txt'));

    await Promise.all(pair.map((d) => d.start()));
    await c.connected(pair);
    const editedX = sha256('x edited on B');
    const editedY = sha256('y edited on A');
    const edits = (t: Tree) => fileHash(t, 'x.txt') === editedX && fileHash(t, 'y.txt') === editedY;
    await converged(pair, 'the edits on both', edits);
    // A while later, and after restarting both, the edits are still there,
    // and the original content is nowhere.
    await new Promise((r) => setTimeout(r, 500));
    await Promise.all(pair.map((d) => d.stop()));
    await Promise.all(pair.map((d) => d.start()));
    await c.connected(pair);
    await new Promise((r) => setTimeout(r, 500));
    const end = await converged(pair, 'the edits still on both', edits);
    expect(Object.keys(end).sort()).toEqual(['other.txt', 'x.txt', 'y.txt']);
    for (const d of pair) {
      const hashes = hashesIn(await treeOf(d.folder));
      expect(hashes.has(sha256('the original x'))).toBe(false);
      expect(hashes.has(sha256('the original y'))).toBe(false);
      expect(indexRow(d.db, 'x.txt')?.deleted).toBe(0);
      expect(indexRow(d.db, 'y.txt')?.deleted).toBe(0);
      expect(problemsOf(d)).toEqual([]);
      expect(await tempFiles(d.folder)).toEqual([]);
    }
  }, 60_000);

  it('a rename of a 100 MiB file moves less than 1 MiB between the devices', async () => {
    cluster = await TestCluster.create(['A', 'B'], { mesh: false });
    const a = cluster.get('A');
    const b = cluster.get('B');
    // A reaches B through a counting proxy: B's index and every chunk A
    // fetches come through it. B dials A directly.
    const proxy = new FaultProxy(b.peerPort);
    proxies.push(proxy);
    await proxy.listen();
    await a.addPeer(b, `127.0.0.1:${proxy.port}`);
    await b.addPeer(a);
    const big = await writeRandomFile(join(b.folder, 'big.bin'), 100 * MiB);
    await cluster.startAll();
    const pair = [a, b];
    await converged(pair, 'big.bin on A', (t) => fileHash(t, 'big.bin') === big, 30_000);
    // The first sync came through the proxy (so it does sit on A's link).
    expect(proxy.down).toBeGreaterThan(100 * MiB);
    await new Promise((r) => setTimeout(r, 500));
    proxy.reset();
    renameSync(join(b.folder, 'big.bin'), join(b.folder, 'renamed.bin'));
    await waitUntil(
      'A to have renamed.bin and not big.bin',
      async () => {
        const t = await treeOf(a.folder);
        return t['big.bin'] === undefined && fileHash(t, 'renamed.bin') === big;
      },
      30_000,
      100,
    );
    await converged(pair, 'both folders equal');
    expect(proxy.up, 'bytes from A to B').toBeLessThan(MiB);
    expect(proxy.down, 'bytes from B to A').toBeLessThan(MiB);
    expect(await tempFiles(a.folder)).toEqual([]);
  }, 90_000);

  it('kill -9 of the receiver mid-transfer leaves no partial file, and the restart resumes', async () => {
    cluster = await TestCluster.create(['A', 'B'], { mesh: false });
    const a = cluster.get('A');
    const b = cluster.get('B');
    // B fetches from A through a counting proxy, to see how much the restart refetches.
    const proxy = new FaultProxy(a.peerPort);
    proxies.push(proxy);
    await proxy.listen();
    await a.addPeer(b);
    await b.addPeer(a, `127.0.0.1:${proxy.port}`);
    const size = 500 * MiB;
    const want = await writeRandomFile(join(a.folder, 'huge.bin'), size);
    await a.start();
    await waitFor('A to index huge.bin', () => indexRow(a.db, 'huge.bin')?.size === size, 30_000);
    await b.start();
    const target = join(b.folder, 'huge.bin');
    const temp = join(b.folder, '.lockstep-tmp-huge.bin');
    // Kill B once its temp file holds a good part of the file.
    const partial = await waitUntil(
      "B's temp file to fill up",
      async () => {
        const st = await stat(temp).catch(() => undefined);
        return st !== undefined && st.size >= 64 * MiB ? st.size : undefined;
      },
      30_000,
      5,
    );
    await b.stop('SIGKILL');
    expect(b.served?.child.signalCode).toBe('SIGKILL');
    expect(existsSync(target), 'a partial huge.bin at its path on B').toBe(false);
    const atKill = (await stat(temp).catch(() => undefined))?.size ?? 0;
    expect(atKill).toBeGreaterThanOrEqual(partial);
    expect(atKill, 'the kill came too late to test anything').toBeLessThan(size);

    proxy.reset();
    await b.start();
    await waitUntil(
      'B to finish huge.bin',
      async () => fileHash(await treeOf(b.folder), 'huge.bin') === want,
      60_000,
      200,
    );
    // A's folder is as written (its hash is known); B's is the same, with no temp file left.
    expect(await treeOf(b.folder)).toEqual({
      'huge.bin': { type: 'file', sha256: want, size, exec: false },
    });
    // The restart reused what the temp file held (allowing for the chunks in
    // flight when B was killed, which may be missing below the end).
    expect(proxy.down, 'bytes fetched after the restart').toBeLessThan(size - atKill + 48 * MiB);
  }, 120_000);

  it('a 256 MiB file edited in place (first and last MiB) while it is being sent never shows torn on the receiver and ends identical', async () => {
    const { a, b } = await two({ start: false });
    const size = 256 * MiB;
    const src = join(a.folder, 'moving.bin');
    const versions = new Set([await writeRandomFile(src, size)]);
    await a.start();
    await waitFor(
      'A to index moving.bin',
      () => indexRow(a.db, 'moving.bin')?.size === size,
      30_000,
    );
    await b.start();

    // Watch B's target the whole time: whenever it is there, it must be a
    // version A had complete at some point.
    const target = join(b.folder, 'moving.bin');
    const seen: string[] = [];
    let watching = true;
    const watcher = (async () => {
      let last = '';
      while (watching) {
        const st = await stat(target, { bigint: true }).catch(() => undefined);
        const key = st ? `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}` : '';
        if (st && key !== last) {
          // Read through one descriptor: a rename over the target meanwhile does not tear it.
          const h = await sha256File(target).catch(() => undefined);
          if (h !== undefined) {
            last = key;
            seen.push(h);
          }
        }
        await new Promise((r) => setTimeout(r, 10));
      }
    })();

    await waitUntil(
      'B to start pulling moving.bin',
      async () =>
        ((await stat(join(b.folder, '.lockstep-tmp-moving.bin')).catch(() => undefined))?.size ??
          0) > 0,
      30_000,
      5,
    );
    const fh = await open(src, 'r+');
    try {
      for (let round = 0; round < 3; round++) {
        await fh.write(Buffer.alloc(MiB, 0x41 + round), 0, MiB, 0);
        versions.add(await sha256File(src));
        await fh.write(Buffer.alloc(MiB, 0x61 + round), 0, MiB, size - MiB);
        versions.add(await sha256File(src));
        await new Promise((r) => setTimeout(r, 300));
      }
    } finally {
      await fh.close();
    }
    const final = await sha256File(src);
    try {
      await converged(
        [a, b],
        'both to hold the final version',
        (t) => fileHash(t, 'moving.bin') === final,
        60_000,
      );
    } finally {
      watching = false;
      await watcher;
    }
    expect(seen.length).toBeGreaterThan(0);
    for (const h of seen)
      expect(versions.has(h), `B showed a version A never had: ${h}`).toBe(true);
    expect(seen.at(-1)).toBe(final);
    expect(await tempFiles(b.folder)).toEqual([]);
  }, 120_000);

  it('three devices, full mesh: creates and deletes reach all, and a stopped device catches up', async () => {
    cluster = await TestCluster.create(['A', 'B', 'C']);
    const [a, b, c] = ['A', 'B', 'C'].map((n) => cluster?.get(n) as TestDevice) as [
      TestDevice,
      TestDevice,
      TestDevice,
    ];
    await cluster.startAll();
    const all = [a, b, c];
    for (const d of all) writeFileSync(join(d.folder, `from-${d.name}.txt`), `made on ${d.name}`);
    await converged(all, 'each file on every device', (t) =>
      all.every((d) => fileHash(t, `from-${d.name}.txt`) === sha256(`made on ${d.name}`)),
    );
    unlinkSync(join(c.folder, 'from-A.txt'));
    await converged(all, "C's delete on every device", (t) => t['from-A.txt'] === undefined);

    expect(await c.stop()).toBe(0);
    writeFileSync(join(a.folder, 'while-c-was-away.txt'), 'A wrote this while C was down');
    writeFileSync(join(a.folder, 'from-B.txt'), 'from-B.txt edited on A');
    unlinkSync(join(b.folder, 'from-C.txt'));
    await converged(
      [a, b],
      "A's and B's changes on both while C is down",
      (t) =>
        fileHash(t, 'while-c-was-away.txt') === sha256('A wrote this while C was down') &&
        fileHash(t, 'from-B.txt') === sha256('from-B.txt edited on A') &&
        t['from-C.txt'] === undefined,
    );
    await c.start();
    // C comes back with its old from-C.txt: it is deleted there, not resurrected.
    const end = await converged(
      all,
      'C to catch up',
      (t) =>
        t['while-c-was-away.txt'] !== undefined &&
        t['from-C.txt'] === undefined &&
        fileHash(t, 'from-B.txt') === sha256('from-B.txt edited on A'),
    );
    expect(Object.keys(end).sort()).toEqual(['from-B.txt', 'while-c-was-away.txt']);

    // A conflict between A and B, seen by C too: one winner, one copy, everywhere.
    await Promise.all([a.stop(), b.stop()]);
    const older = new Date('2024-05-06T07:08:09Z');
    const newer = new Date('2024-05-07T00:00:00Z');
    writeFileSync(join(a.folder, 'from-B.txt'), 'edited on A, older');
    utimesSync(join(a.folder, 'from-B.txt'), older, older);
    writeFileSync(join(b.folder, 'from-B.txt'), 'edited on B, newer');
    utimesSync(join(b.folder, 'from-B.txt'), newer, newer);
    await Promise.all([a.start(), b.start()]);
    const copy = `from-B.conflict-20240506-070809-${a.short}.txt`;
    const after = await converged(all, 'the conflict resolved on all three', (t) => {
      return fileHash(t, 'from-B.txt') === sha256('edited on B, newer') && t[copy] !== undefined;
    });
    expect(fileHash(after, copy)).toBe(sha256('edited on A, older'));
    expect(Object.keys(after).sort()).toEqual([copy, 'from-B.txt', 'while-c-was-away.txt']);
    for (const d of all) {
      expect(problemsOf(d)).toEqual([]);
      expect(await tempFiles(d.folder)).toEqual([]);
    }
  }, 60_000);

  it('peer add while both devices run: they connect and sync', async () => {
    cluster = await TestCluster.create(['A', 'B'], { mesh: false });
    const a = cluster.get('A');
    const b = cluster.get('B');
    writeFileSync(join(a.folder, 'on-a.txt'), 'was on A before peering');
    writeFileSync(join(b.folder, 'on-b.txt'), 'was on B before peering');
    await Promise.all([a.start(), b.start()]);
    await new Promise((r) => setTimeout(r, 300));
    expect(a.output()).not.toMatch(/connected to peer/);
    await Promise.all([a.addPeer(b), b.addPeer(a)]);
    await cluster.connected([a, b]);
    await converged(
      [a, b],
      'both files on both devices',
      (t) =>
        fileHash(t, 'on-a.txt') === sha256('was on A before peering') &&
        fileHash(t, 'on-b.txt') === sha256('was on B before peering'),
    );
    writeFileSync(join(b.folder, 'after.txt'), 'written after peering');
    await converged([a, b], 'a new file after peering', (t) => t['after.txt'] !== undefined);
    for (const d of [a, b]) expect(problemsOf(d)).toEqual([]);
  }, 60_000);
});

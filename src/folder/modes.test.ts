// Modes Lockstep applies never carry a setuid, setgid or sticky bit the file
// did not have (issue 21): run as root, such a bit from a peer would make a
// folder user's program run as root. newMode is what a pulled file's temp
// file gets (sync/assemble.ts) and what a peer's chmod asks for; safeMode is
// what the confined filesystem's chmod and fchmod apply; lock enforcement
// goes through fchmod.
import { chmodSync, closeSync, openSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SerialQueue } from '../base/serial-queue.js';
import type { FileRecord } from '../core/record.js';
import { confinedFs, safeMode } from '../confined/fs.js';
import { fileRecord, localFile, makeFixture, type Fixture } from '../testing/folder.js';
import { FolderWriter, newMode } from './writer.js';

const DATA = Buffer.from('#!/bin/sh\necho hello\n');
const SPECIAL = 0o7000;

/** A record of a file with permission bits `mode`. */
const rec = (mode: number): FileRecord => ({ ...fileRecord('tool', DATA, { BBBBBBB: 1 }), mode });

describe('newMode: the mode of content pulled from a peer', () => {
  it.each([
    ['no local file, a setuid record', undefined, 0o4755, 0o755],
    ['no local file, every special bit', undefined, 0o7777, 0o755],
    ['a local 0644 file, a setuid record', 0o644, 0o4755, 0o755],
    ['a local 0600 file, a setgid record', 0o600, 0o2711, 0o711],
    ['a local setuid file, a plain record: the new content is not setuid', 0o4755, 0o755, 0o755],
    ['a local setgid and sticky file, a setuid record', 0o3755, 0o4755, 0o755],
  ])('%s', (_what, local, remote, want) => {
    const got = newMode(local === undefined ? undefined : rec(local), rec(remote));
    expect(got.toString(8)).toBe(want.toString(8));
    expect(got & SPECIAL).toBe(0);
  });
});

describe('safeMode: what chmod through the confined filesystem applies', () => {
  // Octal: the mode asked for, the file's mode, the mode applied.
  it.each([
    ['4755', '644', '755'],
    ['7777', '644', '777'],
    ['6755', '2755', '2755'],
    ['4555', '4755', '4555'],
    ['555', '4755', '555'],
  ])('asked for %s of a file of mode %s: %s', (want, current, got) => {
    expect(safeMode(parseInt(current, 8), parseInt(want, 8)).toString(8)).toBe(got);
  });
});

describe('on disk: a peer chmod, lock enforcement, chmod and fchmod never add a special bit', () => {
  let fx: Fixture;
  let writer: FolderWriter;
  beforeEach(() => {
    fx = makeFixture();
    writer = new FolderWriter({ root: fx.root, store: fx.store, queue: new SerialQueue() });
  });
  afterEach(() => fx.close());
  const modeOf = (path: string) => statSync(join(fx.root, path)).mode & 0o7777;

  /** A local file `path` of mode `mode`, recorded as a scan would. */
  function local(path: string, mode: number): FileRecord {
    writeFileSync(join(fx.root, path), DATA);
    chmodSync(join(fx.root, path), mode);
    return localFile(fx.store, fx.root, path, DATA);
  }

  it("a peer's chmod record with mode 04755 arrives as 0755", () => {
    const mine = local('tool', 0o644);
    const version = { ...mine.version, BBBBBBB: 1 };
    const out = writer.apply({
      kind: 'chmod',
      path: 'tool',
      record: { ...mine, mode: 0o4755, version },
      version,
      sources: ['BBBBBBB'],
      local: mine,
    });
    expect(typeof out).toBe('object');
    expect(modeOf('tool').toString(8)).toBe('755');
  });

  it("a peer's chmod keeps a special bit the file has here, and adds none", () => {
    const mine = local('tool', 0o4744);
    const version = { ...mine.version, BBBBBBB: 1 };
    writer.apply({
      kind: 'chmod',
      path: 'tool',
      record: { ...mine, mode: 0o6755, version },
      version,
      sources: ['BBBBBBB'],
      local: mine,
    });
    expect(modeOf('tool').toString(8)).toBe('4755');
  });

  it('a lock and its release on a 0755 file: 0555, then 0755; a setuid file keeps only its own bit', () => {
    local('plain', 0o755);
    local('suid', 0o4755);
    expect(writer.setReadOnly('plain', true)).toBe(true);
    expect(modeOf('plain').toString(8)).toBe('555');
    expect(writer.setReadOnly('plain', false)).toBe(true);
    expect(modeOf('plain').toString(8)).toBe('755');
    writer.setReadOnly('suid', true);
    expect(modeOf('suid').toString(8)).toBe('4555');
    writer.setReadOnly('suid', false);
    expect(modeOf('suid').toString(8)).toBe('4755');
  });

  it('chmod and fchmod of the confined filesystem: 04755, 02755 and 01755 asked of a 0644 file give 0755', () => {
    const fsys = confinedFs(fx.root);
    for (const want of [0o4755, 0o2755, 0o1755]) {
      local('a', 0o644);
      fsys.chmod(join(fx.root, 'a'), want);
      expect(modeOf('a').toString(8), want.toString(8)).toBe('755');
      chmodSync(join(fx.root, 'a'), 0o644);
      const fd = openSync(join(fx.root, 'a'), 'r');
      try {
        fsys.fchmod(fd, want);
      } finally {
        closeSync(fd);
      }
      expect(modeOf('a').toString(8), want.toString(8)).toBe('755');
    }
  });
});

import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TreeMatcher, type Tree } from './tree.js';

const rules = { own: () => false, partial: (rel: string) => rel.endsWith('.tmp') };
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('TreeMatcher', () => {
  it('sees a file added to a directory whose mtime was then set back (as rsync does)', async () => {
    const root = fs.mkdtempSync(join(tmpdir(), 'tree-test-'));
    dirs.push(root);
    const old = new Date('2020-01-01T00:00:00Z');
    const fileTime = new Date('2021-01-01T00:00:00Z');
    fs.mkdirSync(join(root, 'd'));
    fs.utimesSync(join(root, 'd'), old, old);
    const expected: Tree = new Map([
      ['d', { type: 'directory', size: 0, mtimeNs: 0n }],
      ['d/f', { type: 'file', size: 3, mtimeNs: BigInt(fileTime.getTime()) * 1_000_000n }],
    ]);
    const m = new TreeMatcher(expected, rules);
    await new Promise((r) => setTimeout(r, 100));
    expect(m.look(root)).toMatchObject({ done: false, missing: 1 });
    fs.writeFileSync(join(root, 'd', 'f'), 'abc');
    fs.utimesSync(join(root, 'd', 'f'), fileTime, fileTime);
    fs.utimesSync(join(root, 'd'), old, old);
    expect(m.look(root)).toMatchObject({ done: true, missing: 0 });
  });

  it('waits while a temp file is there', () => {
    const root = fs.mkdtempSync(join(tmpdir(), 'tree-test-'));
    dirs.push(root);
    fs.writeFileSync(join(root, 'x.tmp'), '');
    expect(new TreeMatcher(new Map(), rules).look(root)).toMatchObject({ done: false, partial: 1 });
  });
});

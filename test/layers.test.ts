/**
 * The layering of src/ (the `layers` table in eslint.config.js): the table
 * names every folder, has no cycle, and every import between folders in the
 * code is one the table allows (ESLint refuses the others file by file; this
 * checks the whole picture, so a folder nobody listed cannot slip through).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { layers } from '../eslint.config.js';

const SRC = fileURLToPath(new URL('../src/', import.meta.url));
const table = layers as Record<string, readonly string[]>;

/** The folders of src/ each folder's product code imports (tests left out). */
function importsByFolder(): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const folder of readdirSync(SRC, { withFileTypes: true })) {
    if (!folder.isDirectory()) continue;
    const deps = new Set<string>();
    const files = readdirSync(join(SRC, folder.name), { recursive: true, encoding: 'utf8' });
    for (const file of files) {
      if (!file.endsWith('.ts') || file.endsWith('.test.ts')) continue;
      const text = readFileSync(join(SRC, folder.name, file), 'utf8');
      for (const m of text.matchAll(/(?:from|import\()\s*'((?:\.\.\/)+)([a-z-]+)\//g)) {
        const depth = (m[1] as string).length / 3;
        const nested = file.split('/').length - 1;
        // Only paths that climb out of this folder into a sibling folder of src/.
        if (depth === nested + 1) deps.add(m[2] as string);
      }
    }
    out.set(folder.name, deps);
  }
  return out;
}

/** A cycle in `graph` as a list of nodes (first repeated last), or undefined. */
export function findCycle(graph: Record<string, readonly string[]>): string[] | undefined {
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (n: string): string[] | undefined => {
    if (state.get(n) === 'done') return undefined;
    if (state.get(n) === 'open') return [...path.slice(path.indexOf(n)), n];
    state.set(n, 'open');
    path.push(n);
    for (const d of graph[n] ?? []) {
      const c = visit(d);
      if (c) return c;
    }
    path.pop();
    state.set(n, 'done');
    return undefined;
  };
  for (const n of Object.keys(graph)) {
    const c = visit(n);
    if (c) return c;
  }
  return undefined;
}

describe('layers of src/', () => {
  it('finds a cycle when there is one, and none in a tree', () => {
    expect(findCycle({ a: ['b'], b: ['c'], c: ['a'] })).toEqual(['a', 'b', 'c', 'a']);
    expect(findCycle({ a: ['b', 'c'], b: ['c'], c: [] })).toBeUndefined();
  });

  it('the table has no cycle', () => {
    expect(findCycle(table)).toBeUndefined();
  });

  it('every folder of src/ has a line in the table, and names only folders that exist', () => {
    const folders = [...importsByFolder().keys()].sort();
    expect(Object.keys(table).sort()).toEqual(folders);
    for (const deps of Object.values(table)) for (const d of deps) expect(folders).toContain(d);
  });

  it('the code imports only what the table allows, so the imports have no cycle either', () => {
    const actual = importsByFolder();
    const refused: string[] = [];
    for (const [folder, deps] of actual) {
      for (const d of deps)
        if (!(table[folder] ?? []).includes(d)) refused.push(`${folder} -> ${d}`);
    }
    expect(refused).toEqual([]);
    const graph = Object.fromEntries([...actual].map(([k, v]) => [k, [...v]]));
    expect(findCycle(graph)).toBeUndefined();
  });
});

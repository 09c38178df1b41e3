import { describe, expect, it } from 'vitest';
import { coalesce, type ChangedPath } from './coalesce.js';

/** Shorthand: 'x' is a plain change, 'x/**' a subtree change ('/**' alone is the root subtree). */
function parse(specs: string[]): ChangedPath[] {
  return specs.map((s) =>
    s.endsWith('/**') ? { path: s.slice(0, -3), subtree: true } : { path: s, subtree: false },
  );
}

const cases: { name: string; input: string[]; output: string[] }[] = [
  { name: 'empty input', input: [], output: [] },
  { name: 'a single plain change', input: ['a'], output: ['a'] },
  { name: 'duplicates merged', input: ['a', 'b', 'a', 'a'], output: ['a', 'b'] },
  { name: 'subtree wins over plain (plain first)', input: ['a', 'a/**'], output: ['a/**'] },
  { name: 'subtree wins over plain (subtree first)', input: ['a/**', 'a'], output: ['a/**'] },
  { name: 'child under a subtree dropped', input: ['a/b', 'a/**'], output: ['a/**'] },
  { name: 'deep descendant dropped', input: ['a/**', 'a/b/c/d', 'a/b/**'], output: ['a/**'] },
  { name: 'a plain parent does not cover its child', input: ['a', 'a/b'], output: ['a', 'a/b'] },
  {
    name: 'a sibling with a shared prefix is not covered',
    input: ['a/**', 'ab', 'a-b', 'a.b/c'],
    output: ['a/**', 'a-b', 'a.b/c', 'ab'],
  },
  { name: 'root subtree covers everything', input: ['x', '/**', 'y/z/**', ''], output: ['/**'] },
  { name: 'plain root covers nothing', input: ['', 'x'], output: ['', 'x'] },
  {
    name: 'sorted in code-unit order',
    input: ['b', 'B', 'a/c', 'a', 'é'],
    output: ['B', 'a', 'a/c', 'b', 'é'],
  },
  {
    name: 'independent subtrees kept',
    input: ['p/q/**', 'p/r', 'p/q/s', 's/**', 's/t/u'],
    output: ['p/q/**', 'p/r', 's/**'],
  },
];

describe('coalesce', () => {
  it.each(cases)('$name', ({ input, output }) => {
    expect(coalesce(parse(input))).toEqual(parse(output));
  });

  it('does not modify its input', () => {
    const input = parse(['b', 'a/**', 'a/x']);
    const copy = structuredClone(input);
    coalesce(input);
    expect(input).toEqual(copy);
  });

  it('is idempotent', () => {
    const once = coalesce(parse(['c/d', 'c/**', 'a', 'b/**', 'b/e', 'a']));
    expect(coalesce(once)).toEqual(once);
  });
});

import { describe, expect, it } from 'vitest';
import { IgnoreRules } from './ignore-rules.js';

describe('IgnoreRules', () => {
  it("without rules ignores only Lockstep's own files", () => {
    for (const text of ['', '\n\n', '# just a comment\n   \n#another\r\n']) {
      const r = IgnoreRules.fromText(text);
      expect(r.ignores('a.txt', false)).toBe(false);
      expect(r.ignores('d', true)).toBe(false);
      expect(r.ignores('.lockstep-folder', false)).toBe(true);
      expect(r.ignores('d/.lockstep-tmp-x', false)).toBe(true);
    }
  });

  it('treats an indented hash and an escaped one as rules, as gitignore does', () => {
    expect(IgnoreRules.fromText('\\#x\n').ignores('#x', false)).toBe(true);
    expect(IgnoreRules.fromText(' #x\n').ignores(' #x', false)).toBe(true);
  });

  it("answers the same after many lookups (the matcher's cache is renewed)", () => {
    const r = IgnoreRules.fromText('*.tmp\nbuild/\n!keep.tmp\n');
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 5000; i++) {
        expect(r.ignores(`d${i % 50}/f${i}.tmp`, false)).toBe(true);
        expect(r.ignores(`d${i % 50}/f${i}.txt`, false)).toBe(false);
      }
      expect(r.ignores('keep.tmp', false)).toBe(false);
      expect(r.ignores('build', true)).toBe(true);
      expect(r.ignores('build', false)).toBe(false);
      expect(r.ignores('build/x.c', false)).toBe(true);
    }
  });
});

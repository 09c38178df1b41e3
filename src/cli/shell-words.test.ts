import { describe, expect, it } from 'vitest';
import { rewriteServerWords } from './shell.js';
import { splitWords } from './shell-words.js';

describe('splitWords()', () => {
  it.each([
    ['ls', ['ls']],
    ['  lock   3  ', ['lock', '3']],
    ['lock 3 --reason "big edit"', ['lock', '3', '--reason', 'big edit']],
    ["lock 'a b.txt'", ['lock', 'a b.txt']],
    ['lock a\\ b.txt', ['lock', 'a b.txt']],
    ['lock "say \\"hi\\""', ['lock', 'say "hi"']],
    ['lock ""', ['lock', '']],
    ['', []],
  ])('splits %j', (line, words) => {
    expect(splitWords(line)).toEqual(words);
  });

  it('refuses an unterminated quote', () => {
    expect(() => splitWords('lock "a')).toThrow(/Unterminated " quote/);
  });
});

describe("rewriteServerWords(): the prototype's words", () => {
  it.each([
    [['server'], ['ls']],
    [
      ['server', '--json'],
      ['ls', '--json'],
    ],
    [
      ['server', 'lock', '2'],
      ['lock', '2'],
    ],
    [
      ['server', 'unlock', '2', '--force'],
      ['unlock', '2', '--force'],
    ],
    [
      ['server', 'docs'],
      ['ls', 'docs'],
    ],
    [
      ['ls', '-h'],
      ['ls', '-h'],
    ],
    [
      ['lock', '2'],
      ['lock', '2'],
    ],
  ])('%j runs %j', (words, run) => {
    expect(rewriteServerWords(words)).toEqual(run);
  });
});

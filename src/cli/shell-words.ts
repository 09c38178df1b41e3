/**
 * Splits a line typed at `lockstep shell` into words the way a POSIX shell
 * would for simple cases: blanks separate, single quotes keep everything,
 * double quotes keep everything but `\"` and `\\`, a backslash escapes the
 * next character.
 */
import { LockstepError } from '../base/errors.js';

/**
 * Splits `line` into words.
 *
 * @throws LockstepError `USAGE` for an unterminated quote
 * @example
 * splitWords(`lock 3 --reason "big edit"`) // ['lock', '3', '--reason', 'big edit']
 */
export function splitWords(line: string): string[] {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: "'" | '"' | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i] as string;
    if (quote === "'") {
      if (c === "'") quote = undefined;
      else cur += c;
    } else if (quote === '"') {
      if (c === '"') quote = undefined;
      else if (c === '\\' && (line[i + 1] === '"' || line[i + 1] === '\\')) cur += line[++i];
      else cur += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (c === '\\' && i + 1 < line.length) {
      cur += line[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (quote !== undefined) throw new LockstepError('USAGE', `Unterminated ${quote} quote`);
  if (inWord) words.push(cur);
  return words;
}

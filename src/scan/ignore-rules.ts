/**
 * Ignore rules: `.lockstepignore` at the folder root, in gitignore syntax,
 * plus Lockstep's own files, which are always ignored.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ignore, { type Ignore } from 'ignore';
import { IGNORE_FILE, isInternalPath } from '../core/path.js';
import { errorCode } from '../base/errors.js';

/** A compiled set of ignore rules for one folder. */
export class IgnoreRules {
  private matcher: Ignore;
  /** The text the rules were compiled from ('' when there is no file). */
  text: string;

  private constructor(text: string) {
    this.text = text;
    this.matcher = ignore({ allowRelativePaths: false }).add(text);
  }

  /** Rules from a text in gitignore syntax. */
  static fromText(text: string): IgnoreRules {
    return new IgnoreRules(text);
  }

  /** Reads `.lockstepignore` from the folder root; no file means no rules. */
  static load(root: string): IgnoreRules {
    try {
      return new IgnoreRules(readFileSync(join(root, IGNORE_FILE), 'utf8'));
    } catch (err) {
      if (errorCode(err) === 'ENOENT') return new IgnoreRules('');
      throw new Error(`Cannot read ${IGNORE_FILE} in ${root}: ${String(err)}`, { cause: err });
    }
  }

  /**
   * Reports whether the folder-relative path is ignored. `isDir` matters for
   * rules that end in `/`, which match directories only.
   */
  ignores(relPath: string, isDir: boolean): boolean {
    if (isInternalPath(relPath)) return true;
    return this.matcher.ignores(isDir ? `${relPath}/` : relPath);
  }
}

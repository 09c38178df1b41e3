/**
 * Ignore rules: `.lockstepignore` at the folder root, in gitignore syntax,
 * plus Lockstep's own files, which are always ignored.
 */
import { closeSync, constants, fstatSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import ignore, { type Ignore } from 'ignore';
import { IGNORE_FILE, isInternalPath } from '../core/path.js';
import { errorCode } from '../base/errors.js';

/**
 * Lookups after which the matcher is compiled afresh: it caches the answer
 * for every path it is asked about, which for a scan of a big folder would
 * be every path of it, kept until the rules are next reloaded.
 */
const LOOKUPS_PER_MATCHER = 8192;

/** A compiled set of ignore rules for one folder. */
export class IgnoreRules {
  /** Undefined when the text holds no rules (blank and comment lines only). */
  private matcher: Ignore | undefined;
  private lookups = 0;
  /** The text the rules were compiled from ('' when there is no file). */
  text: string;

  private constructor(text: string) {
    this.text = text;
    // As the matcher reads it: a line is a rule unless blank or a comment.
    const rules = text.split(/\r?\n/).some((l) => l.trim() !== '' && !l.startsWith('#'));
    this.matcher = rules ? compile(text) : undefined;
  }

  /** Rules from a text in gitignore syntax. */
  static fromText(text: string): IgnoreRules {
    return new IgnoreRules(text);
  }

  /**
   * Reads `.lockstepignore` from the folder root; no file means no rules.
   * Never through a symlink (a link there could name any file on the
   * server), never blocking on a FIFO.
   */
  static load(root: string): IgnoreRules {
    let fd: number | undefined;
    try {
      const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK } = constants;
      fd = openSync(join(root, IGNORE_FILE), O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
      if (!fstatSync(fd).isFile()) {
        throw new Error(`${IGNORE_FILE} is not a regular file`);
      }
      return new IgnoreRules(readFileSync(fd, 'utf8'));
    } catch (err) {
      if (errorCode(err) === 'ENOENT') return new IgnoreRules('');
      if (errorCode(err) === 'ELOOP') {
        throw new Error(
          `${IGNORE_FILE} in ${root} is a symlink; it is not followed: make it a file`,
          {
            cause: err,
          },
        );
      }
      throw new Error(`Cannot read ${IGNORE_FILE} in ${root}: ${String(err)}`, { cause: err });
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }

  /**
   * Reports whether the folder-relative path is ignored. `isDir` matters for
   * rules that end in `/`, which match directories only.
   */
  ignores(relPath: string, isDir: boolean): boolean {
    if (isInternalPath(relPath)) return true;
    if (this.matcher === undefined) return false;
    if (++this.lookups > LOOKUPS_PER_MATCHER) {
      this.matcher = compile(this.text);
      this.lookups = 1;
    }
    return this.matcher.ignores(isDir ? `${relPath}/` : relPath);
  }
}

function compile(text: string): Ignore {
  return ignore({ allowRelativePaths: false }).add(text);
}

/**
 * A filesystem that fails chosen calls on chosen paths with chosen errors
 * (Syncthing's errorfs idea), or runs a chosen action right before them (a
 * parent directory swapped for a symlink between a check and the act). It
 * wraps another {@link FolderFs} (the real, confined one), so everything
 * not chosen happens for real. For tests of the writer and the puller.
 */
import type { FolderFs, FsOp } from '../confined/fs.js';

/** Which calls a {@link FaultRule} applies to. */
export interface FaultMatch {
  /** The call; every call when absent. */
  readonly op?: FsOp;
  /** The path (for rename: either path) ends with this, or matches it; any path when absent. */
  readonly path?: string | RegExp;
  /** How many matching calls it applies to; every one when absent. */
  readonly times?: number;
}

/** One fault: fail with `code`, or run `before` and go on. */
export type FaultRule = FaultMatch &
  (
    | { readonly code: string; readonly before?: never }
    | { readonly before: () => void; readonly code?: never }
  );

/** An error as Node's fs throws it: `code`, `syscall` and `path` set. */
export function fsError(code: string, op: string, path: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: injected fault, ${op} '${path}'`), {
    code,
    syscall: op,
    path,
  });
}

/** A {@link FolderFs} with faults injected by rules (see {@link FaultyFs.inject}). */
export class FaultyFs implements FolderFs {
  private rules: { rule: FaultRule; left: number }[] = [];
  /** The path each open descriptor was opened at, so rules on a path match its writes too. */
  private readonly fds = new Map<number, string>();
  /** Every call made, as `op path` (for rename `op from -> to`; for a descriptor, the path it was opened at), in order. */
  readonly calls: string[] = [];

  constructor(private readonly inner: FolderFs) {}

  /** Adds a rule; rules are tried in the order they were added. */
  inject(rule: FaultRule): this {
    this.rules.push({ rule, left: rule.times ?? Infinity });
    return this;
  }

  /** Removes every rule. */
  heal(): void {
    this.rules = [];
  }

  private at(op: FsOp, ...paths: string[]): void {
    this.calls.push(`${op} ${paths.join(' -> ')}`);
    for (const r of this.rules) {
      const { rule } = r;
      if (r.left <= 0 || (rule.op !== undefined && rule.op !== op)) continue;
      const p = rule.path;
      const hit =
        p === undefined || paths.some((x) => (typeof p === 'string' ? x.endsWith(p) : p.test(x)));
      if (!hit) continue;
      r.left--;
      if (rule.before !== undefined) rule.before();
      else throw fsError(rule.code, op, paths[0] ?? '');
    }
  }

  lstat(path: string) {
    this.at('lstat', path);
    return this.inner.lstat(path);
  }
  fstat(fd: number) {
    this.at('fstat', this.pathOf(fd));
    return this.inner.fstat(fd);
  }
  readlink(path: string) {
    this.at('readlink', path);
    return this.inner.readlink(path);
  }
  readdir(path: string) {
    this.at('readdir', path);
    return this.inner.readdir(path);
  }
  parentStillThere(path: string) {
    this.at('parentStillThere', path);
    return this.inner.parentStillThere(path);
  }
  rename(from: string, to: string) {
    this.at('rename', from, to);
    this.inner.rename(from, to);
  }
  link(from: string, to: string) {
    this.at('link', from, to);
    this.inner.link(from, to);
  }
  unlink(path: string) {
    this.at('unlink', path);
    this.inner.unlink(path);
  }
  rmdir(path: string) {
    this.at('rmdir', path);
    this.inner.rmdir(path);
  }
  mkdir(path: string, recursive?: boolean) {
    this.at('mkdir', path);
    this.inner.mkdir(path, recursive);
  }
  symlink(target: string, path: string) {
    this.at('symlink', path);
    this.inner.symlink(target, path);
  }
  chmod(path: string, mode: number) {
    this.at('chmod', path);
    this.inner.chmod(path, mode);
  }
  fchmod(fd: number, mode: number) {
    this.at('fchmod', this.pathOf(fd));
    this.inner.fchmod(fd, mode);
  }
  open(path: string, flags: number, mode?: number) {
    this.at('open', path);
    const fd = this.inner.open(path, flags, mode);
    this.fds.set(fd, path);
    return fd;
  }
  async write(fd: number, data: Uint8Array, position: number) {
    this.at('write', this.pathOf(fd));
    await this.inner.write(fd, data, position);
  }
  async fsync(fd: number) {
    this.at('fsync', this.pathOf(fd));
    await this.inner.fsync(fd);
  }
  close(fd: number) {
    this.at('close', this.pathOf(fd));
    this.fds.delete(fd);
    this.inner.close(fd);
  }

  private pathOf(fd: number): string {
    return this.fds.get(fd) ?? `#${fd}`;
  }
}

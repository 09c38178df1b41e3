/**
 * Fixtures for in-process tests of the folder writer and the puller: a
 * folder and an index in a temporary directory, records of real files, and
 * a logger that keeps what it is told.
 */
import { lstatSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../base/log.js';
import type { FileRecord } from '../core/record.js';
import { hashHex } from '../scan/chunker.js';
import { IndexStore } from '../store/index-store.js';

/** This device in the fixtures. */
export const SELF = 'AAAAAAA-BBBBBBB-CCCCCCC-DDDDDDD-EEEEEEE-FFFFFFF-GGGGGGG-HHHHHHH';
/** The peer in the fixtures. */
export const PEER = 'BBBBBBB-BBBBBBB-CCCCCCC-DDDDDDD-EEEEEEE-FFFFFFF-GGGGGGG-HHHHHHH';

/** A folder (`root`), an index, and `outside`: a directory beside the folder that must stay untouched. */
export interface Fixture {
  readonly dir: string;
  readonly root: string;
  readonly outside: string;
  readonly store: IndexStore;
  close(): void;
}

/** Makes a {@link Fixture} in a new temporary directory. */
export function makeFixture(): Fixture {
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-folder-'));
  const root = join(dir, 'folder');
  const outside = join(dir, 'outside');
  mkdirSync(root);
  mkdirSync(outside);
  const store = new IndexStore(join(dir, 'index.db'), SELF);
  return {
    dir,
    root,
    outside,
    store,
    close: () => {
      store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A file record of `data` at `path`, one chunk, at `version`, made by `by`. */
export function fileRecord(
  path: string,
  data: Buffer,
  version: Record<string, number>,
  by = 'BBBBBBB',
): FileRecord {
  return {
    path,
    type: 'file',
    size: data.length,
    mtimeNs: 1_795_543_420_000_000_000n,
    mode: 0o644,
    chunks: data.length === 0 ? [] : [{ offset: 0, length: data.length, hash: hashHex(data) }],
    target: '',
    version,
    deleted: false,
    sequence: 0,
    inode: 0,
    modifiedBy: by,
  };
}

/** Writes `data` at `path` in `root` and records it as this device's, as a scan would. */
export function localFile(
  store: IndexStore,
  root: string,
  path: string,
  data: Buffer,
  version: Record<string, number> = { AAAAAAA: 1 },
): FileRecord {
  const abs = join(root, path);
  writeFileSync(abs, data);
  const st = lstatSync(abs, { bigint: true });
  return store.commitSynced(fileRecord(path, data, version, 'AAAAAAA'), version, {
    inode: Number(st.ino),
    mtimeNs: st.mtimeNs,
    mode: Number(st.mode) & 0o7777,
  });
}

/** A logger that keeps every line as `level message`. */
export function memoryLog(lines: string[] = []): Logger & { readonly lines: string[] } {
  const at =
    (level: string) =>
    (a: object | string, b?: string): void => {
      lines.push(`${level} ${typeof a === 'string' ? a : (b ?? '')}`);
    };
  const log = {
    lines,
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: () => log,
  };
  return log;
}

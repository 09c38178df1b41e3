/**
 * Clusters of real `lockstep serve` processes for end-to-end tests, on the
 * product's local-cluster harness (the one the demo and the benchmarks use):
 * homes and folders in one temp dir, peered on 127.0.0.1 the way a user does
 * it (`lockstep init`, `lockstep peer add`), plus helpers to compare folders.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, mkdtemp, open, readdir, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalCluster, LocalDevice, type DeviceSpec } from '../src/cli/local-cluster.js';
import { freePort, waitUntil } from './helpers.js';

/** The folder marker, which every device has and which never syncs. */
const MARKER = '.lockstep-folder';
/** The prefix of Lockstep's temp files. */
export const TEMP_PREFIX = '.lockstep-tmp-';

/** One entry of a folder, as {@link treeOf} lists it. */
export type Entry =
  | { type: 'dir' }
  | { type: 'file'; sha256: string; size: number; exec: boolean }
  | { type: 'symlink'; target: string };

/** Hashes of files already read, by path and identity (so polling stays cheap). */
const hashCache = new Map<string, string>();

/** The SHA-256 of a file, streamed (large files never sit in memory). */
export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const piece of createReadStream(path, { highWaterMark: 1 << 20 })) {
    h.update(piece as Buffer);
  }
  return h.digest('hex');
}

/** The SHA-256 of a string or bytes. */
export function sha256(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * Lists every entry below `folder` (the folder marker left out; Lockstep's
 * temp files included, so a leftover one shows): path → type, SHA-256 and
 * executable bit of files, target of symlinks (never followed).
 */
export async function treeOf(folder: string): Promise<Record<string, Entry>> {
  const out: Record<string, Entry> = {};
  const walk = async (dir: string, rel: string): Promise<void> => {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return; // vanished while walking
    }
    for (const name of names.sort()) {
      const relPath = rel === '' ? name : `${rel}/${name}`;
      if (relPath === MARKER) continue;
      const abs = join(dir, name);
      let st;
      try {
        st = await lstat(abs, { bigint: true });
      } catch {
        continue;
      }
      if (st.isSymbolicLink()) {
        out[relPath] = { type: 'symlink', target: await readlink(abs) };
      } else if (st.isDirectory()) {
        out[relPath] = { type: 'dir' };
        await walk(abs, relPath);
      } else if (st.isFile()) {
        const key = `${abs}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
        let hash = hashCache.get(key);
        if (hash === undefined) {
          try {
            hash = await sha256File(abs);
          } catch {
            continue;
          }
          hashCache.set(key, hash);
        }
        out[relPath] = {
          type: 'file',
          sha256: hash,
          size: Number(st.size),
          exec: (st.mode & 0o111n) !== 0n,
        };
      }
    }
  };
  await walk(folder, '');
  return out;
}

/** Paths of Lockstep temp files anywhere below `folder`. */
export async function tempFiles(folder: string): Promise<string[]> {
  const tree = await treeOf(folder);
  return Object.keys(tree).filter((p) => p.split('/').some((s) => s.startsWith(TEMP_PREFIX)));
}

/** Every file hash in a tree. */
export function hashesIn(tree: Record<string, Entry>): Set<string> {
  const s = new Set<string>();
  for (const e of Object.values(tree)) if (e.type === 'file') s.add(e.sha256);
  return s;
}

/**
 * Writes `bytes` random bytes to `path` in pieces of 8 MiB (never all in
 * memory at once); resolves with the content's SHA-256.
 */
export async function writeRandomFile(path: string, bytes: number): Promise<string> {
  const piece = 8 * 1024 * 1024;
  const h = createHash('sha256');
  const fh = await open(path, 'w');
  try {
    for (let done = 0; done < bytes;) {
      const n = Math.min(piece, bytes - done);
      const buf = randomBytes(n);
      h.update(buf);
      await fh.write(buf, 0, n, done);
      done += n;
    }
  } finally {
    await fh.close();
  }
  return h.digest('hex');
}

/** The `msg` of each JSON log line in `output`. */
export function messagesOf(output: string): string[] {
  const out: string[] = [];
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const v = JSON.parse(line) as { msg?: unknown };
      if (typeof v.msg === 'string') out.push(v.msg);
    } catch {
      // a partial line
    }
  }
  return out;
}

/** One device of a test cluster: a {@link LocalDevice} with what the tests read from it. */
export class TestDevice extends LocalDevice {
  /** A command that `lockstep serve` runs through (e.g. to drop privileges); none by default. */
  wrap: readonly string[] = [];
  /** Output of runs that have ended. */
  private past = '';

  /** The short ID: the key in version vectors and conflict names. */
  get short(): string {
    return this.id.slice(0, 7);
  }

  get db(): string {
    return join(this.home, 'index.db');
  }

  /** Output of every run so far. */
  allOutput(): string {
    return this.past + this.output();
  }

  /** The log messages (`msg`) of the current run. */
  messages(): string[] {
    return messagesOf(this.output());
  }

  /** The log messages (`msg`) of every run so far. */
  allMessages(): string[] {
    return messagesOf(this.allOutput());
  }

  /** Starts `lockstep serve` (through {@link wrap}) and waits until it serves its folder. */
  override async start(): Promise<void> {
    if (this.running) throw new Error(`${this.name} is already running`);
    if (this.served) this.past += this.served.output();
    await super.start({ wrap: this.wrap });
  }
}

/** A set of devices, each with its own home and folder, in one temp dir. */
export class TestCluster extends LocalCluster<TestDevice> {
  private constructor(readonly tmp: string) {
    super(
      (spec, id) =>
        new TestDevice(spec.name, spec.home, spec.folder, id, spec.peerPort, spec.apiPort),
    );
  }

  /** Creates (does not start) devices `names`; with `mesh`, every one is a peer of every other. */
  static async create(names: string[], opts: { mesh?: boolean } = {}): Promise<TestCluster> {
    const c = new TestCluster(await mkdtemp(join(tmpdir(), 'lockstep-sync-')));
    try {
      await Promise.all(names.map((name) => c.add(name)));
      c.devices.sort((x, y) => names.indexOf(x.name) - names.indexOf(y.name));
      if (opts.mesh ?? true) await c.mesh();
    } catch (err) {
      await c.close();
      throw err;
    }
    return c;
  }

  /** Inits one more device (not peered, not started), on free ports, in the temp dir. */
  override async add(name: string | DeviceSpec): Promise<TestDevice> {
    if (typeof name !== 'string') return super.add(name);
    return super.add({
      name,
      home: join(this.tmp, `home-${name}`),
      folder: join(this.tmp, `folder-${name}`),
      peerPort: await freePort(),
      apiPort: await freePort(),
    });
  }

  /** Stops every running device (SIGKILL: these are test leftovers) and removes the temp dir. */
  async close(): Promise<void> {
    await this.stopAll('SIGKILL');
    await rm(this.tmp, { recursive: true, force: true });
  }
}

/**
 * Waits until every folder holds the same tree and `check` (if given) holds
 * for it; resolves with that tree.
 */
export async function converged(
  devices: readonly TestDevice[],
  what: string,
  check: (tree: Record<string, Entry>) => boolean = () => true,
  ms = 20_000,
): Promise<Record<string, Entry>> {
  let last: Record<string, Entry>[] = [];
  try {
    return await waitUntil(
      what,
      async () => {
        last = await Promise.all(devices.map((d) => treeOf(d.folder)));
        const first = JSON.stringify(last[0]);
        if (!last.every((t) => JSON.stringify(t) === first)) return undefined;
        return check(last[0] as Record<string, Entry>) ? last[0] : undefined;
      },
      ms,
      50,
    );
  } catch (err) {
    const trees = devices.map((d, i) => `${d.name}: ${JSON.stringify(last[i], null, 1)}`);
    const logs = devices.map((d) => `--- ${d.name} log ---\n${tail(d.allOutput(), 40)}`);
    throw new Error(`${(err as Error).message}\n${trees.join('\n')}\n${logs.join('\n')}`);
  }
}

/** The last `n` lines of `text`. */
export function tail(text: string, n: number): string {
  return text.split('\n').slice(-n).join('\n');
}

// Disk full and permission problems: one file's problem is reported for that
// file, the others sync, nothing is torn, and sync recovers once the cause is
// gone. The disk-full test mounts a small tmpfs as the receiver's folder; the
// permission test runs the devices as root without the capabilities that let
// root ignore file modes (setpriv), so a mode really denies. Both need root
// (CI runs as root) and are skipped, saying why, otherwise.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { apiOf } from './api-client.js';
import {
  TestCluster,
  converged,
  sha256,
  tempFiles,
  treeOf,
  writeRandomFile,
  type TestDevice,
} from './cluster.js';
import { waitUntil } from './helpers.js';
import { indexVersusDisk } from './model.js';

const MiB = 1024 * 1024;
const root = process.getuid?.() === 0;
if (!root) console.warn('disk.test.ts: not root; the disk-full and permission tests are skipped');

/** The problems `d` reports in its status. */
async function problems(d: TestDevice): Promise<{ path: string; message: string }[]> {
  const api = apiOf(d);
  const r = await fetch(`${api.url}/api/v1/status`, {
    headers: { authorization: `Bearer ${api.token}` },
  });
  return ((await r.json()) as { problems: { path: string; message: string }[] }).problems;
}

/** Root without the capabilities that bypass file modes. */
const NO_DAC = ['setpriv', '--bounding-set=-dac_override,-dac_read_search', '--'];

describe.skipIf(!root)('disk full and permissions', () => {
  let cluster: TestCluster | undefined;
  const mounted: string[] = [];
  afterEach(async () => {
    await Promise.all(cluster?.devices.map((d) => d.stop('SIGKILL')) ?? []);
    for (const m of mounted.splice(0)) execFileSync('umount', ['-l', m]);
    await cluster?.close();
    cluster = undefined;
  });

  it('disk full on the receiver: the file that does not fit is reported, the others sync, nothing is torn, and it syncs once space returns', async () => {
    cluster = await TestCluster.create(['A', 'B']);
    const a = cluster.get('A');
    const b = cluster.get('B');
    // B's folder becomes a 48 MiB tmpfs (with the folder marker put back).
    const marker = readFileSync(join(b.folder, '.lockstep-folder'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=48m', 'tmpfs', b.folder]);
    mounted.push(b.folder);
    writeFileSync(join(b.folder, '.lockstep-folder'), marker);

    const want = new Map<string, string>();
    mkdirSync(join(a.folder, 'small'));
    for (let i = 0; i < 20; i++) {
      want.set(`small/${i}.bin`, await writeRandomFile(join(a.folder, `small/${i}.bin`), MiB / 4));
    }
    const big = await writeRandomFile(join(a.folder, 'big.bin'), 80 * MiB);
    await cluster.startAll();

    // The small files arrive; big.bin is a problem of its own.
    await waitUntil(
      'the small files on B and big.bin reported',
      async () => {
        const t = await treeOf(b.folder);
        const smallOk = [...want].every(([p, h]) => {
          const e = t[p];
          return e?.type === 'file' && e.sha256 === h;
        });
        const reported = (await problems(b)).some(
          (p) => p.path === 'big.bin' && /ENOSPC|no space/i.test(p.message),
        );
        return smallOk && reported;
      },
      120_000,
      250,
    );
    // Nothing torn: big.bin is not at its path; nothing else is reported.
    const t = await treeOf(b.folder);
    expect(t['big.bin']).toBeUndefined();
    expect((await problems(b)).map((p) => p.path)).toEqual(['big.bin']);
    expect(b.running).toBe(true);

    // Space returns: big.bin follows, whole, and no temp file is left.
    execFileSync('mount', ['-o', 'remount,size=256m', b.folder]);
    await converged(
      [a, b],
      'big.bin on B after the space came back',
      (tree) => (tree['big.bin'] as { sha256?: string } | undefined)?.sha256 === big,
      120_000,
    );
    expect(await tempFiles(b.folder)).toEqual([]);
    await waitUntil('no problems on B', async () => (await problems(b)).length === 0, 30_000);
    expect(await indexVersusDisk(b)).toEqual([]);
  }, 300_000);

  it('an unreadable file on the sender and an unwritable directory on the receiver: each reported for its files, the rest syncs, both recover', async () => {
    cluster = await TestCluster.create(['A', 'B']);
    const a = cluster.get('A');
    const b = cluster.get('B');
    for (const d of [a, b]) d.wrap = NO_DAC;
    for (let i = 0; i < 5; i++) writeFileSync(join(a.folder, `ok-${i}.txt`), `ok ${i}\n`);
    writeFileSync(join(a.folder, 'secret.txt'), 'not readable yet\n');
    chmodSync(join(a.folder, 'secret.txt'), 0o000);
    mkdirSync(join(a.folder, 'ro'));
    mkdirSync(join(b.folder, 'ro'));
    chmodSync(join(b.folder, 'ro'), 0o555);
    await cluster.startAll();
    writeFileSync(join(a.folder, 'ro', 'inside.txt'), 'for a read-only directory on B\n');

    await waitUntil(
      'the readable files on B and both problems reported',
      async () => {
        const t = await treeOf(b.folder);
        const okOnB = [0, 1, 2, 3, 4].every(
          (i) =>
            (t[`ok-${i}.txt`] as { sha256?: string } | undefined)?.sha256 === sha256(`ok ${i}\n`),
        );
        const onA = (await problems(a)).some((p) => p.path === 'secret.txt');
        const onB = (await problems(b)).some((p) => p.path === 'ro/inside.txt');
        return okOnB && onA && onB;
      },
      60_000,
      250,
    );
    const tb = await treeOf(b.folder);
    expect(tb['secret.txt']).toBeUndefined();
    expect(tb['ro/inside.txt']).toBeUndefined();
    expect(a.running && b.running).toBe(true);

    // Fixed: both follow.
    chmodSync(join(a.folder, 'secret.txt'), 0o644);
    chmodSync(join(b.folder, 'ro'), 0o755);
    writeFileSync(join(a.folder, 'nudge.txt'), 'a change that makes A look again\n');
    const tree = await converged(
      [a, b],
      'secret.txt and ro/inside.txt on B',
      (t) => t['secret.txt'] !== undefined && t['ro/inside.txt'] !== undefined,
      120_000,
    );
    expect((tree['secret.txt'] as { sha256: string }).sha256).toBe(sha256('not readable yet\n'));
    for (const d of [a, b]) {
      await waitUntil(
        `no problems on ${d.name}`,
        async () => (await problems(d)).length === 0,
        90_000,
      );
      expect(await tempFiles(d.folder)).toEqual([]);
    }
  }, 300_000);
});

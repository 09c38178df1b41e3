/**
 * Index benchmarks with real `lockstep serve` processes: the first index of a
 * tree of many small files, a rescan of the unchanged tree (a restart), peak
 * RSS; and, in-process, how long a write takes to be noticed and indexed.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { initHome } from '../dist/config/home.js';
import { startDevice } from '../dist/daemon/start.js';
import { createLogger } from '../dist/daemon/log.js';

const BIN = fileURLToPath(new URL('../bin/lockstep.js', import.meta.url));

/** Writes `files` files of `size` bytes spread over `dirs` directories. */
export function makeTree(folder: string, files: number, dirs: number, size: number): void {
  const data = randomBytes(size + files);
  for (let d = 0; d < dirs; d++)
    mkdirSync(join(folder, `d${String(d).padStart(4, '0')}`), { recursive: true });
  for (let f = 0; f < files; f++) {
    // Each file's bytes differ (a sliding window), so no two hash alike.
    writeFileSync(
      join(folder, `d${String(f % dirs).padStart(4, '0')}`, `f${f}.bin`),
      data.subarray(f, f + size),
    );
  }
}

/** Result of one `serve` run: the start-up full scan and the peak RSS. */
export interface ServeScan {
  scanMs: number;
  scanned: number;
  peakRssMb: number;
}

/** Runs `lockstep serve` until its first full scan is done, then stops it. */
export function serveOnce(home: string): Promise<ServeScan> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'serve', '--home', home], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error('serve did not finish its first scan within 300 s'));
    }, 300_000);
    let result: ServeScan | undefined;
    createInterface({ input: child.stdout }).on('line', (line) => {
      let o: { msg?: string; ms?: number; scanned?: number; maxRssKb?: number };
      try {
        o = JSON.parse(line) as typeof o;
      } catch {
        return;
      }
      if (o.msg === 'full scan done' && result === undefined) {
        // The peak as the process saw it when the scan ended: read from
        // outside once the line arrives, VmHWM would also count whatever
        // serve went on to do meanwhile.
        let hwm = o.maxRssKb;
        if (hwm === undefined) {
          const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
          hwm = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
        }
        result = { scanMs: o.ms ?? 0, scanned: o.scanned ?? 0, peakRssMb: hwm / 1024 };
        child.kill('SIGTERM');
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (result && code === 0) resolve(result);
      else reject(new Error(`serve exited with code ${code} before reporting a scan`));
    });
  });
}

/** Creates a device home for `folder` under `dir`. */
export async function benchHome(
  dir: string,
  name: string,
): Promise<{ home: string; folder: string }> {
  const home = join(dir, `${name}-home`);
  const folder = join(dir, `${name}-folder`);
  await initHome({ home, folder, name });
  return { home, folder };
}

/**
 * Measures, `samples` times, the time from a small write returning until the
 * device has indexed it (committed to SQLite).
 */
export async function benchWriteToIndexed(dir: string, samples: number): Promise<number[]> {
  const { home, folder } = await benchHome(dir, 'latency');
  makeTree(folder, 2000, 20, 1024);
  // The local half of a device (index, scanner, watcher), wired as serve wires it.
  const running = await startDevice(home, { parts: 'local', log: createLogger({ stdout: false }) });
  const device = running.device;
  const out: number[] = [];
  try {
    for (let i = 0; i < samples; i++) {
      const rel = `d${String(i % 20).padStart(4, '0')}/new-${i}.txt`;
      const done = new Promise<number>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`${rel} was not indexed within 5 s`)), 5000);
        const on = (records: { path: string }[]) => {
          if (!records.some((r) => r.path === rel)) return;
          clearTimeout(t);
          device.off('indexed', on);
          resolve(performance.now());
        };
        device.on('indexed', on);
      });
      const start = performance.now();
      writeFileSync(join(folder, rel), `sample ${i}\n`);
      out.push((await done) - start);
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    await running.close();
  }
  return out;
}

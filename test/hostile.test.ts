// Hostile clients and a hostile filesystem against real devices: path
// attacks through the client API (including a symlink in the folder that
// leads outside), floods of API requests and of unauthenticated peer
// connections, and a directory replaced by a symlink while it is being
// synced into. Each is refused with a clear error, the device stays up, and
// nothing outside the folder is read or written.
import {
  existsSync,
  mkdirSync,
  readdirSync,
  renameSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { apiOf, type Api } from './api-client.js';
import { TestCluster, converged, sha256, treeOf, type TestDevice } from './cluster.js';
import { indexRow, waitFor, waitUntil } from './helpers.js';

const FLOOD = Number(process.env.FLOOD_REQUESTS ?? 2000);

async function raw(api: Api, method: string, path: string, body?: string, token = api.token) {
  const res = await fetch(`${api.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/octet-stream' }),
    },
    ...(body === undefined ? {} : { body }),
  });
  const text = await res.text();
  return { status: res.status, text };
}

describe('hostile clients and filesystem against real devices', () => {
  let cluster: TestCluster | undefined;
  let outside: string | undefined;
  afterEach(async () => {
    await cluster?.close();
    cluster = undefined;
    if (outside) await rm(outside, { recursive: true, force: true });
    outside = undefined;
  });

  /** A device still indexes a local change and answers its API. */
  const stillWorks = async (d: TestDevice, name: string) => {
    expect(d.running).toBe(true);
    writeFileSync(join(d.folder, name), 'still working\n');
    await waitFor(`${name} indexed`, () => indexRow(d.db, name), 30_000);
    const r = await raw(apiOf(d), 'GET', '/api/v1/status');
    expect(r.status).toBe(200);
  };

  it('refuses path attacks through the client API, including a symlink that leads outside the folder', async () => {
    cluster = await TestCluster.create(['D']);
    const d = cluster.get('D');
    outside = await mkdtemp(join(tmpdir(), 'lockstep-outside-'));
    writeFileSync(join(outside, 'secret.txt'), 'outside the folder\n');
    symlinkSync(outside, join(d.folder, 'link'));
    writeFileSync(join(d.folder, 'ok.txt'), 'ok\n');
    await d.start();
    await waitFor('ok.txt indexed', () => indexRow(d.db, 'ok.txt'), 30_000);
    const api = apiOf(d);
    const attacks = [
      '..%2Fescape.txt',
      '%2E%2E/escape.txt',
      'a/..%2F..%2Fescape.txt',
      'a%00b.txt',
      'a%5Cb.txt',
      '%ED%A0%80.txt',
      `${'n'.repeat(256)}.txt`,
      '.lockstep-tmp-x',
      'sub/.lockstep-tmp-x',
      '.lockstep-folder',
      'link/secret.txt',
      'link/new.txt',
    ];
    for (const p of attacks) {
      for (const [method, body] of [
        ['PUT', 'attack'],
        ['DELETE', undefined],
      ] as const) {
        const r = await raw(api, method, `/api/v1/files/${p}`, body);
        expect(r.status, `${method} ${p}: ${r.text}`).toBeGreaterThanOrEqual(400);
        expect(r.status, `${method} ${p}: ${r.text}`).toBeLessThan(500);
        expect(JSON.parse(r.text)).toMatchObject({
          error: { code: expect.any(String), message: expect.any(String) },
        });
      }
      const get = await raw(api, 'GET', `/api/v1/files/${p}`);
      expect(get.status, `GET ${p}: ${get.text}`).not.toBe(500);
      expect(get.text).not.toContain('outside the folder');
      const lock = await fetch(`${api.url}/api/v1/locks`, {
        method: 'POST',
        headers: { authorization: `Bearer ${api.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ path: decodeURIComponentOr(p) }),
      });
      expect(lock.status, `lock ${p}`).toBeGreaterThanOrEqual(400);
      expect(lock.status, `lock ${p}`).toBeLessThan(500);
    }
    // A leading slash means the folder's root, never the machine's.
    const abs = await raw(api, 'PUT', '/api/v1/files/%2Fetc%2Flockstep-escape', 'inside');
    expect(abs.status, abs.text).toBe(200);
    expect(JSON.parse(abs.text)).toMatchObject({ path: 'etc/lockstep-escape' });
    expect(existsSync('/etc/lockstep-escape')).toBe(false);
    expect((await raw(api, 'DELETE', '/api/v1/files/etc/lockstep-escape')).status).toBe(200);
    expect((await raw(api, 'DELETE', '/api/v1/files/etc')).status).toBe(200);
    // Nothing outside was written or removed; the link is still a link.
    expect(readdirSync(outside)).toEqual(['secret.txt']);
    expect(readdirSync(join(d.folder, '..')).sort()).toEqual(['folder-D', 'home-D']);
    const tree = await treeOf(d.folder);
    expect(tree['link']).toEqual({ type: 'symlink', target: outside });
    expect(Object.keys(tree).sort()).toEqual(['link', 'ok.txt']);
    await stillWorks(d, 'after-attacks.txt');
  }, 120_000);

  it(`stays up and answers through a flood of ${FLOOD} API requests and 200 unauthenticated peer connections`, async () => {
    cluster = await TestCluster.create(['A', 'B']);
    const [a, b] = cluster.devices as [TestDevice, TestDevice];
    writeFileSync(join(a.folder, 'f.txt'), 'f\n');
    await cluster.startAll();
    await converged([a, b], 'f.txt on both', (t) => t['f.txt'] !== undefined, 60_000);
    const api = apiOf(a);
    const kinds = [
      () => raw(api, 'GET', '/api/v1/files'),
      () => raw(api, 'GET', '/api/v1/files', undefined, 'wrong-token'),
      () => raw(api, 'GET', '/api/v1/files/..%2F..%2Fetc%2Fpasswd'),
      () => raw(api, 'PUT', '/api/v1/files/flood/x.txt', 'x'.repeat(1000)),
      () => raw(api, 'POST', '/api/v1/locks'),
      () => raw(api, 'GET', '/api/v1/status'),
    ];
    const counts = new Map<number, number>();
    let failed = 0;
    // In waves of 250 at once (a client's sockets, not the device, are the limit).
    for (let done = 0; done < FLOOD; done += 250) {
      const wave = Array.from({ length: Math.min(250, FLOOD - done) }, (_, i) =>
        (kinds[(done + i) % kinds.length] as () => Promise<{ status: number }>)().then(
          (r) => counts.set(r.status, (counts.get(r.status) ?? 0) + 1),
          () => failed++,
        ),
      );
      await Promise.all(wave);
    }
    expect(failed, 'requests without any answer').toBe(0);
    expect(counts.get(500) ?? 0).toBe(0);
    expect(counts.get(401)).toBeGreaterThan(0);
    // 200 TLS connections without a certificate at once.
    await Promise.all(
      Array.from(
        { length: 200 },
        () =>
          new Promise<void>((resolve) => {
            const s = tlsConnect({
              host: '127.0.0.1',
              port: a.peerPort,
              rejectUnauthorized: false,
              ALPNProtocols: ['h2'],
            });
            s.on('error', () => resolve());
            s.on('close', () => resolve());
            s.setTimeout(15_000, () => s.destroy());
          }),
      ),
    );
    await stillWorks(a, 'after-flood.txt');
    await converged(
      [a, b],
      'sync goes on after the flood',
      (t) => t['after-flood.txt'] !== undefined,
      60_000,
    );
  }, 180_000);

  it('never writes through a directory replaced by a symlink while files are synced into it', async () => {
    cluster = await TestCluster.create(['A', 'B']);
    const [a, b] = cluster.devices as [TestDevice, TestDevice];
    outside = await mkdtemp(join(tmpdir(), 'lockstep-outside-'));
    mkdirSync(join(a.folder, 'd'));
    mkdirSync(join(b.folder, 'd'));
    for (let i = 0; i < 400; i++) {
      writeFileSync(join(a.folder, 'd', `${i}.txt`), `file ${i}\n`.repeat(2000));
    }
    await a.start();
    await waitFor('A to index d/', () => indexRow(a.db, 'd/399.txt'), 60_000);
    await b.start();
    await waitUntil(
      'B to start filling d/',
      () => readdirSync(join(b.folder, 'd')).length > 0,
      60_000,
      2,
    );
    // B may make d/ again between the move and the link (it is still pulling
    // into it): then that one is moved away too and the link tried again.
    for (let attempt = 0; ; attempt++) {
      renameSync(
        join(b.folder, 'd'),
        join(b.folder, attempt === 0 ? 'd-moved' : `d-moved-${attempt}`),
      );
      try {
        symlinkSync(outside, join(b.folder, 'd'));
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 20) throw e;
      }
    }
    // Give the rest of the pull time to run into the link.
    await waitUntil(
      'B to report files it could not write',
      () => b.messages().some((m) => /^cannot sync d\/\d+\.txt: .*symlink/.test(m)),
      60_000,
    );
    expect(readdirSync(outside)).toEqual([]);
    expect(b.running).toBe(true);
    await stillWorks(b, 'after-link.txt');
    expect(readdirSync(outside)).toEqual([]);
    const onB = await treeOf(b.folder);
    expect(onB['d']).toEqual({ type: 'symlink', target: outside });
    // What B had received kept its content.
    for (const [p, e] of Object.entries(onB)) {
      const m = /^d-moved(?:-\d+)?\/(\d+)\.txt$/.exec(p);
      if (m && e.type === 'file') expect(e.sha256).toBe(sha256(`file ${m[1]}\n`.repeat(2000)));
    }
  }, 180_000);
});

function decodeURIComponentOr(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

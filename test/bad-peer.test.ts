// End to end: a real `lockstep serve` against a fake peer in this process that
// speaks the peer protocol (HTTP/2 over mutual TLS) and sends bad input.
import 'reflect-metadata';
import { blake3 } from '@napi-rs/blake-hash';
import * as x509 from '@peculiar/x509';
import { KeyObject, webcrypto } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TestCluster, sha256, tail, tempFiles, treeOf, type TestDevice } from './cluster.js';
import { indexRow, lockstepAsync, waitFor, waitUntil } from './helpers.js';
import { shortId } from '../src/core/device-id.js';
import { deviceIdOfCert } from '../src/identity/identity.js';

/** A device identity made by `lockstep init`, as the fake peer uses it. */
interface Identity {
  id: string;
  short: string;
  keyPem: string;
  certPem: string;
}

async function makeIdentity(dir: string, name: string): Promise<Identity> {
  const home = join(dir, `home-${name}`);
  const r = await lockstepAsync([
    'init',
    '--home',
    home,
    '--folder',
    join(dir, `folder-${name}`),
    '--name',
    name,
  ]);
  if (r.code !== 0) throw new Error(`init ${name} failed: ${r.stderr}`);
  const id = r.stdout.trim().split('\n').at(-1) as string;
  return {
    id,
    short: shortId(id),
    keyPem: readFileSync(join(home, 'key.pem'), 'utf8'),
    certPem: readFileSync(join(home, 'cert.pem'), 'utf8'),
  };
}

/** An identity whose self-signed certificate expired yesterday. */
async function expiredIdentity(): Promise<Identity> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = (await webcrypto.subtle.generateKey(alg, true, [
    'sign',
    'verify',
  ])) as webcrypto.CryptoKeyPair;
  const day = 24 * 3600 * 1000;
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: '01',
      name: 'CN=expired',
      notBefore: new Date(Date.now() - 30 * day),
      notAfter: new Date(Date.now() - day),
      signingAlgorithm: alg,
      keys: keys as never,
    },
    webcrypto as never,
  );
  const certPem = `${cert.toString('pem')}\n`;
  const id = deviceIdOfCert(certPem);
  return {
    id,
    short: shortId(id),
    certPem,
    keyPem: KeyObject.from(keys.privateKey).export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

const blake3Hex = (data: Buffer): string => blake3(data).toString('hex');

/** A frame of the index stream: u32 big-endian length, then the body. */
function frame(body: string | Buffer): Buffer {
  const b = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  const head = Buffer.alloc(4);
  head.writeUInt32BE(b.length, 0);
  return Buffer.concat([head, b]);
}

const json = (v: unknown): Buffer => frame(JSON.stringify(v));

/** The fake peer: serves an index stream it is told to and chunks by hash. */
class FakePeer {
  /** Chunk bytes it answers with, by the hash asked for. */
  readonly chunks = new Map<string, Buffer>();
  /** Index connections so far. */
  connections = 0;
  /** Hashes peers asked for. */
  readonly asked: string[] = [];
  /** The request path of each index connection, in order. */
  readonly indexPaths: string[] = [];
  port = 0;
  private seq = 0;
  /** The lock authority this fake names in its hello (itself unless set). */
  authority: string | undefined;
  private readonly server: http2.Http2SecureServer;
  private readonly streams = new Set<http2.ServerHttp2Stream>();

  /** `script(n)` gives the bytes to send after hello on the n-th index connection (from 1). */
  constructor(
    readonly identity: Identity,
    private readonly script: (n: number) => Buffer[],
  ) {
    this.server = http2.createSecureServer({
      key: identity.keyPem,
      cert: identity.certPem,
      minVersion: 'TLSv1.3',
      requestCert: true,
      rejectUnauthorized: false,
      allowHTTP1: false,
    });
    this.server.on('stream', (stream, headers) => {
      stream.on('error', () => undefined);
      const path = headers[':path'] ?? '';
      if (headers[':method'] === 'GET' && path.startsWith('/v1/index')) {
        const n = ++this.connections;
        this.indexPaths.push(path);
        this.streams.add(stream);
        stream.on('close', () => this.streams.delete(stream));
        stream.respond({ ':status': 200, 'content-type': 'application/octet-stream' });
        stream.write(
          json({
            type: 'hello',
            protocol: 1,
            hashAlgorithm: 'blake3',
            indexId: `fake-${identity.short}`,
            deviceId: identity.id,
            sequence: this.seq,
            lockAuthority: this.authority ?? identity.id,
            authorityDecided: true,
            authorityEpoch: 0,
          }),
        );
        for (const b of this.script(n)) stream.write(b);
        // Stays open, as a live index stream does.
      } else if (headers[':method'] === 'POST' && path === '/v1/chunks') {
        const parts: Buffer[] = [];
        stream.on('data', (d: Buffer) => parts.push(d));
        stream.on('end', () => {
          const { hashes } = JSON.parse(Buffer.concat(parts).toString('utf8')) as {
            hashes: string[];
          };
          stream.respond({ ':status': 200, 'content-type': 'application/octet-stream' });
          for (const h of hashes) {
            this.asked.push(h);
            const data = this.chunks.get(h);
            if (data === undefined) {
              stream.write(Buffer.from([1]));
            } else {
              const head = Buffer.alloc(5);
              head[0] = 0;
              head.writeUInt32BE(data.length, 1);
              stream.write(head);
              stream.write(data);
            }
          }
          stream.end();
        });
      } else {
        stream.respond({ ':status': 404 });
        stream.end();
      }
    });
  }

  /** A well-formed file record of `content` at `path`, its chunk served. */
  record(path: string, content: string, extra: Record<string, unknown> = {}) {
    const data = Buffer.from(content);
    const hash = blake3Hex(data);
    this.chunks.set(hash, data);
    const seq = ++this.seq;
    return {
      path,
      type: 'file',
      size: data.length,
      mtimeNs: `${BigInt(Date.now()) * 1_000_000n}`,
      mode: 0o644,
      chunks: [[data.length, hash]],
      target: '',
      version: { [this.identity.short]: seq },
      deleted: false,
      sequence: seq,
      modifiedBy: this.identity.short,
      ...extra,
    };
  }

  /** A records frame then caughtUp. */
  records(...records: unknown[]): Buffer[] {
    return [json({ type: 'records', records }), json({ type: 'caughtUp', sequence: this.seq })];
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this.port;
  }

  close(): Promise<void> {
    for (const s of this.streams) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** POSTs a lock request to a device's peer port as the peer `identity`; its status and body. */
async function postLockRequest(
  port: number,
  identity: Identity,
  body: unknown,
): Promise<{ status: number; body: unknown }> {
  const session = http2.connect(`https://127.0.0.1:${port}`, {
    key: identity.keyPem,
    cert: identity.certPem,
    minVersion: 'TLSv1.3',
    rejectUnauthorized: false,
    checkServerIdentity: () => undefined,
  });
  session.on('error', () => undefined);
  try {
    return await new Promise((resolve, reject) => {
      const req = session.request({ ':method': 'POST', ':path': '/v1/locks' });
      let status = 0;
      const parts: Buffer[] = [];
      req.on('error', reject);
      req.on('response', (h) => (status = Number(h[':status'])));
      req.on('data', (d: Buffer) => parts.push(d));
      req.on('end', () =>
        resolve({ status, body: JSON.parse(Buffer.concat(parts).toString('utf8')) as unknown }),
      );
      req.end(JSON.stringify(body));
    });
  } finally {
    session.destroy();
  }
}

/** What a client without the right certificate gets from a device's peer port. */
async function tryConnect(
  port: number,
  identity: Identity | undefined,
): Promise<{ status: number | undefined; bytes: number; closed: boolean }> {
  const session = http2.connect(`https://127.0.0.1:${port}`, {
    ...(identity ? { key: identity.keyPem, cert: identity.certPem } : {}),
    minVersion: 'TLSv1.3',
    rejectUnauthorized: false,
    checkServerIdentity: () => undefined,
  });
  session.on('error', () => undefined);
  let status: number | undefined;
  let bytes = 0;
  const closed = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 10_000);
    session.on('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
    const req = session.request({ ':path': '/v1/index?since=0&indexId=' });
    req.on('error', () => undefined);
    req.on('response', (h) => {
      status = Number(h[':status']);
    });
    req.on('data', (d: Buffer) => {
      bytes += d.length;
    });
    req.end();
  });
  session.destroy();
  return { status, bytes, closed };
}

describe('bad peers', () => {
  let shared: string;
  let fakeId: Identity;
  let strangerId: Identity;
  let cluster: TestCluster | undefined;
  let fake: FakePeer | undefined;
  const etcX = existsSync('/etc/x');

  beforeAll(async () => {
    shared = await mkdtemp(join(tmpdir(), 'lockstep-badpeer-'));
    [fakeId, strangerId] = await Promise.all([
      makeIdentity(shared, 'Fake'),
      makeIdentity(shared, 'Stranger'),
    ]);
  });
  afterAll(async () => {
    await rm(shared, { recursive: true, force: true });
  });
  afterEach(async () => {
    await fake?.close();
    fake = undefined;
    await cluster?.close();
    cluster = undefined;
  });

  /**
   * Starts device D peered with a fake peer that sends `script(n)` on its
   * n-th connection; `prepare` runs before D starts (its home and the fake set up).
   */
  const withFake = async (
    script: (f: FakePeer, n: number) => Buffer[],
    identity = fakeId,
    prepare?: (d: TestDevice, f: FakePeer) => void,
  ): Promise<{ d: TestDevice; f: FakePeer }> => {
    cluster = await TestCluster.create(['D']);
    const d = cluster.get('D');
    const f: FakePeer = new FakePeer(identity, (n) => script(f, n));
    fake = f;
    await f.listen();
    const r = await lockstepAsync([
      'peer',
      'add',
      '--home',
      d.home,
      fakeId.id,
      `127.0.0.1:${f.port}`,
      '--name',
      'Fake',
    ]);
    expect(r.code, r.stderr).toBe(0);
    prepare?.(d, f);
    await d.start();
    return { d, f };
  };

  /** The device stays up and still indexes a local change. */
  let localChanges = 0;
  const stillWorks = async (d: TestDevice) => {
    expect(d.running, tail(d.output(), 20)).toBe(true);
    const name = `local-after-${++localChanges}.txt`;
    writeFileSync(join(d.folder, name), 'a local change after the bad input');
    await waitFor('a local change to be indexed', () => indexRow(d.db, name));
    expect(d.running).toBe(true);
  };

  /** Waits until `path` holds `content` in D's folder. */
  const synced = (d: TestDevice, path: string, content: string) =>
    waitUntil(
      `${path} synced from the fake peer`,
      async () => {
        const t = await treeOf(d.folder);
        const e = t[path];
        return e?.type === 'file' && e.sha256 === sha256(content);
      },
      15_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${tail(d.output(), 30)}`);
    });

  const badPaths: [string, string][] = [
    ['a parent-directory path', '../escape.txt'],
    ['an absolute path', '/etc/x'],
    ['a NUL in the path', 'a\u0000b'],
    ['a backslash in the path', 'a\\b'],
    ['a lone surrogate in the path', 'lone-\ud800-surrogate.txt'],
    ['a nested parent-directory path', 'sub/../../escape.txt'],
    ['a name longer than 255 bytes', `${'n'.repeat(256)}.txt`],
    ['a path longer than 4096 bytes', `${'d/'.repeat(2100)}x.txt`],
    ["Lockstep's own temp file name", 'sub/.lockstep-tmp-x.txt'],
    ["Lockstep's folder marker", '.lockstep-folder'],
  ];

  it.each(badPaths)('rejects %s, writes nothing and syncs on', async (_what, badPath) => {
    const { d } = await withFake((f) =>
      f.records(f.record(badPath, 'bad content'), f.record('good.txt', 'good content')),
    );
    await synced(d, 'good.txt', 'good content');
    await waitFor('the rejection to be logged', () =>
      d.messages().some((m) => m.startsWith('rejected a record from peer Fake')),
    );
    const tmp = dirname(d.folder);
    expect(readdirSync(tmp).sort()).toEqual(['folder-D', 'home-D']);
    expect(existsSync(join(tmp, '..', 'escape.txt'))).toBe(false);
    if (!etcX) expect(existsSync('/etc/x')).toBe(false);
    expect(Object.keys(await treeOf(d.folder))).toEqual(['good.txt']);
    expect(indexRow(d.db, badPath)).toBeUndefined();
    await stillWorks(d);
  });

  it('never writes through a symlink the peer sent', async () => {
    const { d } = await withFake((f) => {
      const up = f.record('up', '', { type: 'symlink', size: 2, chunks: [], target: '..' });
      const abs = f.record('abs', '', {
        type: 'symlink',
        size: Buffer.byteLength(shared),
        chunks: [],
        target: shared,
        mode: 0o777,
      });
      return f.records(
        up,
        abs,
        f.record('up/escape.txt', 'escaped through a relative link'),
        f.record('abs/escape.txt', 'escaped through an absolute link'),
        f.record('good.txt', 'good content'),
      );
    });
    await synced(d, 'good.txt', 'good content');
    await waitFor('the refused writes to be reported', () =>
      ['up/escape.txt', 'abs/escape.txt'].every((p) =>
        d.messages().some((m) => m.startsWith(`cannot sync ${p}`)),
      ),
    );
    expect(readdirSync(dirname(d.folder)).sort()).toEqual(['folder-D', 'home-D']);
    expect(existsSync(join(shared, 'escape.txt'))).toBe(false);
    const tree = await treeOf(d.folder);
    expect(tree['up']).toEqual({ type: 'symlink', target: '..' });
    expect(tree['abs']).toEqual({ type: 'symlink', target: shared });
    expect(Object.keys(tree).sort()).toEqual(['abs', 'good.txt', 'up']);
    await stillWorks(d);
  });

  it('keeps Unicode normalization twins and case twins as the distinct names they are on this filesystem', async () => {
    const twins = ['\u00e9t\u00e9.txt', 'e\u0301te\u0301.txt', 'Case.txt', 'case.txt', 'CASE.TXT'];
    const { d } = await withFake((f) =>
      f.records(...twins.map((p) => f.record(p, `content of ${p}`))),
    );
    for (const p of twins) await synced(d, p, `content of ${p}`);
    expect(Object.keys(await treeOf(d.folder)).sort()).toEqual([...twins].sort());
    await stillWorks(d);
  });

  it('refuses a configured peer whose certificate has expired, both ways, saying so', async () => {
    const expired = await expiredIdentity();
    cluster = await TestCluster.create(['D']);
    const d = cluster.get('D');
    const f = new FakePeer(expired, () => []);
    fake = f;
    await f.listen();
    const add = await lockstepAsync([
      'peer',
      'add',
      '--home',
      d.home,
      expired.id,
      `127.0.0.1:${f.port}`,
      '--name',
      'Expired',
    ]);
    expect(add.code, add.stderr).toBe(0);
    await d.start();
    // D dials it: refused after the handshake, before any request.
    await waitFor('the expired peer to be refused', () =>
      d.messages().some((m) => /refusing peer Expired .*certificate expired/.test(m)),
    );
    expect(f.connections).toBe(0);
    // It dials D: refused likewise, nothing revealed.
    const got = await tryConnect(d.peerPort, expired);
    expect(got.status).toBeUndefined();
    expect(got.bytes).toBe(0);
    await waitFor('the refusal to be logged', () =>
      d
        .messages()
        .some((m) =>
          m.startsWith(
            `refused a peer connection from device ${expired.id}: its certificate expired`,
          ),
        ),
    );
    await stillWorks(d);
  });

  it('rejects a record whose chunk lengths do not sum to its size', async () => {
    const { d, f } = await withFake((f) => {
      const bad = f.record('badsize.txt', 'twelve bytes');
      return f.records({ ...bad, size: 20 }, f.record('good.txt', 'good content'));
    });
    await synced(d, 'good.txt', 'good content');
    expect(d.messages().some((m) => /^rejected a record from peer Fake.*sum/.test(m))).toBe(true);
    expect(Object.keys(await treeOf(d.folder))).toEqual(['good.txt']);
    expect(f.asked).not.toContain(blake3Hex(Buffer.from('twelve bytes')));
    await stillWorks(d);
  });

  it('drops the connection on an oversized frame and syncs on when the peer behaves', async () => {
    const { d, f } = await withFake((f, n) => {
      if (n === 1) {
        const head = Buffer.alloc(4);
        head.writeUInt32BE(16 * 1024 * 1024 + 1, 0);
        return [head, Buffer.alloc(64 * 1024, 0x20)];
      }
      return f.records(f.record('good.txt', 'good content'));
    });
    await synced(d, 'good.txt', 'good content');
    expect(f.connections).toBeGreaterThanOrEqual(2);
    expect(d.messages().some((m) => m.startsWith('bad index data from peer Fake'))).toBe(true);
    expect(d.output()).toMatch(/exceeds the limit/);
    await stillWorks(d);
  });

  it('drops the connection on invalid UTF-8 in a frame and syncs on when the peer behaves', async () => {
    const { d, f } = await withFake((f, n) => {
      if (n === 1) {
        return [
          frame(
            Buffer.concat([
              Buffer.from('{"type":"records","records":[{"path":"bad-'),
              Buffer.from([0xff, 0xfe, 0xc3]),
              Buffer.from('.txt"}]}'),
            ]),
          ),
        ];
      }
      return f.records(f.record('good.txt', 'good content'));
    });
    await synced(d, 'good.txt', 'good content');
    expect(f.connections).toBeGreaterThanOrEqual(2);
    expect(d.messages().some((m) => m.startsWith('bad index data from peer Fake'))).toBe(true);
    expect(d.output()).toMatch(/not valid UTF-8/);
    expect(Object.keys(await treeOf(d.folder))).toEqual(['good.txt']);
    await stillWorks(d);
  });

  it('asks again for full records after a delta against a version it does not hold', async () => {
    const { d, f } = await withFake((f, n) => {
      const rec = f.record('delta.txt', 'the whole content');
      if (n === 1) {
        // A delta against a version D never had: D must not guess.
        return f.records(f.record('first.txt', 'first content'), {
          ...rec,
          base: { version: { [f.identity.short]: 999 }, digest: '0'.repeat(32) },
          chunks: [[0, 1]],
        });
      }
      return f.records(rec, f.record('first.txt', 'first content'));
    });
    await synced(d, 'delta.txt', 'the whole content');
    await synced(d, 'first.txt', 'first content');
    expect(f.indexPaths[0]).toMatch(/[?&]delta=1(&|$)/);
    expect(f.indexPaths[1]).toMatch(/[?&]delta=0(&|$)/);
    expect(
      d.messages().some((m) => /sent a delta against a version .* asking again for full/.test(m)),
    ).toBe(true);
    expect(d.messages().some((m) => m.startsWith('rejected a record from peer Fake'))).toBe(false);
    await stillWorks(d);
  });

  it('keeps at most two index streams per peer, ending the oldest for a new one', async () => {
    const { d, f } = await withFake((f) => f.records(f.record('good.txt', 'good content')));
    await synced(d, 'good.txt', 'good content');
    const session = http2.connect(`https://127.0.0.1:${d.peerPort}`, {
      key: f.identity.keyPem,
      cert: f.identity.certPem,
      minVersion: 'TLSv1.3',
      rejectUnauthorized: false,
      checkServerIdentity: () => undefined,
    });
    session.on('error', () => undefined);
    try {
      const closed: boolean[] = [];
      const heard: boolean[] = [];
      for (let i = 0; i < 3; i++) {
        closed.push(false);
        heard.push(false);
        const req = session.request({ ':path': '/v1/index?since=0&indexId=&delta=1' });
        req.on('error', () => undefined);
        req.on('data', () => (heard[i] = true));
        req.on('close', () => (closed[i] = true));
        await waitFor(`index stream ${i + 1} to answer`, () => heard[i]);
      }
      await waitFor('the oldest index stream to be ended', () => closed[0]);
      await new Promise((r) => setTimeout(r, 300));
      expect(closed).toEqual([true, false, false]);
      expect(d.messages()).toContain('ended an older index stream of the peer for its new one');
    } finally {
      session.destroy();
    }
    await stillWorks(d);
  });

  it('never writes chunk data that does not match its hash', async () => {
    const real = 'the content the record promises';
    const forged = 'THE CONTENT THE PEER ACTUALLY SENDS';
    const { d, f } = await withFake((f) => {
      const rec = f.record('badhash.txt', real);
      // Same length, other bytes, under the promised hash.
      f.chunks.set(blake3Hex(Buffer.from(real)), Buffer.from(forged.slice(0, real.length)));
      return f.records(rec, f.record('good.txt', 'good content'));
    });
    await synced(d, 'good.txt', 'good content');
    await waitFor(
      'the bad chunk to be reported',
      () => /does not match its hash/.test(d.output()),
      15_000,
    );
    expect(f.asked).toContain(blake3Hex(Buffer.from(real)));
    // Let it retry once or twice: still nothing at the path.
    await new Promise((r) => setTimeout(r, 1500));
    const tree = await treeOf(d.folder);
    expect(tree['badhash.txt']).toBeUndefined();
    for (const p of await tempFiles(d.folder)) {
      const e = tree[p];
      expect(e?.type === 'file' ? e.size : 0, `${p} holds data`).toBe(0);
    }
    expect(indexRow(d.db, 'badhash.txt')).toBeUndefined();
    await stillWorks(d);
  });

  it('refuses a peer at the configured address that presents another certificate', async () => {
    // The fake serves with the stranger's identity, under the configured fake's ID.
    const { d, f } = await withFake((f) => f.records(f.record('good.txt', 'good')), strangerId);
    await waitFor('the wrong device to be reported', () =>
      d.messages().some((m) => /not the configured peer/.test(m)),
    );
    expect(f.connections).toBe(0);
    expect(Object.keys(await treeOf(d.folder))).toEqual([]);
    await stillWorks(d);
  });

  it("refuses forged lock requests from a configured peer: another user's unlock with admin and force, a lock at another device", async () => {
    // D is the lock authority, and the fake agrees.
    const { d } = await withFake(
      () => [],
      fakeId,
      (dev, f) => {
        f.authority = dev.id;
        const file = join(dev.home, 'config.json');
        const config = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
        writeFileSync(file, JSON.stringify({ ...config, lockAuthority: dev.id }, null, 2));
        writeFileSync(join(dev.folder, 'f.txt'), 'the administrator edits this\n');
      },
    );
    await waitFor('f.txt to be indexed', () => indexRow(d.db, 'f.txt'));
    await waitUntil('the administrator to hold the lock', async () => {
      const r = await lockstepAsync(['lock', '--home', d.home, 'f.txt']);
      return r.code === 0 ? r : false;
    });
    const forgedUnlock = await postLockRequest(d.peerPort, fakeId, {
      op: 'unlock',
      path: 'f.txt',
      user: 'mallory',
      admin: true,
      force: true,
    });
    expect(forgedUnlock.status).toBe(403);
    expect(JSON.stringify(forgedUnlock.body)).toMatch(
      /cannot unlock a lock held at another device/,
    );
    const sameName = await postLockRequest(d.peerPort, fakeId, {
      op: 'unlock',
      path: 'f.txt',
      user: 'admin',
      admin: true,
      force: false,
    });
    expect(sameName.status).toBe(403);
    writeFileSync(join(d.folder, 'g.txt'), 'g\n');
    await waitFor('g.txt to be indexed', () => indexRow(d.db, 'g.txt'));
    const forgedLock = await postLockRequest(d.peerPort, fakeId, {
      op: 'lock',
      path: 'g.txt',
      owner: 'carol',
      device: d.id,
    });
    expect(forgedLock.status).toBe(403);
    // At its own device, for a user the cluster's table does not have: refused too.
    const unknownUser = await postLockRequest(d.peerPort, fakeId, {
      op: 'lock',
      path: 'g.txt',
      owner: 'nobody',
      device: fakeId.id,
    });
    expect(unknownUser.status).toBe(403);
    expect(JSON.stringify(unknownUser.body)).toMatch(/nobody, who is not a user of this cluster/);
    const locks = await lockstepAsync(['locks', '--json', '--home', d.home]);
    const rows = (JSON.parse(locks.stdout) as { locks: { path: string; owner: string }[] }).locks;
    expect(rows.map((l) => `${l.path}:${l.owner}`)).toEqual([`f.txt:admin.${d.id.slice(0, 7)}`]);
    expect(d.messages().filter((m) => m === 'refused a lock request from a peer')).toHaveLength(4);
    await stillWorks(d);
  });

  describe('a device refuses clients it does not know', () => {
    let known: TestCluster | undefined;
    let d: TestDevice;
    beforeAll(async () => {
      known = await TestCluster.create(['D']);
      d = known.get('D');
      await d.start();
    });
    afterAll(async () => {
      await known?.close();
    });

    it('refuses a client with an unknown certificate, revealing nothing', async () => {
      const got = await tryConnect(d.peerPort, strangerId);
      expect(got.status).toBeUndefined();
      expect(got.bytes).toBe(0);
      expect(got.closed).toBe(true);
      await waitFor('the refusal to be logged', () =>
        d
          .messages()
          .some((m) =>
            m.startsWith(`refused a peer connection from unknown device ${strangerId.id}`),
          ),
      );
      await stillWorks(d);
    });

    it('refuses a client without a certificate, revealing nothing', async () => {
      const got = await tryConnect(d.peerPort, undefined);
      expect(got.status).toBeUndefined();
      expect(got.bytes).toBe(0);
      expect(got.closed).toBe(true);
      await waitFor('the refusal to be logged', () =>
        d
          .messages()
          .some((m) => m.startsWith('refused a peer connection without a device certificate')),
      );
      await stillWorks(d);
    });
  });
});

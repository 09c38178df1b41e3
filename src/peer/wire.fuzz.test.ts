// Property-based fuzzing (fast-check) of every decoder of peer input: frames,
// index messages and records, chunk requests, lock stream messages, locks and
// forwarded lock requests. Each must return a value that passes its own
// checks or throw LockstepError PEER_INVALID with a message; never anything
// else, never hang. FUZZ_RUNS sets the number of cases per property.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LockstepError } from '../base/errors.js';
import { decodeLock, decodeLockRequest, decodeLockStream } from '../locks/lock-wire.js';
import {
  FrameDecoder,
  decodeChunkFetch,
  decodeIndexMessage,
  encodeFrame,
  fromWire,
  peerPathProblem,
} from './wire.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 2000);
const SEED = process.env.SEED === undefined ? undefined : Number(process.env.SEED);
const params = { numRuns: RUNS, ...(SEED === undefined ? {} : { seed: SEED }) };

const SHORT = 'AAAAAAA';
const DEVICE = 'AAAAAAA-BBBBBBB-CCCCCCC-DDDDDDD-EEEEEEE-FFFFFFF-GGGGGGG-HHHHHHH';
const HASH = 'ab'.repeat(32);

/** Path attacks and near misses. */
const hostilePaths = [
  '..',
  '../x',
  'a/../../x',
  '/etc/passwd',
  '//x',
  'a//b',
  './a',
  'a/.',
  'a\u0000b',
  'a\\..\\b',
  'C:\\x',
  '\ud800',
  'x\udfff',
  '',
  '.lockstep-tmp-a',
  'd/.lockstep-tmp-a',
  '.lockstep-folder',
  'a'.repeat(256),
  `${'d/'.repeat(2100)}x`,
  'e\u0301.txt', // NFD twin of é.txt
  '\u00e9.txt',
  'A.TXT',
  'a.txt',
  'a/b',
];

/** Any JSON-ish value, with the interesting ones mixed in. */
const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue(),
  fc.anything({ withBigInt: true, withNullPrototype: true, withObjectString: true }),
  fc.constantFrom<unknown>(...hostilePaths, NaN, Infinity, -1, 2 ** 53, [], {}, null),
);

const pathArb = fc.oneof(
  fc.constantFrom(...hostilePaths),
  fc.string(),
  fc.string({ unit: 'binary' }),
);

/** A valid wire record, to be mutated one field at a time. */
const goodRecord = {
  path: 'a.txt',
  type: 'file',
  size: 3,
  mtimeNs: '1700000000000000000',
  mode: 0o644,
  chunks: [[3, HASH]],
  target: '',
  version: { [SHORT]: 1 },
  deleted: false,
  sequence: 1,
  modifiedBy: SHORT,
};
const goodLock = {
  path: 'a.txt',
  id: 'lock-1',
  owner: 'alice',
  device: DEVICE,
  createdMs: 1,
  expiresMs: null,
  reason: '',
};

/** `base` with one field replaced by `value`, deleted, or one extra field added. */
function mutate(base: Record<string, unknown>) {
  return fc
    .tuple(
      fc.constantFrom(...Object.keys(base), 'extra', '__proto__', 'constructor'),
      anyValue,
      fc.constantFrom('set', 'delete'),
    )
    .map(([k, v, how]) => {
      const o: Record<string, unknown> = JSON.parse(JSON.stringify(base)) as Record<
        string,
        unknown
      >;
      if (how === 'delete') delete o[k];
      else Object.defineProperty(o, k, { value: v, enumerable: true, writable: true });
      return o;
    });
}

/** Runs `decode` on `input`: ok, or a PEER_INVALID LockstepError with a message. */
function decodesOrRefuses(decode: (v: unknown) => unknown, input: unknown): unknown {
  try {
    return decode(input);
  } catch (err) {
    expect(err).toBeInstanceOf(LockstepError);
    expect((err as LockstepError).code).toBe('PEER_INVALID');
    expect((err as Error).message.length).toBeGreaterThan(0);
    expect((err as Error).message.length).toBeLessThan(4000);
    return undefined;
  }
}

describe('hostile peer input (property-based)', () => {
  it('fromWire(): a record that passes has a safe path; anything else is PEER_INVALID', () => {
    fc.assert(
      fc.property(fc.oneof(anyValue, mutate(goodRecord)), (v) => {
        const r = decodesOrRefuses(fromWire, v) as { path: string } | undefined;
        if (r !== undefined) expect(peerPathProblem(r.path)).toBeUndefined();
      }),
      params,
    );
  });

  it('fromWire(): every path attack is refused, whatever else the record says', () => {
    fc.assert(
      fc.property(pathArb, (p) => {
        const r = decodesOrRefuses(fromWire, { ...goodRecord, path: p });
        expect(r === undefined).toBe(peerPathProblem(p) !== undefined);
      }),
      params,
    );
    for (const p of hostilePaths.slice(0, 19)) {
      expect(() => fromWire({ ...goodRecord, path: p }), p).toThrow(LockstepError);
    }
  });

  it('decodeIndexMessage(): hello, records and caughtUp, mangled', () => {
    const hello = {
      type: 'hello',
      protocol: 1,
      hashAlgorithm: 'blake3',
      indexId: 'abc',
      deviceId: DEVICE,
      sequence: 0,
      lockAuthority: DEVICE,
    };
    const envelopes = fc.oneof(
      anyValue,
      mutate(hello),
      mutate({ type: 'caughtUp', sequence: 3 }),
      mutate({ type: 'records', records: [goodRecord] }),
      fc
        .array(fc.oneof(anyValue, mutate(goodRecord)), { maxLength: 20 })
        .map((records) => ({ type: 'records', records })),
    );
    fc.assert(
      fc.property(envelopes, (v) => {
        const m = decodesOrRefuses(decodeIndexMessage, v) as
          { type: string; records?: { path: string }[] } | undefined;
        for (const r of m?.records ?? []) expect(peerPathProblem(r.path)).toBeUndefined();
      }),
      params,
    );
  });

  it('decodeChunkFetch(): hashes and hints, mangled; an unsafe hint path is dropped', () => {
    const req = fc.oneof(
      anyValue,
      mutate({ hashes: [HASH], at: [['a.txt', 0, 3]] }),
      fc
        .tuple(fc.array(fc.oneof(fc.constant(HASH), fc.string()), { maxLength: 5 }), pathArb)
        .map(([hashes, p]) => ({ hashes, at: hashes.map(() => [p, 0, 1]) })),
    );
    fc.assert(
      fc.property(req, (v) => {
        const r = decodesOrRefuses(decodeChunkFetch, v) as
          { at: (readonly [string, number, number] | null)[] } | undefined;
        for (const h of r?.at ?? []) if (h !== null) expect(peerPathProblem(h[0])).toBeUndefined();
      }),
      params,
    );
  });

  it('decodeLock(), decodeLockStream() and decodeLockRequest(), mangled', () => {
    const lockReq = {
      op: 'lock',
      path: 'a.txt',
      owner: 'alice',
      device: DEVICE,
      ttlMs: 1000,
      reason: 'x',
    };
    const unlockReq = { op: 'unlock', path: 'a.txt', user: 'alice', admin: false, force: false };
    fc.assert(
      fc.property(
        fc.oneof(anyValue, mutate(goodLock), mutate({ ...goodLock, path: '../x' })),
        (v) => {
          const l = decodesOrRefuses(decodeLock, v) as { path: string } | undefined;
          if (l !== undefined) expect(peerPathProblem(l.path)).toBeUndefined();
        },
      ),
      params,
    );
    fc.assert(
      fc.property(
        fc.oneof(
          anyValue,
          mutate({ type: 'change', change: { type: 'locked', lock: goodLock } }),
          fc.array(fc.oneof(mutate(goodLock), anyValue), { maxLength: 5 }).map((locks) => ({
            type: 'locks',
            locks,
          })),
        ),
        (v) => void decodesOrRefuses(decodeLockStream, v),
      ),
      params,
    );
    fc.assert(
      fc.property(
        fc.oneof(anyValue, mutate(lockReq), mutate(unlockReq)),
        (v) => void decodesOrRefuses(decodeLockRequest, v),
      ),
      params,
    );
  });

  it('FrameDecoder: any bytes, in any pieces, decode to values or refuse with PEER_INVALID, and stay refused', () => {
    const good = encodeFrame({ type: 'caughtUp', sequence: 1 });
    const stream = fc.oneof(
      fc.uint8Array({ maxLength: 300 }),
      // A valid frame with some bytes flipped.
      fc
        .array(fc.tuple(fc.nat(good.length - 1), fc.integer({ min: 0, max: 255 })), {
          maxLength: 4,
        })
        .map((flips) => {
          const b = Buffer.from(good);
          for (const [at, v] of flips) b[at] = v;
          return new Uint8Array(b);
        }),
      // A header declaring a huge length.
      fc.integer({ min: 0, max: 2 ** 32 - 1 }).map((n) => {
        const b = Buffer.alloc(8);
        b.writeUInt32BE(n, 0);
        return new Uint8Array(b);
      }),
    );
    fc.assert(
      fc.property(stream, fc.array(fc.nat(400), { maxLength: 6 }), (bytes, cuts) => {
        const d = new FrameDecoder(1024);
        const points = [...new Set(cuts.map((c) => Math.min(c, bytes.length)))].sort(
          (a, b) => a - b,
        );
        let from = 0;
        let failed = false;
        for (const to of [...points, bytes.length]) {
          try {
            d.push(bytes.subarray(from, to));
          } catch (err) {
            expect(err).toBeInstanceOf(LockstepError);
            expect((err as LockstepError).code).toBe('PEER_INVALID');
            failed = true;
            break;
          }
          from = to;
        }
        if (failed) expect(() => d.push(new Uint8Array([0]))).toThrow(LockstepError);
      }),
      params,
    );
  });
});

import { describe, expect, it } from 'vitest';
import { LockstepError } from '../base/errors.js';
import { formatDeviceId } from '../core/device-id.js';
import { DEFAULT_CDC } from '../core/fastcdc.js';
import type { FileRecord } from '../core/record.js';
import {
  FrameDecoder,
  MAX_CHUNK_REQUEST,
  MAX_FRAME_BYTES,
  MAX_RECORDS_PER_MESSAGE,
  decodeChunkFetch,
  encodeChunkFetch,
  decodeIndexMessage,
  encodeFrame,
  encodeIndexMessage,
  fromWire,
  peerPathProblem,
  toWire,
  type HelloMessage,
  type WireRecord,
} from './wire.js';

const A = 'AAAAAAA';
const B = 'BBBBBBB';
const hash = (n: number) => n.toString(16).padStart(64, '0');
const DEVICE_ID = formatDeviceId(new Uint8Array(32).fill(7));

const base = {
  mtimeNs: 1_700_000_000_123_456_789n,
  mode: 0o644,
  inode: 0,
  version: { [A]: 3, [B]: 1 },
  deleted: false,
  sequence: 42,
  modifiedBy: A,
};

const valid: { name: string; record: FileRecord }[] = [
  {
    name: 'a file with two chunks',
    record: {
      ...base,
      path: 'docs/report.pdf',
      type: 'file',
      size: 70_000,
      chunks: [
        { offset: 0, length: 65_536, hash: hash(1) },
        { offset: 65_536, length: 4_464, hash: hash(2) },
      ],
      target: '',
    },
  },
  {
    name: 'an empty file',
    record: { ...base, path: 'empty', type: 'file', size: 0, chunks: [], target: '' },
  },
  {
    name: 'a directory',
    record: {
      ...base,
      path: 'docs',
      type: 'directory',
      size: 0,
      chunks: [],
      target: '',
      mode: 0o755,
    },
  },
  {
    name: 'a symlink (size is the target length in UTF-8 bytes)',
    record: {
      ...base,
      path: 'link',
      type: 'symlink',
      size: Buffer.byteLength('../outside/été'),
      chunks: [],
      target: '../outside/été',
      mode: 0o777,
    },
  },
  {
    name: 'a tombstone',
    record: {
      ...base,
      path: 'gone.txt',
      type: 'file',
      size: 0,
      chunks: [],
      target: '',
      deleted: true,
    },
  },
  {
    name: 'a file with a non-ASCII path, the largest chunk, extreme mtime and no modifiedBy',
    record: {
      ...base,
      path: 'ünï/çødé/😀 name.txt',
      type: 'file',
      size: DEFAULT_CDC.max + 1,
      chunks: [
        { offset: 0, length: DEFAULT_CDC.max, hash: hash(0xabc) },
        { offset: DEFAULT_CDC.max, length: 1, hash: hash(0xdef) },
      ],
      target: '',
      mtimeNs: -(2n ** 63n),
      modifiedBy: '',
      mode: 0o7777,
    },
  },
  {
    name: 'a file written under a lock (its fencing token)',
    record: {
      ...base,
      path: 'locked.psd',
      type: 'file',
      size: 1,
      chunks: [{ offset: 0, length: 1, hash: hash(4) }],
      target: '',
      token: 2 ** 53 - 1,
    },
  },
  {
    name: 'a file with names at the byte limits',
    record: {
      ...base,
      path: `${'é'.repeat(127)}x/${'a'.repeat(255)}`,
      type: 'file',
      size: 1,
      chunks: [{ offset: 0, length: 1, hash: hash(3) }],
      target: '',
      mtimeNs: 2n ** 63n - 1n,
    },
  },
];

describe('toWire() and fromWire()', () => {
  for (const c of valid) {
    it(`round-trips ${c.name}`, () => {
      const wire = JSON.parse(JSON.stringify(toWire({ ...c.record, inode: 99 }))) as unknown;
      expect(fromWire(wire)).toEqual(c.record);
    });
  }

  it('sends no offsets and no inode, and mtime as a decimal string', () => {
    const wire = toWire({ ...(valid[0] as (typeof valid)[0]).record, inode: 1234 });
    expect(wire).not.toHaveProperty('inode');
    expect(wire.chunks).toEqual([
      [65_536, hash(1)],
      [4_464, hash(2)],
    ]);
    expect(wire.mtimeNs).toBe('1700000000123456789');
  });

  it('sends a token only when the record has one; a record without one reads as token 0', () => {
    const rec = (valid[0] as (typeof valid)[0]).record;
    expect(toWire(rec)).not.toHaveProperty('token');
    expect(toWire({ ...rec, token: 0 })).not.toHaveProperty('token');
    expect(toWire({ ...rec, token: 3 }).token).toBe(3);
    // A peer from before tokens sends none.
    expect(fromWire(toWire(rec)).token).toBeUndefined();
  });
});

/** A valid wire record of each kind, for the rejection table to break. */
function wire(kind: 'file' | 'directory' | 'symlink' | 'tombstone' = 'file'): WireRecord {
  const i = { file: 0, directory: 2, symlink: 3, tombstone: 4 }[kind];
  return toWire((valid[i] as (typeof valid)[0]).record);
}

const rejections: {
  name: string;
  value: unknown;
  /** The problem the message must name. */
  want: RegExp;
}[] = [
  { name: 'a ".." segment', value: { ...wire(), path: 'a/../b' }, want: /has a "\.\." segment/ },
  { name: 'a lone ".."', value: { ...wire(), path: '..' }, want: /has a "\.\." segment/ },
  { name: 'a "." segment', value: { ...wire(), path: 'a/./b' }, want: /has a "\." segment/ },
  { name: 'an absolute path', value: { ...wire(), path: '/etc/passwd' }, want: /is absolute/ },
  { name: 'NUL in the path', value: { ...wire(), path: 'a\0b' }, want: /contains NUL/ },
  { name: 'a backslash', value: { ...wire(), path: 'a\\..\\b' }, want: /contains a backslash/ },
  { name: 'a lone surrogate', value: { ...wire(), path: 'a\ud800b' }, want: /not valid UTF-8/ },
  { name: 'an empty path', value: { ...wire(), path: '' }, want: /path is empty/ },
  { name: 'a trailing slash', value: { ...wire(), path: 'a/' }, want: /empty segment/ },
  { name: 'a double slash', value: { ...wire(), path: 'a//b' }, want: /empty segment/ },
  {
    name: 'the folder marker',
    value: { ...wire(), path: '.lockstep-folder' },
    want: /internal to Lockstep/,
  },
  { name: 'a temp file', value: { ...wire(), path: '.lockstep-tmp-x' }, want: /internal/ },
  { name: 'a nested temp file', value: { ...wire(), path: 'a/.lockstep-tmp-x' }, want: /internal/ },
  {
    name: 'a path inside a temp directory',
    value: { ...wire(), path: '.lockstep-tmp-x/y' },
    want: /inside "\.lockstep-tmp-x", which is internal/,
  },
  {
    name: 'a 256-byte name',
    value: { ...wire(), path: `a/${'x'.repeat(256)}` },
    want: /name longer than 255/,
  },
  {
    name: 'a 128-character name of 256 bytes',
    value: { ...wire(), path: 'é'.repeat(128) },
    want: /name longer than 255 bytes/,
  },
  {
    name: 'a path over 4096 bytes in fewer characters',
    value: { ...wire(), path: Array.from({ length: 20 }, () => 'é'.repeat(110)).join('/') },
    want: /path is longer than 4096 bytes/,
  },
  {
    name: 'a path over 4096 characters',
    value: { ...wire(), path: 'a/'.repeat(2048) + 'a' },
    want: /longer than 4096/,
  },
  {
    name: 'a path that is not a string',
    value: { ...wire(), path: 7 },
    want: /path must be a string/,
  },
  { name: 'an unknown type', value: { ...wire(), type: 'fifo' }, want: /type must be one of/ },
  { name: 'a negative size', value: { ...wire(), size: -1 }, want: /size must be a non-negative/ },
  { name: 'a fractional size', value: { ...wire(), size: 1.5 }, want: /size must be/ },
  { name: 'a size as a string', value: { ...wire(), size: '70000' }, want: /size must be/ },
  { name: 'an unsafe size', value: { ...wire(), size: 2 ** 53 }, want: /size must be/ },
  {
    name: 'mtime as a number',
    value: { ...wire(), mtimeNs: 1 },
    want: /mtimeNs must be a decimal/,
  },
  { name: 'mtime in exponent form', value: { ...wire(), mtimeNs: '1e9' }, want: /mtimeNs must be/ },
  {
    name: 'mtime of 21 digits',
    value: { ...wire(), mtimeNs: '1'.repeat(21) },
    want: /mtimeNs must be/,
  },
  {
    name: 'mtime of 2^63',
    value: { ...wire(), mtimeNs: '9223372036854775808' },
    want: /outside the signed 64-bit range/,
  },
  {
    name: 'mtime below -2^63',
    value: { ...wire(), mtimeNs: '-9223372036854775809' },
    want: /outside the signed 64-bit range/,
  },
  { name: 'a mode above 0o7777', value: { ...wire(), mode: 0o10000 }, want: /mode must be/ },
  { name: 'a negative mode', value: { ...wire(), mode: -1 }, want: /mode must be/ },
  {
    name: 'a chunk sum that differs from the size',
    value: { ...wire(), size: 70_001 },
    want: /chunk lengths sum to 70000 bytes but size is 70001/,
  },
  {
    name: 'a non-empty file without chunks',
    value: { ...wire(), chunks: [] },
    want: /sum to 0 bytes but size is 70000/,
  },
  {
    name: 'more chunks than bytes',
    value: {
      ...wire(),
      size: 1,
      chunks: [
        [1, hash(1)],
        [1, hash(2)],
      ],
    },
    want: /has 2 chunks for 1 bytes/,
  },
  {
    name: 'a directory with chunks',
    value: { ...wire('directory'), chunks: [[1, hash(1)]] },
    want: /a directory must have no chunks/,
  },
  {
    name: 'a directory with a size',
    value: { ...wire('directory'), size: 4096 },
    want: /a directory must have size 0/,
  },
  {
    name: 'a directory with a target',
    value: { ...wire('directory'), target: 'x' },
    want: /a directory must have no target/,
  },
  {
    name: 'a tombstone with a size',
    value: { ...wire('tombstone'), size: 5 },
    want: /a tombstone must have size 0/,
  },
  {
    name: 'a tombstone with chunks',
    value: { ...wire('tombstone'), size: 1, chunks: [[1, hash(1)]] },
    want: /a tombstone must have no chunks/,
  },
  {
    name: 'a file with a target',
    value: { ...wire(), target: '/etc' },
    want: /a file must have no target/,
  },
  {
    name: 'a symlink with chunks',
    value: { ...wire('symlink'), chunks: [[1, hash(1)]] },
    want: /a symlink must have no chunks/,
  },
  {
    name: 'a symlink without a target',
    value: { ...wire('symlink'), target: '', size: 0 },
    want: /a symlink must have a target/,
  },
  {
    name: 'a symlink target with NUL',
    value: { ...wire('symlink'), target: 'a\0b', size: 3 },
    want: /symlink target contains NUL/,
  },
  {
    name: 'a symlink target with a lone surrogate',
    value: { ...wire('symlink'), target: '\udc00', size: 3 },
    want: /symlink target is not valid UTF-8/,
  },
  {
    name: 'a symlink whose size is not its target length',
    value: { ...wire('symlink'), size: '../outside/été'.length },
    want: /size must be its target's length \(16 bytes\), got 14/,
  },
  {
    name: 'a symlink target over 4096 bytes',
    value: { ...wire('symlink'), target: 'x'.repeat(4097), size: 4097 },
    want: /symlink target is longer than 4096 bytes/,
  },
  {
    name: 'a bad hash (upper case)',
    value: { ...wire(), chunks: [[65_536, hash(1).replace(/0/g, 'A')], wire().chunks[1]] },
    want: /chunk 0 hash must be 64 lowercase hex/,
  },
  {
    name: 'a short hash',
    value: { ...wire(), chunks: [wire().chunks[0], [4_464, 'abc']] },
    want: /chunk 1 hash must be/,
  },
  {
    name: 'a zero-length chunk',
    value: { ...wire(), chunks: [[0, hash(3)], ...wire().chunks] },
    want: /chunk 0 length must be from 1 to 262144/,
  },
  {
    name: 'a chunk longer than the chunker maximum',
    value: { ...wire(), size: DEFAULT_CDC.max + 1, chunks: [[DEFAULT_CDC.max + 1, hash(1)]] },
    want: /chunk 0 length must be from 1/,
  },
  {
    name: 'a chunk that is not a pair',
    value: { ...wire(), chunks: [[70_000, hash(1), 'extra']] },
    want: /chunk 0 must be a \[length, hash\] pair/,
  },
  {
    name: 'a chunk as an object',
    value: { ...wire(), chunks: [{ length: 70_000, hash: hash(1) }] },
    want: /chunk 0 must be a \[length, hash\] pair/,
  },
  {
    name: 'chunks not an array',
    value: { ...wire(), chunks: {} },
    want: /chunks must be an array/,
  },
  {
    name: 'an empty version',
    value: { ...wire(), version: {}, modifiedBy: '' },
    want: /version is empty/,
  },
  {
    name: 'a version with a bad key',
    value: { ...wire(), version: { ...wire().version, 'not-an-id': 1 } },
    want: /invalid version: .*invalid device key/,
  },
  {
    name: 'a version with a zero counter',
    value: { ...wire(), version: { [A]: 0 } },
    want: /invalid version: .*positive integer/,
  },
  {
    name: 'a version as an array',
    value: { ...wire(), version: [1] },
    want: /version must be an object/,
  },
  {
    name: 'a negative sequence',
    value: { ...wire(), sequence: -1 },
    want: /sequence must be a positive/,
  },
  {
    name: 'a zero sequence',
    value: { ...wire(), sequence: 0 },
    want: /sequence must be a positive/,
  },
  {
    name: 'deleted not a boolean',
    value: { ...wire(), deleted: 0 },
    want: /deleted must be a boolean/,
  },
  {
    name: 'a target not a string',
    value: { ...wire(), target: null },
    want: /target must be a string/,
  },
  {
    name: 'modifiedBy not a short ID',
    value: { ...wire(), modifiedBy: 'aaaaaaa' },
    want: /modifiedBy must be '' or a short device ID/,
  },
  {
    name: 'modifiedBy without a counter in the version',
    value: { ...wire(), modifiedBy: 'CCCCCCC' },
    want: /modifiedBy CCCCCCC has no counter in the version/,
  },
  {
    name: 'a token of 0 (a record without one sends none)',
    value: { ...wire(), token: 0 },
    want: /token must be a positive integer \(or absent\), got 0/,
  },
  {
    name: 'a negative token',
    value: { ...wire(), token: -1 },
    want: /token must be a positive integer/,
  },
  {
    name: 'a token that is not a safe integer',
    value: { ...wire(), token: 2 ** 53 },
    want: /token must be a positive integer/,
  },
  { name: 'a token as a string', value: { ...wire(), token: '4' }, want: /token must be/ },
  { name: 'a null token', value: { ...wire(), token: null }, want: /token must be/ },
  { name: 'an extra field', value: { ...wire(), inode: 5 }, want: /unknown field "inode"/ },
  {
    name: 'a __proto__ field',
    value: JSON.parse(`{"__proto__":1,${JSON.stringify(wire()).slice(1)}`) as unknown,
    want: /unknown field "__proto__"/,
  },
  {
    name: 'a missing field',
    value: (({ target: _, ...rest }) => rest)(wire()),
    want: /missing field target/,
  },
  { name: 'null', value: null, want: /must be an object, got null/ },
  { name: 'an array', value: [wire()], want: /must be an object, got an array of 1/ },
  { name: 'a string', value: 'docs/report.pdf', want: /must be an object/ },
  { name: 'an object with a prototype', value: new Date(), want: /must be an object/ },
];

/** Calls `fn`, expecting a PEER_INVALID LockstepError; returns its message. */
function peerInvalid(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(LockstepError);
    expect((err as LockstepError).code).toBe('PEER_INVALID');
    return (err as LockstepError).message;
  }
  throw new Error('expected a PEER_INVALID error, got none');
}

describe('fromWire() rejects', () => {
  for (const c of rejections) {
    it(c.name, () => {
      const message = peerInvalid(() => fromWire(c.value));
      expect(message).toMatch(c.want);
      const path = (c.value as { path?: unknown } | null)?.path;
      if (typeof path === 'string' && path.length < 100) {
        expect(message.startsWith(`Peer record ${JSON.stringify(path)}: `)).toBe(true);
      } else {
        expect(message).toMatch(/^Peer record/);
      }
    });
  }

  it('quotes a long path briefly in its message', () => {
    const message = peerInvalid(() => fromWire({ ...wire(), path: 'x'.repeat(100_000) }));
    expect(message.length).toBeLessThan(400);
  });
});

describe('peerPathProblem()', () => {
  it('accepts ordinary paths, including names that merely look internal', () => {
    for (const p of ['a', 'a/b/c', '.lockstepignore', 'sub/.lockstep-folder', '..a', 'a..', '.x']) {
      expect(peerPathProblem(p)).toBeUndefined();
    }
  });
});

/** Concatenates frames into one stream. */
const stream = (...values: unknown[]) => Buffer.concat(values.map((v) => encodeFrame(v)));

describe('frames', () => {
  const values = [{ type: 'hello', text: 'héllo ✓ 😀' }, [1, 2, 3], 'x', null];
  const bytes = stream(...values);

  it('encodes a big-endian length and the UTF-8 JSON', () => {
    const frame = encodeFrame({ a: 'é' });
    expect(frame.readUInt32BE(0)).toBe(frame.length - 4);
    expect(frame.subarray(4).toString('utf8')).toBe('{"a":"é"}');
  });

  it('decodes several frames pushed at once', () => {
    expect(new FrameDecoder().push(bytes)).toEqual(values);
  });

  it('decodes the same whatever byte boundary the data is split at', () => {
    for (let i = 0; i <= bytes.length; i++) {
      const d = new FrameDecoder();
      const got = [...d.push(bytes.subarray(0, i)), ...d.push(bytes.subarray(i))];
      expect(got).toEqual(values);
      expect(d.buffered).toBe(0);
    }
  });

  it('decodes the same byte by byte, holding the partial frame meanwhile', () => {
    const d = new FrameDecoder();
    const got: unknown[] = [];
    for (let i = 0; i < bytes.length; i++) {
      got.push(...d.push(bytes.subarray(i, i + 1)));
      if (got.length === 0) expect(d.buffered).toBe(i + 1);
    }
    expect(got).toEqual(values);
  });

  it('decodes a maximal frame arriving in 16 KiB pieces', () => {
    const big = 'x'.repeat(MAX_FRAME_BYTES - 2);
    const frame = encodeFrame(big);
    expect(frame.length).toBe(MAX_FRAME_BYTES + 4);
    const d = new FrameDecoder();
    const piece = 16 * 1024;
    const last = frame.length - 4; // 1024 whole pieces, then the last 4 bytes
    for (let at = 0; at < last; at += piece) {
      expect(d.push(frame.subarray(at, at + piece))).toEqual([]);
    }
    expect(d.buffered).toBe(last);
    expect(d.push(frame.subarray(last))).toEqual([big]);
    expect(d.buffered).toBe(0);
  });

  it('accepts a frame of exactly the limit and refuses one byte more', () => {
    const frame = encodeFrame('12345678');
    expect(new FrameDecoder(10).push(frame)).toEqual(['12345678']);
    const message = peerInvalid(() => new FrameDecoder(9).push(frame));
    expect(message).toMatch(/declared length 10 bytes exceeds the limit of 9 bytes/);
  });

  it('refuses an oversized declared length from its header alone', () => {
    const d = new FrameDecoder();
    const header = Buffer.alloc(4);
    header.writeUInt32BE(MAX_FRAME_BYTES + 1);
    expect(d.push(header.subarray(0, 3))).toEqual([]);
    const message = peerInvalid(() => d.push(header.subarray(3)));
    expect(message).toMatch(/declared length 16777217 bytes exceeds the limit of 16777216/);
    expect(d.buffered).toBe(0);
    // The stream is out of step for good.
    expect(peerInvalid(() => d.push(encodeFrame(1)))).toBe(message);
  });

  it('refuses the largest declared length', () => {
    const message = peerInvalid(() => new FrameDecoder().push(Buffer.from([255, 255, 255, 255])));
    expect(message).toMatch(/declared length 4294967295 bytes/);
  });

  const invalidUtf8: [string, number[]][] = [
    ['a stray continuation byte', [0x22, 0x80, 0x22]],
    ['0xff', [0x22, 0xff, 0x22]],
    ['an overlong "/"', [0x22, 0xc0, 0xaf, 0x22]],
    ['an encoded surrogate', [0x22, 0xed, 0xa0, 0x80, 0x22]],
    ['a truncated sequence', [0x22, 0xe2, 0x82, 0x22]],
  ];
  for (const [name, body] of invalidUtf8) {
    it(`refuses a body that is not valid UTF-8: ${name}`, () => {
      const frame = Buffer.concat([Buffer.from([0, 0, 0, body.length]), Buffer.from(body)]);
      expect(peerInvalid(() => new FrameDecoder().push(frame))).toMatch(/not valid UTF-8/);
    });
  }

  for (const text of ['{"a":', '', 'undefined', "{'a':1}", '\ufeff{}', '1 2']) {
    it(`refuses a body that is not valid JSON: ${JSON.stringify(text)}`, () => {
      const body = Buffer.from(text);
      const frame = Buffer.concat([Buffer.alloc(4), body]);
      frame.writeUInt32BE(body.length);
      expect(peerInvalid(() => new FrameDecoder().push(frame))).toMatch(/not valid JSON/);
    });
  }

  it('refuses to encode a frame the peer would refuse, or a value with no JSON form', () => {
    expect(() => encodeFrame('x'.repeat(100), 50)).toThrow(RangeError);
    expect(() => encodeFrame(undefined)).toThrow(TypeError);
  });
});

const hello: HelloMessage = {
  type: 'hello',
  protocol: 1,
  hashAlgorithm: 'blake3',
  indexId: 'idx_2024-01',
  deviceId: DEVICE_ID,
  sequence: 17,
  lockAuthority: DEVICE_ID,
  authorityDecided: true,
  authorityEpoch: 0,
};

/** Encodes a message and decodes its frame back to a value. */
function viaFrame(buf: Buffer): unknown {
  const got = new FrameDecoder().push(buf);
  expect(got).toHaveLength(1);
  return got[0];
}

describe('index messages', () => {
  it('round-trip hello and caughtUp', () => {
    expect(decodeIndexMessage(viaFrame(encodeIndexMessage(hello)))).toEqual(hello);
    // A device whose locks are in etcd names the prefix instead of a device.
    const etcd = { ...hello, lockAuthority: 'etcd:/lockstep/team/' };
    expect(decodeIndexMessage(viaFrame(encodeIndexMessage(etcd)))).toEqual(etcd);
    const caughtUp = { type: 'caughtUp', sequence: 0 } as const;
    expect(decodeIndexMessage(viaFrame(encodeIndexMessage(caughtUp)))).toEqual(caughtUp);
  });

  it('round-trip records in their wire form', () => {
    const records = valid.map((c) => ({ ...c.record, inode: 7 }));
    const value = viaFrame(encodeIndexMessage({ type: 'records', records: records.map(toWire) }));
    expect((value as { records: unknown[] }).records[0]).toEqual(toWire(records[0] as FileRecord));
    expect(decodeIndexMessage(value)).toEqual({
      type: 'records',
      records: valid.map((c) => c.record),
      rejected: [],
    });
  });

  it('keep the good records of a message and list each bad one', () => {
    const good = wire();
    const msg = {
      type: 'records',
      records: [
        { ...good, path: 'a/../../etc/passwd' },
        good,
        42,
        { ...wire('directory'), size: 1 },
        wire('symlink'),
      ],
    };
    const got = decodeIndexMessage(msg);
    if (got.type !== 'records') throw new Error('expected records');
    expect(got.records.map((r) => r.path)).toEqual(['docs/report.pdf', 'link']);
    expect(got.rejected).toEqual([
      {
        path: 'a/../../etc/passwd',
        reason: 'Peer record "a/../../etc/passwd": path has a ".." segment',
      },
      { reason: 'Peer record: must be an object, got 42' },
      { path: 'docs', reason: 'Peer record "docs": a directory must have size 0, got 1' },
    ]);
  });

  it('accept exactly the maximum number of records', () => {
    const got = decodeIndexMessage({
      type: 'records',
      records: Array.from({ length: MAX_RECORDS_PER_MESSAGE }, () => wire('directory')),
    });
    expect(got.type === 'records' && got.records.length).toBe(MAX_RECORDS_PER_MESSAGE);
  });

  it('refuse to encode more records than a message may carry', () => {
    const records = Array.from(
      { length: MAX_RECORDS_PER_MESSAGE + 1 },
      () => (valid[2] as (typeof valid)[0]).record,
    );
    expect(() => encodeIndexMessage({ type: 'records', records: records.map(toWire) })).toThrow(
      RangeError,
    );
  });

  const envelopes: { name: string; value: unknown; want: RegExp }[] = [
    { name: 'not an object', value: [hello], want: /must be an object/ },
    { name: 'no type', value: { sequence: 1 }, want: /unknown type nothing/ },
    { name: 'an unknown type', value: { type: 'goodbye' }, want: /unknown type "goodbye"/ },
    {
      name: 'hello with protocol 2',
      value: { ...hello, protocol: 2 },
      want: /protocol 2 is not supported/,
    },
    {
      name: 'hello with protocol "1"',
      value: { ...hello, protocol: '1' },
      want: /protocol "1" is not supported/,
    },
    {
      name: 'hello with another hash algorithm',
      value: { ...hello, hashAlgorithm: 'sha256' },
      want: /hash algorithm "sha256" is not supported/,
    },
    {
      name: 'hello with an empty indexId',
      value: { ...hello, indexId: '' },
      want: /indexId must be/,
    },
    {
      name: 'hello with a 65-character indexId',
      value: { ...hello, indexId: 'a'.repeat(65) },
      want: /indexId must be/,
    },
    { name: 'hello with a space in indexId', value: { ...hello, indexId: 'a b' }, want: /indexId/ },
    {
      name: 'hello with a non-canonical deviceId',
      value: { ...hello, deviceId: DEVICE_ID.toLowerCase() },
      want: /deviceId must be a device ID/,
    },
    { name: 'hello with a garbage deviceId', value: { ...hello, deviceId: 'x' }, want: /deviceId/ },
    {
      name: 'hello with an etcd authority without a prefix',
      value: { ...hello, lockAuthority: 'etcd:' },
      want: /hello: lockAuthority must be a device ID or etcd:PREFIX, got "etcd:"$/,
    },
    {
      name: 'hello with an etcd prefix holding a space',
      value: { ...hello, lockAuthority: 'etcd:/a b/' },
      want: /hello: lockAuthority must be a device ID or etcd:PREFIX/,
    },
    {
      name: 'hello with a negative sequence',
      value: { ...hello, sequence: -1 },
      want: /hello: sequence must be a non-negative integer/,
    },
    {
      name: 'hello without a sequence',
      value: (({ sequence: _, ...rest }) => rest)(hello),
      want: /missing field sequence/,
    },
    { name: 'hello with an extra field', value: { ...hello, x: 1 }, want: /unknown field "x"/ },
    {
      name: 'caughtUp with a fractional sequence',
      value: { type: 'caughtUp', sequence: 1.5 },
      want: /caughtUp: sequence must be/,
    },
    { name: 'records without records', value: { type: 'records' }, want: /missing field records/ },
    {
      name: 'records not an array',
      value: { type: 'records', records: {} },
      want: /records must be an array/,
    },
    {
      name: 'too many records',
      value: { type: 'records', records: new Array(MAX_RECORDS_PER_MESSAGE + 1).fill(0) },
      want: /carries 5001 records, more than 5000/,
    },
  ];
  for (const c of envelopes) {
    it(`throw for an envelope with ${c.name}`, () => {
      const message = peerInvalid(() => decodeIndexMessage(c.value));
      expect(message).toMatch(/^Peer index message: /);
      expect(message).toMatch(c.want);
    });
  }
});

describe('encodeChunkFetch() and decodeChunkFetch()', () => {
  it('round-trip the requested hashes, with and without hints', () => {
    const hashes = Array.from({ length: MAX_CHUNK_REQUEST }, (_, i) => hash(i));
    const none = hashes.map(() => null);
    const body = encodeChunkFetch({ hashes, at: none });
    expect(JSON.parse(body)).toEqual({ hashes });
    expect(decodeChunkFetch(JSON.parse(body))).toEqual({ hashes, at: none });
    const at = [['a/b.bin', 65536, 1000] as const, null];
    const two = { hashes: [hash(1), hash(2)], at };
    expect(decodeChunkFetch(JSON.parse(encodeChunkFetch(two)))).toEqual(two);
  });

  const bad: { name: string; value: unknown; want: RegExp }[] = [
    { name: 'no hashes', value: { hashes: [] }, want: /1 to 1024 hashes, got 0/ },
    {
      name: 'too many hashes',
      value: { hashes: new Array(MAX_CHUNK_REQUEST + 1).fill(hash(1)) },
      want: /got 1025/,
    },
    {
      name: 'a bad hash',
      value: { hashes: [hash(1), 'ABC'] },
      want: /hash 1 must be 64 lowercase hex/,
    },
    { name: 'a hash that is a number', value: { hashes: [1] }, want: /hash 0 must be/ },
    { name: 'hashes not an array', value: { hashes: hash(1) }, want: /hashes must be an array/ },
    {
      name: 'an extra field',
      value: { hashes: [hash(1)], all: true },
      want: /unknown field "all"/,
    },
    { name: 'not an object', value: null, want: /must be an object/ },
  ];
  for (const c of bad) {
    it(`throws for ${c.name}`, () => {
      expect(peerInvalid(() => decodeChunkFetch(c.value))).toMatch(c.want);
    });
  }
});

/** xorshift32: a small deterministic generator for the fuzz loop. */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

describe('fuzz', () => {
  const rand = prng(0x5eed);
  const int = (n: number) => Math.floor(rand() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)] as T;
  const interesting: unknown[] = [
    0,
    -1,
    1,
    1.5,
    2 ** 53,
    -(2 ** 31),
    4096,
    NaN,
    Infinity,
    '',
    'a',
    '0',
    '-0',
    '..',
    '/',
    'a\0',
    '\ud800',
    hash(1),
    A,
    'é'.repeat(200),
    null,
    true,
    false,
    [],
    [[1, hash(1)]],
    [[0, '']],
    {},
    { [A]: 1 },
    { [A]: -1 },
    undefined,
    10n,
  ];
  const pathBits = [
    'a',
    'é',
    '/',
    '.',
    '..',
    '\0',
    '\\',
    '\ud800',
    '😀',
    '.lockstep-tmp-',
    ' ',
    '',
  ];

  /** Expects `fn` to return or to throw PEER_INVALID; returns the result or undefined. */
  function tolerate<T>(fn: () => T): T | undefined {
    try {
      return fn();
    } catch (err) {
      if (!(err instanceof LockstepError) || err.code !== 'PEER_INVALID') throw err;
      return undefined;
    }
  }

  function mutate(w: WireRecord): unknown {
    const out: Record<string, unknown> = { ...w };
    const keys = Object.keys(out);
    for (let n = 1 + int(3); n > 0; n--) {
      const what = int(6);
      if (what === 0) out[pick(keys)] = pick(interesting);
      else if (what === 1) delete out[pick(keys)];
      else if (what === 2) out[pick(['extra', 'inode', ...keys])] = pick(interesting);
      else if (what === 3) {
        let p = '';
        for (let i = int(8); i >= 0; i--) p += pick(pathBits);
        out.path = p;
      } else if (what === 4) out.size = (out.size as number) + pick([-1, 1, 1000]);
      else {
        const chunks = Array.isArray(out.chunks) ? [...(out.chunks as unknown[])] : [];
        chunks.splice(int(chunks.length + 1), int(2), [
          int(DEFAULT_CDC.max + 2),
          pick(interesting),
        ]);
        out.chunks = chunks;
      }
    }
    return out;
  }

  it('fromWire() returns a valid record or throws PEER_INVALID, never anything else', () => {
    let accepted = 0;
    for (let i = 0; i < 2000; i++) {
      const value = mutate(toWire(pick(valid).record));
      const r = tolerate(() => fromWire(value));
      if (r === undefined) continue;
      accepted++;
      expect(peerPathProblem(r.path)).toBeUndefined();
      expect(fromWire(JSON.parse(JSON.stringify(toWire(r))))).toEqual(r);
    }
    // The mutations must also produce valid records sometimes, or the loop proves little.
    expect(accepted).toBeGreaterThan(20);
  });

  it('FrameDecoder and decodeIndexMessage() decode or throw PEER_INVALID on mangled bytes', () => {
    const good = encodeIndexMessage({
      type: 'records',
      records: valid.map((c) => toWire(c.record)),
    });
    for (let i = 0; i < 2000; i++) {
      let bytes: Buffer;
      if (i % 2 === 0) {
        // Random bytes after a header that sometimes declares a sane length.
        bytes = Buffer.from(Array.from({ length: int(64) }, () => int(256)));
        if (bytes.length >= 4 && rand() < 0.7) bytes.writeUInt32BE(int(bytes.length));
      } else {
        // A valid frame with a few bytes of its body flipped, and maybe cut short.
        bytes = Buffer.from(good);
        for (let n = 1 + int(4); n > 0; n--) bytes[4 + int(bytes.length - 4)] = int(256);
        if (rand() < 0.2) bytes = bytes.subarray(0, int(bytes.length));
      }
      const d = new FrameDecoder(1024 * 1024);
      const split = int(bytes.length + 1);
      const values = tolerate(() => [
        ...d.push(bytes.subarray(0, split)),
        ...d.push(bytes.subarray(split)),
      ]);
      for (const v of values ?? []) {
        const msg = tolerate(() => decodeIndexMessage(v));
        if (msg?.type === 'records') {
          for (const r of msg.records) expect(peerPathProblem(r.path)).toBeUndefined();
        }
        tolerate(() => fromWire(v));
        tolerate(() => decodeChunkFetch(v));
      }
    }
  });
});

describe('decodeChunkFetch()', () => {
  const h = 'ab'.repeat(32);
  it('takes hints per hash and drops hints with unsafe paths', () => {
    expect(decodeChunkFetch({ hashes: [h] })).toEqual({ hashes: [h], at: [null] });
    expect(
      decodeChunkFetch({
        hashes: [h, h, h],
        at: [['a/b.bin', 65536, 1000], null, ['../etc/passwd', 0, 10]],
      }),
    ).toEqual({ hashes: [h, h, h], at: [['a/b.bin', 65536, 1000], null, null] });
  });
  it.each([
    [{ hashes: [h], at: [] }, /one entry per hash/],
    [{ hashes: [h], at: [['a', -1, 5]] }, /at\[0\] must be null or \[path, offset, length\]/],
    [{ hashes: [h], at: [['a', 0, 0]] }, /at\[0\]/],
    [{ hashes: [h], at: [['a', 0, 300000]] }, /at\[0\]/],
    [{ hashes: [h], at: [[1, 0, 5]] }, /at\[0\]/],
    [{ hashes: [h], at: 'x' }, /one entry per hash/],
    [{ hashes: [h], at: [null], more: 1 }, /more/],
  ])('rejects %j', (value, want) => {
    expect(() => decodeChunkFetch(value)).toThrow(want);
  });
});

/**
 * The index stream of the peer protocol: `hello`, then `records` messages
 * (the backlog), `caughtUp`, then more `records` as the index changes. The
 * listener encodes every message with {@link encodeIndexMessage}; the link
 * decodes them with {@link decodeIndexMessage}.
 */
import { LockstepError } from '../base/errors.js';
import { parseDeviceId } from '../core/device-id.js';
import { HASH_ALGORITHM, type FileRecord } from '../core/record.js';
import { encodeFrame } from './frame.js';
import {
  MAX_MESSAGE_CHUNKS,
  fromWire,
  type BaseResolver,
  type ChunkBudget,
  type WireRecord,
} from './record-wire.js';
import { checkFields, isPlainObject, isSafeInteger, show, stringOr } from './wire-check.js';

/** The protocol version carried by `hello`; a peer with another one is refused. */
export const PROTOCOL_VERSION = 1;
/** The most records one `records` message may carry. */
export const MAX_RECORDS_PER_MESSAGE = 5000;

/** Sent first by the serving side of an index stream. */
export interface HelloMessage {
  readonly type: 'hello';
  readonly protocol: typeof PROTOCOL_VERSION;
  readonly hashAlgorithm: typeof HASH_ALGORITHM;
  /** Names the sender's index (1 to 64 of `A-Z a-z 0-9 _ -`); a new one means start over. */
  readonly indexId: string;
  /** The sender's device ID, canonical form. */
  readonly deviceId: string;
  /** The last sequence number the sender issued. */
  readonly sequence: number;
  /**
   * The device the sender takes as lock authority (itself, provisionally,
   * while undecided); devices compare choices.
   */
  readonly lockAuthority: string;
  /** Whether the sender's choice is recorded (false: it adopts its cluster's). */
  readonly authorityDecided: boolean;
  /** How many times the sender's recorded authority was moved on purpose. */
  readonly authorityEpoch: number;
}

/** The sender's choice of lock authority changed (adopted, moved, or edited): as in hello. */
export interface AuthorityMessage {
  readonly type: 'authority';
  readonly lockAuthority: string;
  readonly authorityDecided: boolean;
  readonly authorityEpoch: number;
}

/** The backlog has been sent; live updates follow as more `records` messages. */
export interface CaughtUpMessage {
  readonly type: 'caughtUp';
  readonly sequence: number;
}

/**
 * Records to send, already in their {@link WireRecord} form: whole, or with
 * a chunk-list delta for a receiver that asked for deltas.
 */
export interface RecordsMessage {
  readonly type: 'records';
  readonly records: readonly WireRecord[];
}

/** A record a peer sent that failed {@link fromWire}. */
export interface RejectedRecord {
  /** The record's path when it was a string: verbatim and untrusted (may be long or malformed). */
  readonly path?: string;
  /** Why it was rejected; quotes the path safely. */
  readonly reason: string;
}

/** Records received: the good ones, and a reason for each bad one. */
export interface DecodedRecordsMessage {
  readonly type: 'records';
  readonly records: FileRecord[];
  readonly rejected: RejectedRecord[];
}

/** A message of the index stream, as sent. */
export type OutgoingIndexMessage =
  HelloMessage | RecordsMessage | CaughtUpMessage | AuthorityMessage;
/** A message of the index stream, as decoded. */
export type IndexMessage =
  HelloMessage | DecodedRecordsMessage | CaughtUpMessage | AuthorityMessage;

const INDEX_ID_RE = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * Encodes an index stream message as a frame: the one encoder of the index
 * stream, which the listener sends every message through.
 *
 * @throws RangeError if it carries more than {@link MAX_RECORDS_PER_MESSAGE}
 *   records or its frame would exceed {@link MAX_FRAME_BYTES}: split it first
 */
export function encodeIndexMessage(msg: OutgoingIndexMessage): Buffer {
  if (msg.type !== 'records') return encodeFrame(msg);
  if (msg.records.length > MAX_RECORDS_PER_MESSAGE) {
    throw new RangeError(
      `A records message may carry at most ${MAX_RECORDS_PER_MESSAGE} records, got ${msg.records.length}`,
    );
  }
  return encodeFrame(msg);
}

/**
 * Checks a decoded index stream message. The envelope must be exact (known
 * type, the expected fields and no others, our protocol version and hash
 * algorithm, at most {@link MAX_RECORDS_PER_MESSAGE} records); each record
 * is checked on its own with {@link fromWire}, so one bad record is listed in
 * `rejected` and the others still count.
 *
 * Records may carry chunk deltas only when `resolveBase` is given.
 *
 * @throws LockstepError `PEER_INVALID` for a malformed envelope
 * @throws DeltaBaseMissing when a record's delta base is not held here
 */
export function decodeIndexMessage(value: unknown, resolveBase?: BaseResolver): IndexMessage {
  if (!isPlainObject(value)) throw messageError(`must be an object, got ${show(value)}`);
  switch (value.type) {
    case 'hello': {
      checkFields(
        value,
        [
          'type',
          'protocol',
          'hashAlgorithm',
          'indexId',
          'deviceId',
          'sequence',
          'lockAuthority',
          'authorityDecided',
          'authorityEpoch',
        ],
        messageError,
      );
      const { protocol, hashAlgorithm, indexId, deviceId, sequence } = value;
      if (protocol !== PROTOCOL_VERSION) {
        throw messageError(
          `hello: protocol ${show(protocol)} is not supported (this device speaks ${PROTOCOL_VERSION})`,
        );
      }
      if (hashAlgorithm !== HASH_ALGORITHM) {
        throw messageError(
          `hello: hash algorithm ${show(hashAlgorithm)} is not supported (this device uses ${HASH_ALGORITHM})`,
        );
      }
      if (typeof indexId !== 'string' || !INDEX_ID_RE.test(indexId)) {
        throw messageError(
          `hello: indexId must be 1 to 64 of A-Z a-z 0-9 _ -, got ${show(indexId)}`,
        );
      }
      if (typeof deviceId !== 'string' || !isCanonicalDeviceId(deviceId)) {
        throw messageError(`hello: deviceId must be a device ID, got ${show(deviceId)}`);
      }
      return {
        type: 'hello',
        protocol,
        hashAlgorithm,
        indexId,
        deviceId,
        sequence: checkSequence(sequence, 'hello'),
        ...checkAuthority(value, 'hello'),
      };
    }
    case 'authority':
      checkFields(
        value,
        ['type', 'lockAuthority', 'authorityDecided', 'authorityEpoch'],
        messageError,
      );
      return { type: 'authority', ...checkAuthority(value, 'authority') };
    case 'caughtUp':
      checkFields(value, ['type', 'sequence'], messageError);
      return { type: 'caughtUp', sequence: checkSequence(value.sequence, 'caughtUp') };
    case 'records': {
      checkFields(value, ['type', 'records'], messageError);
      const list = value.records;
      if (!Array.isArray(list)) {
        throw messageError(`records: records must be an array, got ${show(list)}`);
      }
      if (list.length > MAX_RECORDS_PER_MESSAGE) {
        throw messageError(
          `records: carries ${list.length} records, more than ${MAX_RECORDS_PER_MESSAGE}`,
        );
      }
      const records: FileRecord[] = [];
      const rejected: RejectedRecord[] = [];
      const budget: ChunkBudget = { chunks: MAX_MESSAGE_CHUNKS };
      for (const item of list as unknown[]) {
        try {
          records.push(fromWire(item, resolveBase, budget));
        } catch (err) {
          if (!(err instanceof LockstepError)) throw err;
          const path = isPlainObject(item) ? stringOr(item.path) : undefined;
          rejected.push(
            path === undefined ? { reason: err.message } : { path, reason: err.message },
          );
        }
      }
      return { type: 'records', records, rejected };
    }
    default:
      throw messageError(`unknown type ${show(value.type)}`);
  }
}

function isCanonicalDeviceId(s: string): boolean {
  try {
    return parseDeviceId(s) === s;
  } catch {
    return false;
  }
}

function checkSequence(value: unknown, type: string): number {
  if (!isSafeInteger(value) || value < 0) {
    throw messageError(`${type}: sequence must be a non-negative integer, got ${show(value)}`);
  }
  return value;
}

function messageError(problem: string): LockstepError {
  return new LockstepError('PEER_INVALID', `Peer index message: ${problem}`);
}

/** Checks the three fields that carry a choice of lock authority. */
function checkAuthority(
  value: Record<string, unknown>,
  what: string,
): { lockAuthority: string; authorityDecided: boolean; authorityEpoch: number } {
  const { lockAuthority, authorityDecided, authorityEpoch } = value;
  // A device ID, or "etcd:PREFIX" for a device whose locks are in etcd.
  const etcd =
    typeof lockAuthority === 'string' && /^etcd:\/[\x21-\x7e]{0,200}$/.test(lockAuthority);
  if (typeof lockAuthority !== 'string' || !(etcd || isCanonicalDeviceId(lockAuthority))) {
    throw messageError(
      `${what}: lockAuthority must be a device ID or etcd:PREFIX, got ${show(lockAuthority)}`,
    );
  }
  if (typeof authorityDecided !== 'boolean') {
    throw messageError(
      `${what}: authorityDecided must be true or false, got ${show(authorityDecided)}`,
    );
  }
  if (
    typeof authorityEpoch !== 'number' ||
    !Number.isSafeInteger(authorityEpoch) ||
    authorityEpoch < 0
  ) {
    throw messageError(
      `${what}: authorityEpoch must be a whole number, 0 or more, got ${show(authorityEpoch)}`,
    );
  }
  return { lockAuthority, authorityDecided, authorityEpoch };
}

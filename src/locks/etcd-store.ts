/**
 * What the etcd authority keeps in etcd, and how it talks to it: the stored
 * form of a lock, the client with its time bounds and failover, the token
 * base and the one-time import of the embedded authority's locks.
 *
 * Keys under the prefix P:
 * - `P locks/<path>`: one lock, the JSON of its {@link StoredLock}; created
 *   only if absent (a transaction), on a lease for a TTL lock.
 * - `P meta/tokenBase`: the base of fencing tokens. A lock's token is its
 *   row's `tokenBase` plus the key's create revision (or the `token` an
 *   imported lock brings). Grants compare the base's mod revision with the
 *   one they read, so every grant uses the base current at its revision;
 *   the base only ever rises and revisions only grow, so tokens only grow.
 * - `P end`: why the last lock ended (`{ id, type, by }`), written in the
 *   same transaction as the delete, so every watcher sees the reason with
 *   the delete; a delete without one is a lease running out: `expired`.
 */
import type { IBackoff } from 'cockatiel';
import type { Etcd3, IEvent, IKeyValue } from 'etcd3';
import { LockstepError, errorMessage } from '../base/errors.js';
import type { Logger } from '../base/log.js';
import type { LockRow } from '../core/lock-rules.js';
import type { GrantRequest } from './authority.js';
import { decodeLock } from './lock-wire.js';

/** PEM contents: the CA etcd's certificate is checked against, and this client's certificate and key. */
export interface EtcdTls {
  readonly ca: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
}

/** A lock as etcd keeps it: the row, with how its token is made. */
export interface StoredLock extends Omit<LockRow, 'token'> {
  /** The token base current when it was granted. */
  readonly tokenBase: number;
  /** The token of a lock imported from the embedded authority (kept as it was). */
  readonly token?: number;
}

/** A lock as this device knows it from etcd. */
export interface Known {
  readonly lock: LockRow;
  /** The key's mod revision: a release or refresh compares it. */
  readonly mod: string;
  readonly lease: string;
  /** What etcd holds (a refresh keeps its token's making). */
  readonly stored: StoredLock;
}

export const enc = (s: string) => Buffer.from(s);
export const prefixEnd = (p: Buffer) => {
  const end = Buffer.from(p);
  end[end.length - 1] = (end[end.length - 1] as number) + 1;
  return end;
};

/** A client of the etcd cluster at `endpoints`, every call bounded by `timeoutMs`. */
export async function openEtcd(
  endpoints: readonly string[],
  tls: EtcdTls | undefined,
  timeoutMs: number,
): Promise<Etcd3> {
  const { Etcd3: Client, GRPCDeadlineExceededError, GRPCUnavailableError } = await import('etcd3');
  const { circuitBreaker, ConsecutiveBreaker, ExponentialBackoff, handleWhen } =
    await import('cockatiel');
  const hosts = endpoints.map((e) => e.replace(/^[a-z]+:\/\//, ''));
  return new Client({
    hosts,
    ...(tls
      ? {
          credentials: {
            rootCertificate: tls.ca,
            ...(tls.key ? { privateKey: tls.key } : {}),
            ...(tls.cert ? { certChain: tls.cert } : {}),
          },
        }
      : {}),
    dialTimeout: timeoutMs,
    // Streams (the watch) have no deadline. A call has half the budget, so
    // a member that hangs (paused, cut off from the others) costs one try:
    // etcd3 tries again on another member within the budget, and the member
    // is skipped for a second. With the quorum lost every try fails, in time.
    defaultCallOptions: (ctx) =>
      ctx.isStream ? {} : { deadline: new Date(Date.now() + timeoutMs / 2) },
    faultHandling: {
      host: () =>
        circuitBreaker(
          handleWhen(
            (e) => e instanceof GRPCUnavailableError || e instanceof GRPCDeadlineExceededError,
          ),
          { halfOpenAfter: 1000, breaker: new ConsecutiveBreaker(1) },
        ),
      // A watch cut off tries again within 2 s (etcd3's default waits up to
      // 30 s), so a device's replica catches up soon after etcd is back.
      // (etcd3's own default is this class; its type names the backoff a factory makes.)
      watchBackoff: new ExponentialBackoff({
        initialDelay: 100,
        maxDelay: 2000,
      }) as unknown as IBackoff<unknown>,
    },
  });
}

/** Raises the token base to what this device knows, and imports the embedded authority's locks once. */
export async function prepareEtcd(
  c: Etcd3,
  prefix: string,
  knownToken: number,
  imports: readonly LockRow[],
  call: <T>(fn: () => Promise<T>) => Promise<T>,
  log: Logger,
): Promise<void> {
  const key = enc(`${prefix}meta/tokenBase`);
  const marker = enc(`${prefix}meta/imported`);
  const locks = enc(`${prefix}locks/`);
  const known = Math.max(knownToken, ...imports.map((l) => l.token));
  for (let attempt = 0; attempt < 5; attempt++) {
    const got = await call(() => c.kv.range({ key }));
    const kv = got.kvs[0];
    const base = kv ? Number(kv.value.toString()) : 0;
    const success = [
      ...(known > base ? [{ request_put: { key, value: enc(String(known)) } }] : []),
      ...imports.map((l) => ({
        request_put: {
          key: enc(`${prefix}locks/${l.path}`),
          value: enc(JSON.stringify(imported(l))),
        },
      })),
      { request_put: { key: marker, value: enc('1') } },
    ];
    const res = await call(() =>
      c.kv.txn({
        compare: [
          { key, target: 'Mod', result: 'Equal', mod_revision: kv?.mod_revision ?? '0' },
          { key: marker, target: 'Create', result: 'Equal', create_revision: 0 },
          // Only into an empty table: a lock granted in etcd is never replaced.
          {
            key: locks,
            range_end: prefixEnd(locks),
            target: 'Version',
            result: 'Equal',
            version: 0,
          },
        ],
        success,
      }),
    );
    if (res.succeeded) {
      if (imports.length > 0)
        log.info(`etcd: brought ${imports.length} lock(s) of the embedded authority into etcd`);
      return;
    }
    if (known <= base) return;
    // Imported before (by another device): only the base, if it must rise.
    const up = await call(() =>
      c.kv.txn({
        compare: [{ key, target: 'Mod', result: 'Equal', mod_revision: kv?.mod_revision ?? '0' }],
        success: [{ request_put: { key, value: enc(String(known)) } }],
      }),
    );
    if (up.succeeded) return;
  }
}

/** The lease for a TTL of `ttlMs`: whole seconds, never shorter. */
export function leaseSeconds(ttlMs: number): number {
  return Math.max(1, Math.ceil(ttlMs / 1000));
}

export function expired(lock: LockRow, now: number): boolean {
  return lock.expiresMs !== null && lock.expiresMs <= now;
}

export function rowOf(s: StoredLock): Omit<LockRow, 'token'> {
  const { tokenBase, token, ...row } = s;
  void tokenBase;
  void token;
  return row;
}

/** How a lock of the embedded authority is kept in etcd: with its own token. */
export function imported(l: LockRow): StoredLock {
  return { ...l, tokenBase: 0, token: l.token };
}

/** The lock a key of etcd holds, with its token made. */
export function decodeKnown(kv: IKeyValue): Known {
  const v = JSON.parse(kv.value.toString()) as StoredLock;
  const token = v.token ?? (Number(v.tokenBase) || 0) + Number(kv.create_revision);
  const lock = decodeLock({ ...rowOf(v), token });
  return { lock, mod: kv.mod_revision, lease: kv.lease, stored: v };
}

/** Runs one etcd call; fails as unreachable (naming `endpoints`) after `timeoutMs`. */
export async function callWithin<T>(
  fn: () => Promise<T>,
  timeoutMs: number,
  endpoints: readonly string[],
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      fn(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('timed out')), timeoutMs);
      }),
    ]);
  } catch (err) {
    throw err instanceof LockstepError ? err : unreachableError(endpoints, err);
  } finally {
    clearTimeout(timer);
  }
}

/** The error of a lock operation that etcd did not answer. */
export function unreachableError(endpoints: readonly string[], err: unknown): LockstepError {
  return new LockstepError(
    'AUTHORITY_UNREACHABLE',
    `etcd has no quorum or cannot be reached at ${endpoints.join(', ')} (${errorMessage(err)}); locking and unlocking wait for it (an unlock that timed out may still take effect once etcd is back: see \`lockstep locks\`), listing and sync go on`,
    { cause: err },
  );
}

/** Why a lock ended, as written beside its delete. */
export interface EndRecord {
  readonly id: string;
  readonly type: string;
  readonly by?: string;
}

/** The put of `PREFIX end` that says why `lock` ends, for the delete's transaction. */
export function endOp(prefix: string, lock: LockRow, type: string, by?: string) {
  const end: EndRecord = { id: lock.id, type, ...(by === undefined ? {} : { by }) };
  return { request_put: { key: enc(`${prefix}end`), value: enc(JSON.stringify(end)) } };
}

/** The end record `kv` holds, if it is one. */
export function endOf(kv: IKeyValue | undefined): EndRecord | undefined {
  if (kv === undefined) return undefined;
  try {
    return JSON.parse(kv.value.toString()) as EndRecord;
  } catch {
    return undefined; // a malformed one: the delete is announced as expired
  }
}

/** The end records among `events`, by their revision. */
export function endsOf(events: readonly IEvent[], endKey: string): Map<string, EndRecord> {
  const ends = new Map<string, EndRecord>();
  for (const e of events) {
    const end = e.type === 'Put' && e.kv.key.toString() === endKey ? endOf(e.kv) : undefined;
    if (end) ends.set(e.kv.mod_revision, end);
  }
  return ends;
}

/** The stored form of a lock about to be granted for `req`, under token base `base`. */
export function newStoredLock(
  req: GrantRequest,
  id: string,
  now: number,
  base: number,
): StoredLock {
  return {
    path: req.path,
    id,
    owner: req.owner,
    device: req.device,
    createdMs: now,
    expiresMs: req.ttlMs === undefined ? null : now + req.ttlMs,
    reason: req.reason ?? '',
    // Directory locks are the embedded authority's, for now.
    scope: 'file',
    tokenBase: base,
  };
}

/**
 * The etcd form of the `lockAuthority` setting: where the etcd members are,
 * the key prefix, and the TLS files; each bad field gets its own error.
 */
import { isAbsolute } from 'node:path';
import { LockstepError } from '../base/errors.js';

/** Shows a value from the configuration file briefly, for its error messages. */
export function show(v: unknown): string {
  if (Array.isArray(v)) return 'a list';
  if (v === null) return 'null';
  if (typeof v === 'object') return 'an object';
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** The lock table in etcd: `{ "etcd": { "endpoints": [...], "prefix": ..., "tls": {...} } }`. */
export interface EtcdSetting {
  readonly kind: 'etcd';
  /** Client URLs of the etcd members, `http://HOST:PORT` or `https://HOST:PORT`. */
  readonly endpoints: readonly string[];
  /** Where Lockstep's keys go, from "/" to "/" (default "/lockstep/"). */
  readonly prefix: string;
  /** Absolute paths of PEM files: the CA of etcd's certificates, this client's certificate and key. */
  readonly tls?: { readonly ca: string; readonly cert?: string; readonly key?: string };
}

/** The key prefix unless configured. */
export const DEFAULT_ETCD_PREFIX = '/lockstep/';
const ETCD_URL = /^(https?):\/\/(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$/;

/** Reads the `etcd` form of the lock authority, adding an issue for each bad field. */
export function etcdSetting(
  v: unknown,
  fail: (message: string, path?: PropertyKey[]) => never,
): EtcdSetting {
  const at = (...p: PropertyKey[]) => ['etcd', ...p];
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    return fail(
      `expected { "endpoints": ["http://HOST:PORT", ...], "prefix": "/lockstep/NAME/" }, got ${show(v)}`,
      at(),
    );
  }
  const o = v as Record<string, unknown>;
  const extra = Object.keys(o).filter((k) => !['endpoints', 'prefix', 'tls'].includes(k));
  if (extra.length > 0) return fail('unknown field (check its spelling)', at(extra[0] as string));
  const urls = o.endpoints;
  if (!Array.isArray(urls) || urls.length === 0) {
    return fail(
      `expected a list of etcd client URLs such as "http://127.0.0.1:2379", got ${show(urls)}`,
      at('endpoints'),
    );
  }
  urls.forEach((u, i) => {
    const m = typeof u === 'string' ? ETCD_URL.exec(u) : null;
    if (m === null || Number(m[3]) < 1 || Number(m[3]) > 65535) {
      fail(`expected http://HOST:PORT or https://HOST:PORT, got ${show(u)}`, at('endpoints', i));
    }
  });
  const endpoints = urls as string[];
  const prefix = o.prefix ?? DEFAULT_ETCD_PREFIX;
  if (
    typeof prefix !== 'string' ||
    !/^\/[\x21-\x7e]{0,200}$/.test(prefix) ||
    !prefix.endsWith('/')
  ) {
    return fail(
      `expected a key prefix that starts and ends with "/" (printable, no spaces), such as "/lockstep/NAME/", got ${show(prefix)}`,
      at('prefix'),
    );
  }
  const secure = endpoints.some((u) => u.startsWith('https:'));
  if (secure && endpoints.some((u) => u.startsWith('http:'))) {
    return fail(
      'expected every endpoint to use http, or every one https, not both',
      at('endpoints'),
    );
  }
  if (o.tls === undefined) {
    if (secure)
      return fail(
        'https endpoints need "tls": { "ca": FILE } (the CA of the members\' certificates)',
        at('tls'),
      );
    return { kind: 'etcd', endpoints, prefix };
  }
  if (!secure) return fail('"tls" needs https:// endpoints', at('tls'));
  if (typeof o.tls !== 'object' || o.tls === null || Array.isArray(o.tls)) {
    return fail(
      `expected { "ca": FILE, "cert": FILE, "key": FILE }, got ${show(o.tls)}`,
      at('tls'),
    );
  }
  const t = o.tls as Record<string, unknown>;
  const bad = Object.keys(t).find((k) => !['ca', 'cert', 'key'].includes(k));
  if (bad !== undefined) return fail('unknown field (check its spelling)', at('tls', bad));
  for (const k of ['ca', 'cert', 'key']) {
    const f = t[k];
    if (f === undefined && k !== 'ca') continue;
    if (typeof f !== 'string' || !isAbsolute(f)) {
      return fail(`expected the absolute path of a PEM file, got ${show(f)}`, at('tls', k));
    }
  }
  if ((t.cert === undefined) !== (t.key === undefined)) {
    return fail(
      'give both "cert" and "key" (a client certificate and its key), or neither',
      at('tls'),
    );
  }
  const tls = {
    ca: t.ca as string,
    ...(t.cert === undefined ? {} : { cert: t.cert as string, key: t.key as string }),
  };
  return { kind: 'etcd', endpoints, prefix, tls };
}

/** The etcd setting as the file has it. */
export function etcdForm(s: EtcdSetting): { etcd: Omit<EtcdSetting, 'kind'> } {
  const { kind, ...etcd } = s;
  void kind;
  return { etcd };
}

/**
 * The etcd setting of `lockstep init --lock-etcd URL[,URL...]` (and
 * `--lock-etcd-prefix`): plain http endpoints, the default prefix unless given.
 *
 * @throws LockstepError `USAGE` naming the flag and the problem
 */
export function etcdFromFlag(list: string, prefix?: string): EtcdSetting {
  const fail = (message: string, path: PropertyKey[] = []): never => {
    const field = path
      .slice(1)
      .join('.')
      .replace(/\.(\d+)/g, '[$1]');
    throw new LockstepError(
      'USAGE',
      `Invalid --lock-etcd${field ? ` (${field})` : ''}: ${message}`,
    );
  };
  const endpoints = list.split(',').map((u) => u.trim());
  return etcdSetting({ endpoints, ...(prefix === undefined ? {} : { prefix }) }, fail);
}

/**
 * What client commands print for people: the merged listing as a table, locks,
 * live events and status. Pure: data and the current time in, text out.
 */
import type { ClientEvent, ListEntry, LockInfo, Status } from '../api/backend.js';
import { formatBytes } from '../core/human.js';
import { formatSpan } from './duration.js';

const pad2 = (n: number) => String(n).padStart(2, '0');

/** A time as local `YYYY-MM-DD HH:MM:SS` (the input as given when it is not a date). */
export function formatLocal(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return (
    `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ` +
    `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`
  );
}

/** A time as local `HH:MM:SS`. */
export function formatClock(iso: string): string {
  return formatLocal(iso).slice(11);
}

/** A name made safe for a terminal: control characters become `?`. */
export function printable(s: string): string {
  return s.replace(/\p{Cc}/gu, '?');
}

/** `owner@DEVICE`. */
export function holder(lock: LockInfo): string {
  return `${printable(lock.owner)}@${printable(lock.device.name)}`;
}

/** How long a lock has left: `1h left`, `expired`, or undefined for no expiry. */
export function timeLeft(lock: LockInfo, now: number): string | undefined {
  if (lock.expires === null) return undefined;
  const ms = Date.parse(lock.expires) - now;
  return ms <= 0 ? 'expired' : `${formatSpan(ms)} left`;
}

/** A lock's path as people see it: a directory lock's with a trailing `/` (`proj/`). */
export function lockPath(lock: LockInfo): string {
  return printable(lock.path) + (lock.scope === 'directory' ? '/' : '');
}

/**
 * The LOCK cell: `alice@A  (1h left)`, or '' for no lock. For a path
 * covered by a directory lock above it (`path` given and not the lock's),
 * the directory too: `alice@A (proj/)`.
 */
export function lockCell(lock: LockInfo | null, now: number, path?: string): string {
  if (lock === null) return '';
  const who =
    path === undefined || path === lock.path ? holder(lock) : `${holder(lock)} (${lockPath(lock)})`;
  const left = timeLeft(lock, now);
  return left === undefined ? who : `${who}  (${left})`;
}

/** Lays out rows as columns two spaces apart; `right` columns are right-aligned. */
export function columns(rows: readonly (readonly string[])[], right: ReadonlySet<number>): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, [...cell].length);
    });
  }
  return rows
    .map((row) =>
      row
        .map((cell, i) => {
          const fill = ' '.repeat((widths[i] ?? 0) - [...cell].length);
          return right.has(i) ? fill + cell : cell + fill;
        })
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** The notes after the devices: `syncing 40%`, `conflict copy`, `symlink`. */
function notes(e: ListEntry): string[] {
  const out: string[] = [];
  if (e.syncing !== null) {
    const pct = e.syncing.total > 0 ? Math.floor((e.syncing.done / e.syncing.total) * 100) : 0;
    out.push(`syncing ${pct}%`);
  }
  if (e.conflict) out.push('conflict copy');
  if (e.type === 'symlink') out.push('symlink');
  return out;
}

/**
 * The merged listing as DESIGN.md shows it:
 * `#  NAME  SIZE  MODIFIED  LOCK  ON`, numbered from `first` (1 unless
 * paging), directories with a trailing `/`.
 */
export function listingTable(entries: readonly ListEntry[], now: number, first = 1): string {
  const rows: string[][] = [['#', 'NAME', 'SIZE', 'MODIFIED', 'LOCK', 'ON']];
  entries.forEach((e, i) => {
    const on = e.devices
      .map((d) => printable(d.name))
      .sort()
      .join(' ');
    rows.push([
      String(first + i),
      printable(e.name) + (e.type === 'directory' ? '/' : ''),
      e.type === 'directory' ? '' : formatBytes(e.size),
      formatLocal(e.modified),
      lockCell(e.lock, now, e.path),
      [on, ...notes(e)].filter((s) => s !== '').join('  '),
    ]);
  });
  // Two leading spaces, as in DESIGN.md; `#` right-aligned.
  return columns(rows, new Set([0]))
    .split('\n')
    .map((line) => `  ${line}`)
    .join('\n');
}

/** How long a lock lasts, for replies: `no expiry` or `expires in 2h, at 2026-11-24 20:02:11`. */
function expiryText(lock: LockInfo, now: number): string {
  if (lock.expires === null) return 'no expiry';
  return `expires in ${formatSpan(Date.parse(lock.expires) - now)}, at ${formatLocal(lock.expires)}`;
}

/** The reply to `lock`. */
export function lockedLine(lock: LockInfo, now: number): string {
  return (
    `locked ${lockPath(lock)}${lock.scope === 'directory' ? ' (directory)' : ''} for ${printable(lock.owner)} (${expiryText(lock, now)}) ` +
    (lock.scope === 'directory'
      ? '— every file below it is read-only on every other device'
      : '— read-only on every other device')
  );
}

/** The reply to `unlock`. */
export function unlockedLine(lock: LockInfo): string {
  return `unlocked ${lockPath(lock)} (was locked by ${holder(lock)} since ${formatLocal(lock.created)})`;
}

/** `lockstep locks` as a table, or a sentence when there are none. */
export function locksTable(locks: readonly LockInfo[], now: number): string {
  if (locks.length === 0) return 'No locks.';
  const rows: string[][] = [['PATH', 'OWNER', 'SINCE', 'EXPIRES', 'REASON']];
  for (const l of [...locks].sort((a, b) => (a.path < b.path ? -1 : 1))) {
    const left = timeLeft(l, now);
    rows.push([
      l.scope === 'directory' ? `${lockPath(l)} (directory)` : lockPath(l),
      holder(l),
      formatLocal(l.created),
      left === undefined
        ? 'never'
        : left === 'expired'
          ? 'expired'
          : `in ${left.replace(' left', '')}`,
      printable(l.reason),
    ]);
  }
  return columns(rows, new Set());
}

/** The column where an event's text starts (after `HH:MM:SS  TYPE      `). */
const EVENT_INDENT = ' '.repeat(20);

/** One event, as `lockstep watch` prints it (may span two lines). */
export function eventLine(ev: ClientEvent): string {
  const head = `${formatClock(ev.time)}  ${ev.type.padEnd(8)}  `;
  return head + eventText(ev);
}

/** What an event says, without its time and type (the web page shows those apart). */
export function eventText(ev: ClientEvent): string {
  switch (ev.type) {
    case 'added':
      return `${printable(ev.path)} on ${printable(ev.device.name)} (${formatBytes(ev.size)})`;
    case 'modified': {
      const sizes =
        ev.oldSize === undefined
          ? formatBytes(ev.size)
          : `${formatBytes(ev.oldSize)} -> ${formatBytes(ev.size)}`;
      return `${printable(ev.path)} on ${printable(ev.device.name)} (${sizes})`;
    }
    case 'deleted':
      return `${printable(ev.path)} on ${printable(ev.device.name)}`;
    case 'synced': {
      const took = ev.durationMs === undefined ? '' : ` (${Math.round(ev.durationMs)} ms)`;
      return ev.deleted
        ? `delete of ${printable(ev.path)} to ${printable(ev.device.name)}${took}`
        : `${printable(ev.path)} to ${printable(ev.device.name)}${took}`;
    }
    case 'conflict':
      return (
        `${printable(ev.path)} on ${printable(ev.device.name)}: edited on two devices at once; ` +
        `the losing version is kept as\n${EVENT_INDENT}${printable(ev.copy)}`
      );
    case 'locked': {
      const reason = ev.lock.reason === '' ? '' : `: ${printable(ev.lock.reason)}`;
      const until =
        ev.lock.expires === null ? 'no expiry' : `until ${formatLocal(ev.lock.expires)}`;
      return `${lockPath(ev.lock)} by ${holder(ev.lock)} (${until})${reason}`;
    }
    case 'unlocked':
      return `${lockPath(ev.lock)} by ${holder(ev.lock)}`;
    case 'expired':
      return `${lockPath(ev.lock)}: the lock of ${holder(ev.lock)} ran out`;
    case 'forced':
      return (
        `${lockPath(ev.lock)}: the lock of ${holder(ev.lock)} was removed` +
        (ev.by === undefined ? '' : ` by ${printable(ev.by)}`)
      );
    case 'dropped':
      return `${printable(ev.lock.path)}: deleted by its holder ${holder(ev.lock)}; the lock ended with it`;
    case 'moved':
      return `${printable(ev.from ?? '?')} -> ${printable(ev.lock.path)}: renamed by its holder ${holder(ev.lock)}; the lock moved with it`;
    case 'connected':
      return `${printable(ev.device.name)} (${ev.device.short})`;
    case 'disconnected':
      return (
        `${printable(ev.device.name)} (${ev.device.short})` +
        (ev.reason === undefined ? '' : `: ${printable(ev.reason)}`)
      );
    case 'authority':
      return `locks are granted by ${printable(ev.device.name)} (${ev.device.short}): ${printable(ev.reason)}`;
  }
}

/** `N file(s), SIZE`. */
function filesAndBytes(t: { files: number; bytes: number }): string {
  return `${t.files} ${t.files === 1 ? 'file' : 'files'}, ${formatBytes(t.bytes)}`;
}

/** `lockstep status` for people. */
export function statusText(s: Status): string {
  const d = s.device;
  const lines: string[] = [];
  const row = (label: string, text: string) => lines.push(`${label.padEnd(11)}${text}`);
  row('Device', `${printable(d.name)} (${d.short}), lockstep ${d.version}`);
  row('Folder', printable(d.folder));
  row(
    'Locks',
    s.lockAuthority === null
      ? 'refused: the devices disagree on which one is the lock authority'
      : s.lockAuthority.id.startsWith('etcd:')
        ? `in ${printable(s.lockAuthority.name)}`
        : `authority ${printable(s.lockAuthority.name)} (${s.lockAuthority.short})` +
          (s.lockAuthority.id === d.id ? ', this device' : ''),
  );
  row(
    'To sync',
    s.toSync.files === 0 && s.toSync.bytes === 0 ? 'nothing, up to date' : filesAndBytes(s.toSync),
  );
  row('Local', filesAndBytes(s.local));
  if (s.stopped !== null) row('STOPPED', printable(s.stopped));
  if (s.peers.length === 0) {
    row('Peers', 'none (add one with `lockstep peer add`)');
  } else {
    const connected = s.peers.filter((p) => p.connected).length;
    row('Peers', `${connected} of ${s.peers.length} connected`);
    const rows = s.peers.map((p) => [
      `${printable(p.name)} (${p.short})`,
      printable(p.address),
      p.connected ? 'connected' : 'disconnected',
      [
        p.connected || p.lastSeen === null ? '' : `last seen ${formatLocal(p.lastSeen)}`,
        p.error === null || p.connected ? '' : printable(p.error),
      ]
        .filter((x) => x !== '')
        .join(', '),
    ]);
    lines.push(
      ...columns(rows, new Set())
        .split('\n')
        .map((l) => `  ${l}`),
    );
  }
  if (s.problems.length > 0) {
    row('Problems', String(s.problems.length));
    for (const p of s.problems) lines.push(`  ${printable(p.path)}: ${printable(p.message)}`);
  }
  return lines.join('\n');
}

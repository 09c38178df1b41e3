/**
 * The side panels: the devices of the cluster (connections, what is left to
 * sync, transfers in progress) and the activity feed (`lockstep watch`).
 */
import type { ClientEvent, Status } from '../../src/api/backend.js';
import { eventText, formatClock, formatLocal } from '../../src/cli/format.js';
import { formatBytes } from '../../src/core/human.js';

/** One event in the feed. */
export interface FeedItem {
  readonly id: number;
  readonly ev: ClientEvent;
}

/** `N file(s), SIZE`. */
function filesAndBytes(t: { files: number; bytes: number }): string {
  return `${t.files} ${t.files === 1 ? 'file' : 'files'}, ${formatBytes(t.bytes)}`;
}

export function Devices(props: { status: Status | undefined }) {
  const s = props.status;
  return (
    <section class="card devices" aria-labelledby="devices-title">
      <h2 id="devices-title">Devices</h2>
      {s === undefined ? (
        <p>Loading…</p>
      ) : (
        <ul>
          <li class="device-row" data-device={s.device.name}>
            <div class="device-head">
              <span class="dot on" aria-hidden="true" />
              <strong>{s.device.name}</strong> <code>{s.device.short}</code>
              <span class="sub">this device</span>
              {s.lockAuthority?.id === s.device.id && <span class="badge">lock authority</span>}
            </div>
            {s.stopped !== null && (
              <p class="error" role="alert">
                Stopped: {s.stopped}
              </p>
            )}
            <p class="sub">
              To sync:{' '}
              {s.toSync.files === 0 && s.toSync.bytes === 0
                ? 'nothing, up to date'
                : filesAndBytes(s.toSync)}
              {' · '}holds {filesAndBytes(s.local)}
            </p>
            {s.transfers.length > 0 && (
              <ul class="transfers" aria-label="Files being received">
                {s.transfers.map((t) => (
                  <li key={t.path}>
                    <span class="path">{t.path}</span>
                    <progress
                      value={t.total === 0 ? 1 : t.done / t.total}
                      max={1}
                      aria-label={`Receiving ${t.path}`}
                    />
                    <span class="sub">
                      {formatBytes(t.done)} of {formatBytes(t.total)}
                    </span>
                  </li>
                ))}
              </ul>
            )}
            {s.problems.length > 0 && (
              <details>
                <summary>
                  {s.problems.length} problem{s.problems.length === 1 ? '' : 's'}
                </summary>
                <ul>
                  {s.problems.map((p) => (
                    <li key={p.path}>
                      <code>{p.path}</code>: {p.message}
                    </li>
                  ))}
                </ul>
              </details>
            )}
          </li>
          {s.peers.map((p) => (
            <li key={p.id} class="device-row" data-device={p.name}>
              <div class="device-head">
                <span class={`dot ${p.connected ? 'on' : 'off'}`} aria-hidden="true" />
                <strong>{p.name}</strong> <code>{p.short}</code>
                <span class={`sub ${p.connected ? '' : 'warn'}`}>
                  {p.connected ? 'connected' : 'not connected'}
                </span>
                {s.lockAuthority?.id === p.id && <span class="badge">lock authority</span>}
              </div>
              <p class="sub">
                {p.address}
                {!p.connected && p.lastSeen !== null && ` · last seen ${formatLocal(p.lastSeen)}`}
                {!p.connected && p.lastSeen === null && ' · never seen'}
              </p>
              {!p.connected && p.error !== null && <p class="sub warn">{p.error}</p>}
            </li>
          ))}
          {s.lockAuthority === null && (
            <li class="error" role="alert">
              The devices disagree on which one grants locks: locking waits until they agree.
            </li>
          )}
        </ul>
      )}
    </section>
  );
}

export function Feed(props: { items: readonly FeedItem[] }) {
  return (
    <section class="card feed" aria-labelledby="feed-title">
      <h2 id="feed-title">Activity</h2>
      {props.items.length === 0 ? (
        <p class="sub">
          Changes, syncs, conflicts, locks and connections show here as they happen.
        </p>
      ) : (
        <div role="log" aria-live="polite" aria-labelledby="feed-title">
          <ol>
            {props.items.map(({ id, ev }) => (
              <li key={id} class={`ev ${ev.type}`}>
                <time dateTime={ev.time}>{formatClock(ev.time)}</time>
                <span class="type">{ev.type}</span>
                <span class="text">{eventText(ev)}</span>
              </li>
            ))}
          </ol>
        </div>
      )}
    </section>
  );
}

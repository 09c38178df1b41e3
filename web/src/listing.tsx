/**
 * The merged listing of one directory: breadcrumbs, a filter box, a table
 * sortable by column, and lock / unlock buttons with a small lock form.
 */
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { ListEntry, ListPage, Status, User } from '../../src/api/backend.js';
import {
  formatLocal,
  holder,
  lockPath,
  lockedLine,
  timeLeft,
  unlockedLine,
} from '../../src/cli/format.js';
import { parseDuration } from '../../src/cli/duration.js';
import { formatBytes } from '../../src/core/human.js';
import type { Api } from './api';
import { FileIcon, FolderIcon, LinkIcon, LockIcon } from './icons';
import {
  crumbs,
  filterEntries,
  hashOfDir,
  nextSort,
  shortTime,
  sortEntries,
  syncState,
  type Sort,
  type SortKey,
} from './logic';

interface ListingProps {
  readonly api: Api;
  readonly user: User;
  readonly dir: string;
  readonly page: ListPage | undefined;
  readonly error: string | undefined;
  readonly status: Status | undefined;
  readonly flash: ReadonlyMap<string, number>;
  /** Runs an action and shows its outcome (the text it resolves with, or its error). */
  readonly act: (what: () => Promise<string>) => Promise<void>;
}

const COLUMNS: readonly { key: SortKey | undefined; label: string; class: string }[] = [
  { key: 'name', label: 'Name', class: 'name' },
  { key: 'size', label: 'Size', class: 'size' },
  { key: 'modified', label: 'Modified', class: 'modified' },
  { key: 'lock', label: 'Lock', class: 'lock' },
  { key: 'devices', label: 'On', class: 'on' },
  { key: undefined, label: 'State', class: 'state' },
  { key: undefined, label: 'Actions', class: 'actions' },
];

export function Listing(props: ListingProps) {
  const { page, status, user, api, act } = props;
  const [sort, setSort] = useState<Sort>({ key: 'name', order: 'asc' });
  const [filter, setFilter] = useState('');
  const [locking, setLocking] = useState<ListEntry | undefined>();
  const rows = useMemo(
    () => (page === undefined ? [] : sortEntries(filterEntries(page.entries, filter), sort)),
    [page, filter, sort],
  );
  const now = Date.now();

  const unlock = (e: ListEntry, force: boolean) =>
    act(async () => unlockedLine(await api.unlock(e.path, force)));

  return (
    <section aria-labelledby="listing-title">
      <div class="bar">
        <h2 id="listing-title" class="visually-hidden">
          Files
        </h2>
        <nav aria-label="Breadcrumb" class="crumbs">
          <ol>
            {crumbs(props.dir).map((c, i, all) => (
              <li key={c.dir}>
                {i === all.length - 1 ? (
                  <span aria-current="page">{c.name}</span>
                ) : (
                  <a href={hashOfDir(c.dir)}>{c.name}</a>
                )}
              </li>
            ))}
          </ol>
        </nav>
        <div class="filter">
          <label for="filter">Filter</label>
          <input
            id="filter"
            type="search"
            placeholder="Name contains…"
            value={filter}
            onInput={(e) => setFilter(e.currentTarget.value)}
          />
        </div>
      </div>
      {props.error !== undefined && (
        <p class="notice error" role="alert">
          {props.error}
        </p>
      )}
      <div class="table-wrap">
        <table class="files" aria-busy={page === undefined}>
          <caption class="visually-hidden">
            Files in {props.dir === '' ? 'the folder' : props.dir}, sorted by {sort.key}
            {sort.order === 'desc' ? ', descending' : ''}
          </caption>
          <thead>
            <tr>
              {COLUMNS.map((c) => (
                <th
                  key={c.label}
                  scope="col"
                  class={c.class}
                  aria-sort={
                    c.key === undefined || c.key !== sort.key
                      ? undefined
                      : sort.order === 'asc'
                        ? 'ascending'
                        : 'descending'
                  }
                >
                  {c.key === undefined ? (
                    c.label === 'Actions' ? (
                      <span class="visually-hidden">{c.label}</span>
                    ) : (
                      c.label
                    )
                  ) : (
                    <button
                      type="button"
                      class="sort"
                      onClick={() => setSort(nextSort(sort, c.key as SortKey))}
                    >
                      {c.label}
                      <span aria-hidden="true" class="arrow">
                        {c.key === sort.key ? (sort.order === 'asc' ? '▲' : '▼') : ''}
                      </span>
                    </button>
                  )}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {page !== undefined && rows.length === 0 && (
              <tr>
                <td colSpan={COLUMNS.length} class="empty">
                  {filter === '' ? 'Nothing here yet.' : `No names contain “${filter}”.`}
                </td>
              </tr>
            )}
            {rows.map((e) => {
              const state = syncState(e, status);
              const mine = e.lock !== null && e.lock.owner === user.name;
              // Locked by a directory lock above it: shown, unlocked on the directory's row.
              const own = e.lock !== null && e.lock.path === e.path;
              return (
                <tr
                  key={e.path}
                  data-path={e.path}
                  class={[
                    props.flash.has(e.path) ? 'changed' : '',
                    e.lock !== null ? 'locked' : '',
                    e.conflict ? 'conflict' : '',
                  ]
                    .filter(Boolean)
                    .join(' ')}
                >
                  <th scope="row" class="name">
                    {e.type === 'directory' ? (
                      <a href={hashOfDir(e.path)} class="dir">
                        <FolderIcon />
                        {e.name}/
                      </a>
                    ) : (
                      <span class="file">
                        {e.type === 'symlink' ? <LinkIcon /> : <FileIcon />}
                        {e.name}
                      </span>
                    )}
                    {e.conflict && (
                      <span
                        class="badge conflict"
                        title="The losing version of an edit made on two devices at once"
                      >
                        conflict copy
                      </span>
                    )}
                  </th>
                  <td class="size">{e.type === 'directory' ? '' : formatBytes(e.size)}</td>
                  <td class="modified">
                    <time dateTime={e.modified}>{formatLocal(e.modified)}</time>
                  </td>
                  <td class="lock">
                    {e.lock !== null && (
                      <span class="lockinfo">
                        <span class="badge lock">
                          <LockIcon />
                          {holder(e.lock)}
                          {own ? '' : ` (${lockPath(e.lock)})`}
                        </span>
                        <span class="sub">
                          since{' '}
                          <time dateTime={e.lock.created} title={formatLocal(e.lock.created)}>
                            {shortTime(e.lock.created, now)}
                          </time>
                          , {timeLeft(e.lock, now) ?? 'no expiry'}
                          {e.lock.reason !== '' ? ` — ${e.lock.reason}` : ''}
                        </span>
                      </span>
                    )}
                  </td>
                  <td class="on">
                    {e.devices
                      .map((d) => d.name)
                      .sort()
                      .join(' ')}
                  </td>
                  <td class="state">
                    {state.progress !== undefined && (
                      <progress value={state.progress} max={1} aria-label={`Receiving ${e.name}`} />
                    )}
                    <span>{state.text}</span>
                  </td>
                  <td class="actions">
                    {(e.type === 'file' || e.type === 'directory') && e.lock === null && (
                      <button type="button" onClick={() => setLocking(e)}>
                        Lock<span class="visually-hidden"> {e.name}</span>
                      </button>
                    )}
                    {own && mine && (
                      <button type="button" onClick={() => void unlock(e, false)}>
                        Unlock<span class="visually-hidden"> {e.name}</span>
                      </button>
                    )}
                    {own && !mine && user.admin && (
                      <button
                        type="button"
                        class="danger"
                        onClick={() => {
                          if (
                            confirm(
                              `Remove ${e.lock === null ? '' : holder(e.lock)}'s lock on ${e.name}? They are told.`,
                            )
                          )
                            void unlock(e, true);
                        }}
                      >
                        Force unlock<span class="visually-hidden"> {e.name}</span>
                      </button>
                    )}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
      {page !== undefined && page.total > page.entries.length && (
        <p class="more">
          Showing the first {page.entries.length} of {page.total} entries; use the filter or{' '}
          <code>lockstep ls</code> for the rest.
        </p>
      )}
      {locking !== undefined && (
        <LockDialog
          entry={locking}
          onClose={() => setLocking(undefined)}
          onLock={(opts) => {
            setLocking(undefined);
            void act(async () => lockedLine(await api.lock(locking.path, opts), Date.now()));
          }}
        />
      )}
    </section>
  );
}

/** The lock form: an optional reason and expiry. */
function LockDialog(props: {
  entry: ListEntry;
  onClose: () => void;
  onLock: (opts: { ttlS?: number; reason?: string }) => void;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const [reason, setReason] = useState('');
  const [ttl, setTtl] = useState('');
  const [ttlError, setTtlError] = useState<string | undefined>();
  useEffect(() => {
    const d = ref.current;
    if (d !== null && !d.open) d.showModal();
  }, []);
  return (
    <dialog
      ref={ref}
      class="card lockdialog"
      aria-labelledby="lock-title"
      onClose={props.onClose}
      onCancel={props.onClose}
    >
      <form
        onSubmit={(ev) => {
          ev.preventDefault();
          let ttlS: number | undefined;
          if (ttl.trim() !== '') {
            try {
              ttlS = Math.round(parseDuration(ttl, 'expiry') / 1000);
            } catch (err) {
              setTtlError((err as Error).message);
              return;
            }
          }
          props.onLock({
            ...(ttlS === undefined ? {} : { ttlS }),
            ...(reason.trim() === '' ? {} : { reason: reason.trim() }),
          });
        }}
      >
        <h2 id="lock-title">Lock {props.entry.name}</h2>
        <p>
          {props.entry.type === 'directory'
            ? 'Nobody else can change anything in it, on any device, until you unlock it.'
            : 'Nobody else can change it on any device until you unlock it.'}
        </p>
        <label for="lock-reason">Reason (optional)</label>
        <input
          id="lock-reason"
          value={reason}
          maxLength={1000}
          onInput={(e) => setReason(e.currentTarget.value)}
        />
        <label for="lock-ttl">Expires after (optional)</label>
        <input
          id="lock-ttl"
          value={ttl}
          placeholder="e.g. 30m, 2h, 1d — empty: no expiry"
          aria-invalid={ttlError !== undefined}
          aria-describedby={ttlError !== undefined ? 'lock-ttl-error' : undefined}
          onInput={(e) => {
            setTtl(e.currentTarget.value);
            setTtlError(undefined);
          }}
        />
        {ttlError !== undefined && (
          <p id="lock-ttl-error" class="error">
            {ttlError}
          </p>
        )}
        <div class="buttons">
          <button type="button" class="quiet" onClick={props.onClose}>
            Cancel
          </button>
          <button type="submit">Lock</button>
        </div>
      </form>
    </dialog>
  );
}

/**
 * The page: sign-in (a token, or a one-time link from `lockstep open`), then
 * the live listing with locks, the devices and the activity feed.
 */
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import type { ClientEvent, ListPage, Status, User } from '../../src/api/backend.js';
import { Api, ApiError, exchangeCode } from './api';
import { Devices, Feed, type FeedItem } from './side';
import { Listing } from './listing';
import { dirOfHash, errorText, pathOf, rowOf, signinCodeOf } from './logic';

const TOKEN_KEY = 'lockstep.token';
/** How long a changed row stays highlighted, in milliseconds. */
const FLASH_MS = 2500;
/** Events kept in the feed. */
const FEED_SIZE = 100;

/** Reads the kept token (storage may be unavailable). */
function keptToken(): string | undefined {
  try {
    return localStorage.getItem(TOKEN_KEY) ?? undefined;
  } catch {
    return undefined;
  }
}

function keepToken(token: string | undefined): void {
  try {
    if (token === undefined) localStorage.removeItem(TOKEN_KEY);
    else localStorage.setItem(TOKEN_KEY, token);
  } catch {
    // private mode: the session lasts as long as the page
  }
}

type Auth =
  | { state: 'checking' }
  | { state: 'out'; message?: string }
  | { state: 'in'; api: Api; user: User };

export function App() {
  const [auth, setAuth] = useState<Auth>({ state: 'checking' });

  const signInWith = useCallback(async (token: string, message?: string) => {
    const api = new Api(token);
    try {
      const user = await api.whoami();
      keepToken(token);
      setAuth({ state: 'in', api, user });
    } catch (err) {
      keepToken(undefined);
      const e = err as ApiError;
      setAuth({
        state: 'out',
        message:
          e.status === 401 ? (message ?? 'That token is not valid on this device.') : errorText(e),
      });
    }
  }, []);

  useEffect(() => {
    const code = signinCodeOf(location.hash);
    if (code !== undefined) {
      // Take the code out of the address at once: it works only once anyway.
      history.replaceState(null, '', `${location.pathname}#/`);
      exchangeCode(code)
        .then((s) => signInWith(s.token))
        .catch((err: ApiError) => setAuth({ state: 'out', message: err.message }));
      return;
    }
    const token = keptToken();
    if (token === undefined) setAuth({ state: 'out' });
    else void signInWith(token, 'Your session has ended: sign in again.');
  }, [signInWith]);

  const signOut = useCallback(
    (message?: string) => {
      if (auth.state === 'in') void auth.api.signOut();
      keepToken(undefined);
      setAuth({ state: 'out', ...(message === undefined ? {} : { message }) });
    },
    [auth],
  );

  if (auth.state === 'checking') {
    return (
      <main class="center" aria-busy="true">
        <p>Signing in…</p>
      </main>
    );
  }
  if (auth.state === 'out') {
    return <SignIn message={auth.message} onToken={(t) => void signInWith(t)} />;
  }
  return <Main api={auth.api} user={auth.user} onSignOut={signOut} />;
}

function SignIn(props: { message: string | undefined; onToken: (token: string) => void }) {
  const [token, setToken] = useState('');
  return (
    <main class="center">
      <form
        class="signin card"
        aria-labelledby="signin-title"
        onSubmit={(e) => {
          e.preventDefault();
          if (token.trim() !== '') props.onToken(token.trim());
        }}
      >
        <h1 id="signin-title">Sign in to Lockstep</h1>
        {props.message !== undefined && (
          <p class="error" role="alert">
            {props.message}
          </p>
        )}
        <p>
          Open the link that <code>lockstep open</code> prints on this device, or paste a token: the
          device's own (the <code>token</code> file in its home) or one from{' '}
          <code>lockstep user add</code>.
        </p>
        <label for="token">Token</label>
        <input
          id="token"
          name="token"
          type="password"
          autocomplete="current-password"
          value={token}
          onInput={(e) => setToken(e.currentTarget.value)}
          required
        />
        <button type="submit">Sign in</button>
      </form>
    </main>
  );
}

/** A short-lived message: the outcome of the last action. */
export interface Notice {
  readonly kind: 'error' | 'info';
  readonly text: string;
}

function Main(props: { api: Api; user: User; onSignOut: (message?: string) => void }) {
  const { api, user, onSignOut } = props;
  const [dir, setDir] = useState(() => dirOfHash(location.hash));
  const [page, setPage] = useState<ListPage | undefined>();
  const [listError, setListError] = useState<string | undefined>();
  const [status, setStatus] = useState<Status | undefined>();
  const [live, setLive] = useState<'live' | 'reconnecting' | 'connecting'>('connecting');
  const [feed, setFeed] = useState<FeedItem[]>([]);
  const [flash, setFlash] = useState<ReadonlyMap<string, number>>(new Map());
  const [notice, setNotice] = useState<Notice | undefined>();
  const dirRef = useRef(dir);
  dirRef.current = dir;
  const seq = useRef(0);

  const failed = useCallback(
    (err: unknown): string => {
      const e = err as ApiError;
      if (e.status === 401) onSignOut('Your session has ended: sign in again.');
      return errorText(e);
    },
    [onSignOut],
  );

  const loadList = useCallback(async () => {
    const want = dirRef.current;
    try {
      const p = await api.list(want);
      if (dirRef.current !== want) return;
      setPage(p);
      setListError(undefined);
    } catch (err) {
      if (dirRef.current === want) setListError(failed(err));
    }
  }, [api, failed]);

  const receiving = useRef(false);
  const loadStatus = useCallback(async () => {
    try {
      const s = await api.status();
      setStatus(s);
      // While files come in, their rows' progress moves too.
      if (s.transfers.length > 0 || receiving.current) void loadList();
      receiving.current = s.transfers.length > 0;
    } catch (err) {
      failed(err);
    }
  }, [api, failed, loadList]);

  useEffect(() => {
    const onHash = () => setDir(dirOfHash(location.hash));
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);

  useEffect(() => {
    setPage(undefined);
    void loadList();
  }, [dir, loadList]);

  // Status (devices, transfers) every second while the page is seen.
  useEffect(() => {
    void loadStatus();
    const t = setInterval(() => {
      if (document.visibilityState === 'visible') void loadStatus();
    }, 1000);
    return () => clearInterval(t);
  }, [loadStatus]);

  // Live events: each refreshes the listing (coalesced) and flashes its row.
  useEffect(() => {
    const ctl = new AbortController();
    let refresh: ReturnType<typeof setTimeout> | undefined;
    const soon = () => {
      if (refresh === undefined) {
        refresh = setTimeout(() => {
          refresh = undefined;
          void loadList();
        }, 30);
      }
    };
    const onEvent = (ev: ClientEvent) => {
      setFeed((f) => [{ id: ++seq.current, ev }, ...f].slice(0, FEED_SIZE));
      const path = pathOf(ev);
      if (path === undefined) {
        void loadStatus();
        return;
      }
      soon();
      const row = rowOf(dirRef.current, path);
      if (row !== undefined) {
        const until = Date.now() + FLASH_MS;
        setFlash((m) => new Map(m).set(row, until));
        setTimeout(
          () =>
            setFlash((m) => {
              if ((m.get(row) ?? 0) > Date.now()) return m;
              const n = new Map(m);
              n.delete(row);
              return n;
            }),
          FLASH_MS + 50,
        );
      }
    };
    void api.follow(
      onEvent,
      (state) => {
        if (state === 'unauthorized') {
          onSignOut('Your session has ended: sign in again.');
          return;
        }
        setLive(state);
        // Events may have been missed while the stream was down.
        if (state === 'live') {
          soon();
          void loadStatus();
        }
      },
      ctl.signal,
    );
    return () => {
      ctl.abort();
      if (refresh !== undefined) clearTimeout(refresh);
    };
  }, [api, loadList, loadStatus, onSignOut]);

  const act = useCallback(
    async (what: () => Promise<string>) => {
      try {
        setNotice({ kind: 'info', text: await what() });
        void loadList();
      } catch (err) {
        setNotice({ kind: 'error', text: failed(err) });
      }
    },
    [failed, loadList],
  );

  return (
    <>
      <a class="skip" href="#listing">
        Skip to the listing
      </a>
      <header class="top">
        <h1>
          Lockstep <span class="device">{status ? `on ${status.device.name}` : ''}</span>
        </h1>
        <p class={`live ${live}`} role="status">
          {live === 'live' ? 'Live' : live === 'connecting' ? 'Connecting…' : 'Reconnecting…'}
        </p>
        <p class="who">
          Signed in as <strong>{user.name}</strong>
          {user.admin ? ' (administrator)' : ''}
        </p>
        <button type="button" class="quiet" onClick={() => onSignOut()}>
          Sign out
        </button>
      </header>
      <div class="layout">
        <main id="listing" tabIndex={-1}>
          <div class="notice-area" aria-live="polite">
            {notice && (
              <p
                class={`notice ${notice.kind}`}
                role={notice.kind === 'error' ? 'alert' : 'status'}
              >
                <span>{notice.text}</span>
                <button
                  type="button"
                  class="quiet"
                  aria-label="Dismiss message"
                  onClick={() => setNotice(undefined)}
                >
                  ×
                </button>
              </p>
            )}
          </div>
          <Listing
            api={api}
            user={user}
            dir={dir}
            page={page}
            error={listError}
            status={status}
            flash={flash}
            act={act}
          />
        </main>
        <aside class="side">
          <Devices status={status} />
          <Feed items={feed} />
        </aside>
      </div>
    </>
  );
}

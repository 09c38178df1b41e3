/**
 * The page: sign-in (a token, or a one-time link from `lockstep open`), then
 * the live listing with locks, the devices and the activity feed.
 */
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import type { ClientEvent, ListPage, Status, User, WebSession } from '../../src/api/backend.js';
import { Api, ApiError, createSession, exchangeCode } from './api';
import { Devices, Feed, type FeedItem } from './side';
import { Listing } from './listing';
import { dirOfHash, errorText, pathOf, rowOf, signinCodeOf } from './logic';

/** The session token, kept in this tab's session storage (never a pasted token). */
const SESSION_KEY = 'lockstep.session';
/** Where earlier versions kept a pasted token, with no expiry: removed at start. */
const OLD_TOKEN_KEY = 'lockstep.token';
/** Wait before asking a device that did not answer again, in milliseconds. */
const RETRY_MS = 3000;
/** How long a changed row stays highlighted, in milliseconds. */
const FLASH_MS = 2500;
/** Events kept in the feed. */
const FEED_SIZE = 100;

/** Reads the kept session token (storage may be unavailable). */
function keptSession(): string | undefined {
  try {
    return sessionStorage.getItem(SESSION_KEY) ?? undefined;
  } catch {
    return undefined;
  }
}

function keepSession(token: string | undefined): void {
  try {
    if (token === undefined) sessionStorage.removeItem(SESSION_KEY);
    else sessionStorage.setItem(SESSION_KEY, token);
  } catch {
    // storage unavailable: the session lasts as long as the page
  }
}

function forgetOldToken(): void {
  try {
    localStorage.removeItem(OLD_TOKEN_KEY);
  } catch {
    // storage unavailable: nothing kept there either
  }
}

type Auth =
  | { state: 'checking' }
  | { state: 'unreachable'; message: string }
  | { state: 'out'; message?: string }
  | { state: 'in'; api: Api; user: User };

export function App() {
  const [auth, setAuth] = useState<Auth>({ state: 'checking' });

  const signedIn = useCallback((session: WebSession) => {
    keepSession(session.token);
    setAuth({ state: 'in', api: new Api(session.token), user: session.user });
  }, []);

  // A pasted token is exchanged for a session at once; only the session is kept.
  const signInWith = useCallback(
    async (token: string) => {
      try {
        signedIn(await createSession(token));
      } catch (err) {
        const e = err as ApiError;
        setAuth({
          state: 'out',
          message: e.status === 401 ? 'That token is not valid on this device.' : errorText(e),
        });
      }
    },
    [signedIn],
  );

  const signedOut = useCallback((message?: string) => {
    keepSession(undefined);
    setAuth({ state: 'out', ...(message === undefined ? {} : { message }) });
  }, []);

  useEffect(() => {
    forgetOldToken();
    const code = signinCodeOf(location.hash);
    if (code !== undefined) {
      // Take the code out of the address at once: it works only once anyway.
      history.replaceState(null, '', `${location.pathname}#/`);
      exchangeCode(code)
        .then(signedIn)
        .catch((err: ApiError) => setAuth({ state: 'out', message: err.message }));
      return;
    }
    const token = keptSession();
    if (token === undefined) {
      setAuth({ state: 'out' });
      return;
    }
    // Resume the kept session. Only a refusal (401) ends it: while the
    // device does not answer, say so and ask again.
    const api = new Api(token);
    let stopped = false;
    let retry: ReturnType<typeof setTimeout> | undefined;
    const attempt = async () => {
      try {
        const user = await api.whoami();
        if (!stopped) setAuth({ state: 'in', api, user });
      } catch (err) {
        if (stopped) return;
        const e = err as ApiError;
        if (e.status === 401) {
          signedOut('Your session has ended: sign in again.');
        } else {
          setAuth({ state: 'unreachable', message: errorText(e) });
          retry = setTimeout(() => void attempt(), RETRY_MS);
        }
      }
    };
    void attempt();
    return () => {
      stopped = true;
      clearTimeout(retry);
    };
  }, [signedIn, signedOut]);

  if (auth.state === 'checking') {
    return (
      <main class="center" aria-busy="true">
        <p>Signing in…</p>
      </main>
    );
  }
  if (auth.state === 'unreachable') {
    return (
      <main class="center" aria-busy="true">
        <p role="status">Cannot reach the device, retrying…</p>
        <p class="error">{auth.message}</p>
      </main>
    );
  }
  if (auth.state === 'out') {
    return <SignIn message={auth.message} onToken={(t) => void signInWith(t)} />;
  }
  return <Main api={auth.api} user={auth.user} onSignedOut={signedOut} />;
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

function Main(props: { api: Api; user: User; onSignedOut: (message?: string) => void }) {
  const { api, user, onSignedOut } = props;
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
      if (e.status === 401) onSignedOut('Your session has ended: sign in again.');
      return errorText(e);
    },
    [onSignedOut],
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
          onSignedOut('Your session has ended: sign in again.');
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
  }, [api, loadList, loadStatus, onSignedOut]);

  // Sign-out waits for the device: if it failed, the session still works there.
  const [signingOut, setSigningOut] = useState(false);
  const signOut = useCallback(async () => {
    setSigningOut(true);
    try {
      await api.signOut();
      onSignedOut();
    } catch (err) {
      const e = err as ApiError;
      // 401: the session had ended already.
      if (e.status === 401) {
        onSignedOut();
        return;
      }
      setSigningOut(false);
      setNotice({
        kind: 'error',
        text: `Could not sign out: ${errorText(e)} You are still signed in; try again.`,
      });
    }
  }, [api, onSignedOut]);

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
        <button type="button" class="quiet" disabled={signingOut} onClick={() => void signOut()}>
          {signingOut ? 'Signing out…' : 'Sign out'}
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

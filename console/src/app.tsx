import { useEffect, useState } from 'preact/hooks';
import { api, setCsrfToken, setUnauthorizedHandler, type Session } from './api';
import { closeLive, onLiveState, openLive } from './live';
import { Login } from './pages/login';
import { OverviewPage } from './pages/overview';
import { EventsPage } from './pages/events';
import { RoutesPage } from './pages/routes';
import { KeysPage } from './pages/keys';
import { AlertsPage } from './pages/alerts';
import { navigate, useHashRoute } from './util';

const PAGES = [
  { id: 'overview', label: 'Overview' },
  { id: 'events', label: 'Security events' },
  { id: 'routes', label: 'Routes' },
  { id: 'keys', label: 'Consumers & API keys' },
  { id: 'alerts', label: 'Alerts' },
] as const;

// Whether this browser holds a console session. The cookie itself is HttpOnly; this only spares
// a first visit the `GET /api/session` that would answer 401 (and log it in the browser console).
const HINT = 'rampart.console.session';

export function App() {
  // undefined: not known yet; null: logged out.
  const [session, setSession] = useState<Session | null | undefined>(() => (localStorage.getItem(HINT) === '1' ? undefined : null));
  const route = useHashRoute();

  // The e-mail typed at login, for sessions whose answer has none (after a password change).
  const [typedEmail, setTypedEmail] = useState<string | undefined>();
  const signedIn = (s: Session, email?: string) => {
    setTypedEmail(email);
    setCsrfToken(s.csrfToken ?? undefined);
    localStorage.setItem(HINT, '1');
    setSession(s);
  };
  const signedOut = () => {
    closeLive();
    setCsrfToken(undefined);
    localStorage.removeItem(HINT);
    setSession(null);
  };

  useEffect(() => {
    setUnauthorizedHandler(signedOut);
    if (session === undefined) {
      api<Session>('GET', '/api/session').then((s) => signedIn(s), signedOut);
    }
    return () => setUnauthorizedHandler(undefined);
  }, []);

  useEffect(() => {
    if (session) openLive();
  }, [session]);

  if (session === undefined) return <div class="splash">Loading…</div>;
  if (session === null) return <Login onSignedIn={signedIn} />;

  const logout = async () => {
    closeLive();
    try {
      await api('DELETE', '/api/session');
    } finally {
      signedOut();
      navigate('overview');
    }
  };

  const [path = '', search = ''] = route.split('?');
  const [pageId = '', ...rest] = path.split('/');
  const page = pageId === '' ? 'overview' : pageId;
  return (
    <div class="layout">
      <nav class="nav" data-testid="nav">
        <div class="brand">
          <img src="/favicon.svg" alt="" width="22" height="22" />
          <span>Rampart</span>
        </div>
        {PAGES.map((p) => (
          <a key={p.id} href={`#/${p.id}`} class={page === p.id ? 'active' : ''} data-testid={`nav-${p.id}`}>
            {p.label}
          </a>
        ))}
        <div class="nav-foot">
          <LiveBadge />
          <div class="who" data-testid="session-user" title={session.user.roles.join(', ')}>
            {session.user.email ?? (session.user.id === 'admin-token' ? 'admin token' : (typedEmail ?? session.user.id))}
          </div>
          <button type="button" class="ghost" data-testid="logout" onClick={logout}>
            Log out
          </button>
        </div>
      </nav>
      <main class="main">
        {page === 'overview' && <OverviewPage />}
        {page === 'events' && <EventsPage id={rest[0]} search={search} />}
        {page === 'routes' && <RoutesPage />}
        {page === 'keys' && <KeysPage />}
        {page === 'alerts' && <AlertsPage />}
        {!PAGES.some((p) => p.id === page) && (
          <section>
            <h1>Not found</h1>
            <p>
              No page here. <a href="#/overview">Back to the overview</a>.
            </p>
          </section>
        )}
      </main>
    </div>
  );
}

function LiveBadge() {
  const [live, setLive] = useState(false);
  useEffect(() => onLiveState(setLive), []);
  return (
    <div class={`live ${live ? 'on' : 'off'}`} data-testid="live-state" title={live ? 'live stream connected' : 'polling'}>
      <span class="dot" /> {live ? 'Live' : 'Polling'}
    </div>
  );
}

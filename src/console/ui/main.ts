// The console's page: signs in (a plain form POST to /ui/session), then Mesh, Faults and Game days,
// with the emergency stop in the header of every page. Preact renders every value as text (escaped);
// nothing here sets HTML from data.
import { html } from 'htm/preact';
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { ApiError, SESSION_ENDED, call, useSession, type SessionInfo } from './api.ts';
import type { LiveFrame } from './live.ts';
import { MeshPage } from './mesh.ts';
import { FaultsPage } from './faults.ts';
import { GameDaysPage } from './gamedays.ts';
import { StopButton } from './stop.ts';
import './style.css';

type Page = 'mesh' | 'faults' | 'gamedays';
const PAGES: { id: Page; label: string }[] = [
  { id: 'mesh', label: 'Mesh' },
  { id: 'faults', label: 'Faults' },
  { id: 'gamedays', label: 'Game days' },
];

function pageOf(path: string): Page {
  const last = path.replace(/\/+$/, '').split('/').pop();
  return last === 'faults' || last === 'gamedays' ? last : 'mesh';
}

function SignIn({ refused, ended }: { refused: boolean; ended: boolean }) {
  return html`<main class="signin">
    <h1>faultline console</h1>
    <form method="post" action="/ui/session" data-testid="signin">
      <label for="token">Token (admin or viewer)</label>
      <input id="token" name="token" type="password" autocomplete="current-password" required autofocus />
      ${refused && html`<p class="error" role="alert" data-testid="signin-refused">That token was refused.</p>`}
      ${ended && html`<p class="error" role="alert" data-testid="session-ended">The session ended (signed out, expired, or this control plane restarted): sign in again.</p>`}
      <button type="submit">Sign in</button>
    </form>
    <p class="hint">The token is sent once, in this form; a session cookie (8 h, this control plane only) does the rest.</p>
  </main>`;
}

function useLive(enabled: boolean): { frame: LiveFrame | undefined; connected: boolean } {
  const [frame, setFrame] = useState<LiveFrame>();
  const [connected, setConnected] = useState(false);
  useEffect(() => {
    if (!enabled) return;
    const source = new EventSource('/ui/live');
    source.addEventListener('frame', (e) => {
      setFrame(JSON.parse((e as MessageEvent<string>).data) as LiveFrame);
      setConnected(true);
    });
    source.onerror = () => {
      setConnected(false);
      // A stream refused (401) looks like any broken stream: ask whether the session still holds.
      void call('GET', '/ui/session').catch(() => undefined);
    };
    return () => source.close();
  }, [enabled]);
  return { frame, connected };
}

function App() {
  const [session, setSession] = useState<SessionInfo | null>();
  const [ended, setEnded] = useState(false);
  const [page, setPage] = useState<Page>(pageOf(location.pathname));
  const { frame, connected } = useLive(Boolean(session));

  useEffect(() => {
    call<SessionInfo>('GET', '/ui/session').then(
      (info) => {
        useSession(info);
        setSession(info);
      },
      (error: unknown) => {
        if (error instanceof ApiError && error.status === 401) setSession(null);
        else throw error;
      },
    );
    const back = () => setPage(pageOf(location.pathname));
    const ended = () => {
      useSession(undefined);
      setSession(null);
      setEnded(true);
    };
    addEventListener('popstate', back);
    addEventListener(SESSION_ENDED, ended);
    return () => {
      removeEventListener('popstate', back);
      removeEventListener(SESSION_ENDED, ended);
    };
  }, []);

  if (session === undefined) return html`<p class="loading">Loading…</p>`;
  if (session === null) return html`<${SignIn} refused=${new URLSearchParams(location.search).get('signin') === 'refused'} ended=${ended} />`;


  const go = (id: Page) => (event: Event) => {
    event.preventDefault();
    history.pushState(null, '', `/ui/${id}`);
    setPage(id);
  };
  const signOut = async () => {
    await call('DELETE', '/ui/session');
    location.assign('/ui');
  };
  const admin = session.role === 'admin';
  return html`<div class="shell">
    <header>
      <span class="brand">faultline <small>${frame?.mesh ?? ''}</small></span>
      <nav aria-label="Pages">
        ${PAGES.map((p) => html`<a href=${`/ui/${p.id}`} aria-current=${page === p.id ? 'page' : undefined} onClick=${go(p.id)} data-testid=${`nav-${p.id}`}>${p.label}</a>`)}
      </nav>
      <span class="status" data-testid="live-status" title="live stream">${connected ? '● live' : '○ offline'}</span>
      <span class="role" data-testid="role">${session.role}</span>
      <${StopButton} allowed=${admin} />
      <button type="button" class="quiet" onClick=${signOut} data-testid="signout">Sign out</button>
    </header>
    <main>
      ${page === 'mesh' && html`<${MeshPage} frame=${frame} />`}
      ${page === 'faults' && html`<${FaultsPage} frame=${frame} admin=${admin} />`}
      ${page === 'gamedays' && html`<${GameDaysPage} admin=${admin} />`}
    </main>
  </div>`;
}

render(html`<${App} />`, document.getElementById('app')!);

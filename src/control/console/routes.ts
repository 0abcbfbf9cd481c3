// The console's routes. Before the token check (public): GET /ui (the page), its assets, and the sign-in
// (POST /ui/session, a form with the admin or the viewer token → a session cookie). Behind it:
// GET /ui/session (who is signed in, and the CSRF token the page sends with every change),
// DELETE /ui/session (sign out) and GET /ui/live (the Mesh page's stream: live.ts). The page itself
// only calls the public API (/faults, /halt, /gamedays, …) with its session cookie, as the CLI does
// with its bearer token.
import express, { Router, type Response } from 'express';
import { CSRF_HEADER, SESSION_COOKIE, callerOf, sessionCookie, type ControlAccess } from '../auth.ts';
import { consoleAssets } from './assets.ts';
import type { LiveMesh } from './live.ts';
import { SESSION_TTL_MS } from '../sessions.ts';

/**
 * No inline script or style, no eval, nothing from elsewhere; not framed by anyone. (Preact sets style
 * properties through the CSSOM, which style-src does not govern; htm compiles templates without eval.)
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

function secure(res: Response): void {
  res.set({
    'content-security-policy': CONTENT_SECURITY_POLICY,
    'x-frame-options': 'DENY',
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'cross-origin-opener-policy': 'same-origin',
  });
}

export function consolePublicRoutes(access: ControlAccess): Router {
  const router = Router();
  const sessions = access.sessions;
  if (!sessions) throw new Error('the console needs the access check to keep sessions');

  const page = async (_req: express.Request, res: Response) => {
    const assets = await consoleAssets();
    secure(res);
    res.set('cache-control', 'no-store').type('html').send(assets.index);
  };
  router.get('/ui', page);
  router.get(/^\/ui\/(?:mesh|faults|gamedays)?$/, page);

  router.get('/ui/assets/:name', async (req, res) => {
    const file = (await consoleAssets()).files.get(req.params.name);
    if (!file) return void res.status(404).json({ error: `no console asset "${req.params.name}"` });
    secure(res);
    // Hashed names: a new build is a new name.
    res.set('cache-control', 'public, max-age=31536000, immutable').type(file.type).send(file.body);
  });

  // Sign in: a form POST (the token never in a URL), answered with a redirect to the page.
  router.post('/ui/session', express.urlencoded({ extended: false, limit: '4kb' }), (req, res) => {
    secure(res);
    // A form posted from another site is refused (SameSite does not cover a sign-in that sets the cookie).
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== 'null' && new URL(origin).host !== req.headers.host) {
      return void res.status(403).json({ error: 'sign-in from another origin is refused' });
    }
    const token = typeof req.body?.token === 'string' ? req.body.token.trim() : '';
    const role = token ? access.roleOf(token) : undefined;
    if (!role) return void res.redirect(303, '/ui?signin=refused');
    const { id } = sessions.create(role);
    res.cookie(SESSION_COOKIE, id, { httpOnly: true, sameSite: 'strict', secure: req.secure, path: '/', maxAge: SESSION_TTL_MS });
    res.redirect(303, '/ui');
  });
  return router;
}

export function consoleRoutes(access: ControlAccess, live: LiveMesh): Router {
  const router = Router();
  router.get('/ui/session', (req, res) => {
    const caller = callerOf(res);
    const session = access.sessions?.get(sessionCookie(req.headers.cookie));
    // A join token never gets here (auth.ts lets it call the sidecars' routes only).
    res.set('cache-control', 'no-store').json({ role: caller.kind, csrf: session?.csrf ?? null, expiresAt: session ? new Date(session.expiresAt).toISOString() : null, csrfHeader: CSRF_HEADER });
  });
  router.delete('/ui/session', (req, res) => {
    access.sessions?.delete(sessionCookie(req.headers.cookie));
    res.clearCookie(SESSION_COOKIE, { httpOnly: true, sameSite: 'strict', secure: req.secure, path: '/' });
    res.status(204).end();
  });
  router.get('/ui/live', (req, res) => {
    // Under a session, the stream is cut when the session ends (sign-out anywhere, expiry).
    const id = sessionCookie(req.headers.cookie);
    const session = req.headers.authorization ? undefined : access.sessions?.get(id);
    if (session) access.sessions!.hold(id!, session, res);
    live.stream(res);
  });
  return router;
}

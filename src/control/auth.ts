// Who calls the control plane's API, and what they may do. The admin token (compared in constant time)
// may do everything. A join token for service S (join-token.ts) may only act as a sidecar of S: watch,
// acknowledge, get S's identity, register S's instances; any other route is a 403 that says so. A
// revoked or expired join token is a 401 that says which, and the streams it opened are cut when it is
// revoked (on any control plane sharing the store) or when it expires. A token's signature is verified
// once (kept for its next requests); its expiry and revocation, on every request. A viewer (the
// --viewer-token-file token, or a console session signed in with it) may read every route and change
// nothing: any other method is a 403 (but signing out of the console). A console session (its cookie)
// acts as the role it signed in as, and a state-changing request of a session must carry the session's
// CSRF token (x-faultline-csrf), else 403.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import type { Clock } from '../clock.ts';
import { ErrorCode } from '../errors.ts';
import { JoinTokenRefused, JoinTokenSigner, MAX_JOIN_TTL_MS, checkService, looksLikeJoinToken, type JoinClaims } from './join-token.ts';
import type { ControlPlane } from './plane.ts';
import { Revocations, type Revocation } from './revocations.ts';
import type { Store } from './store.ts';
import { sameSecret, type Sessions } from './sessions.ts';

export type Caller =
  | { readonly kind: 'admin'; readonly session?: true }
  | { readonly kind: 'viewer'; readonly session?: true }
  | { readonly kind: 'join'; readonly claims: JoinClaims };

/** The console's cookie: the session's id, nothing else. */
export const SESSION_COOKIE = 'faultline_session';
/** The header a console session's state-changing request carries its CSRF token in. */
export const CSRF_HEADER = 'x-faultline-csrf';
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
/** What a viewer may do besides reading: sign out of the console. */
const signsOut = (req: Request) => req.method === 'DELETE' && req.path === '/ui/session';

export interface AccessOptions {
  /** The read-only token (--viewer-token-file): reads every route, changes nothing. */
  readonly viewerToken?: string;
  /** The console's sign-in sessions, taken from their cookie when a request has no bearer token. */
  readonly sessions?: Sessions;
}

/** The time join tokens are checked against, and the timers that cut streams at their token's expiry. */
export type AccessClock = Pick<Clock, 'now' | 'after'>;

/** The system's, but a timer does not keep the process alive. */
const systemAccessClock: AccessClock = {
  now: () => Date.now(),
  after(ms, fn) {
    const timer = setTimeout(fn, ms).unref();
    return () => clearTimeout(timer);
  },
};

/** The routes a join token may call; what each may touch is checked by the route (mayActAs). */
const JOIN_ROUTES: readonly { readonly methods: readonly string[]; readonly path: RegExp }[] = [
  { methods: ['GET'], path: /^\/v1\/watch$/ },
  { methods: ['POST'], path: /^\/v1\/ack$/ },
  { methods: ['POST'], path: /^\/v1\/leave$/ },
  { methods: ['POST'], path: /^\/v1\/identity$/ },
  { methods: ['GET', 'POST'], path: /^\/v1\/uplink$/ },
  { methods: ['PUT', 'DELETE'], path: /^\/v1\/instances\/[^/]+$/ },
  { methods: ['POST'], path: /^\/v1\/instances\/[^/]+\/renew$/ },
];

/** Longest setTimeout delay; a token living longer is re-armed. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Join tokens whose signature was verified, kept (a fleet's sidecars each call several times a minute). */
const VERIFIED_KEPT = 10_000;

export class ControlAccess {
  readonly revocations: Revocations;
  readonly #admin: Buffer;
  readonly #signer: JoinTokenSigner;
  readonly #clock: AccessClock;
  readonly #viewer: Buffer | undefined;
  readonly sessions: Sessions | undefined;
  /** Responses open under each join token id: cut when it is revoked. */
  readonly #open = new Map<string, Set<Response>>();
  /**
   * Join tokens already verified, with their claims: a signature check costs 0.1–0.25 ms (measured), and
   * a token's signature does not change. Its expiry and revocation are checked on every request still.
   */
  readonly #verified = new Map<string, JoinClaims>();

  private constructor(adminToken: string, revocations: Revocations, clock: AccessClock, options: AccessOptions) {
    this.#admin = digest(adminToken);
    this.#viewer = options.viewerToken === undefined ? undefined : digest(options.viewerToken);
    this.sessions = options.sessions;
    this.#signer = new JoinTokenSigner(adminToken);
    this.revocations = revocations;
    this.#clock = clock;
    revocations.onRevoked(({ jti }) => {
      for (const res of this.#open.get(jti) ?? []) res.destroy();
    });
  }

  static async open(adminToken: string, store: Store, clock: AccessClock = systemAccessClock, options: AccessOptions = {}): Promise<ControlAccess> {
    if (options.viewerToken !== undefined && sameSecret(options.viewerToken, adminToken)) throw new Error('the viewer token is the admin token: give the viewer a token of its own');
    return new ControlAccess(adminToken, await Revocations.open(store, () => clock.now()), clock, options);
  }

  /** The role a console sign-in's token gives: admin, viewer, or none (a join token signs no one in). */
  roleOf(token: string): 'admin' | 'viewer' | undefined {
    if (timingSafeEqual(digest(token), this.#admin)) return 'admin';
    if (this.#viewer && timingSafeEqual(digest(token), this.#viewer)) return 'viewer';
    return undefined;
  }

  /** The middleware: sets res.locals.caller, or answers 401/403. */
  readonly authenticate = async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    const header = req.headers.authorization ?? '';
    const given = header.startsWith('Bearer ') ? header.slice(7).trim() : '';
    if (given && timingSafeEqual(digest(given), this.#admin)) {
      res.locals.caller = { kind: 'admin' } satisfies Caller;
      return next();
    }
    if (given && this.#viewer && timingSafeEqual(digest(given), this.#viewer)) {
      if (!SAFE_METHODS.has(req.method) && !signsOut(req)) return readOnly(res, req);
      res.locals.caller = { kind: 'viewer' } satisfies Caller;
      return next();
    }
    if (!given && this.sessions) {
      const id = sessionCookie(req.headers.cookie);
      const session = this.sessions.get(id);
      if (session) {
        if (!SAFE_METHODS.has(req.method)) {
          const csrf = req.headers[CSRF_HEADER];
          if (typeof csrf !== 'string' || !sameSecret(csrf, session.csrf)) {
            return void res.status(403).json({ error: `a console request that changes anything must carry the session's CSRF token in ${CSRF_HEADER}`, code: ErrorCode.Forbidden });
          }
          if (session.role === 'viewer' && !signsOut(req)) return readOnly(res, req);
        }
        res.locals.caller = { kind: session.role, session: true } satisfies Caller;
        return next();
      }
      if (id) return unauthorized(res, 'the console session has ended (signed out, expired, or made by another replica): sign in again', undefined);
    }
    if (!given) return unauthorized(res, 'a bearer token is required: Authorization: Bearer <token>', undefined);
    if (!looksLikeJoinToken(given)) return unauthorized(res, 'the bearer token is neither this control plane\'s admin token nor a join token', 'invalid');
    let claims: JoinClaims;
    try {
      claims = await this.#verify(given);
      // From here to #hold nothing waits: a revocation cannot slip in between the check and the hold.
      this.#refuseRevoked(claims);
    } catch (error) {
      if (!(error instanceof JoinTokenRefused)) throw error;
      return unauthorized(res, error.message, error.reason);
    }
    if (!JOIN_ROUTES.some((r) => r.methods.includes(req.method) && r.path.test(req.path))) {
      return void res.status(403).json({
        error: `this is a join token for service "${claims.service}": it may only watch, acknowledge, get the identity of and register sidecars of "${claims.service}"; ${req.method} ${req.path} needs the admin token`,
        code: ErrorCode.Forbidden,
      });
    }
    res.locals.caller = { kind: 'join', claims } satisfies Caller;
    this.#hold(claims, res);
    next();
  };

  /** A join token's claims when it is valid now and not revoked; throws JoinTokenRefused. */
  async check(token: string): Promise<JoinClaims> {
    const claims = await this.#verify(token);
    this.#refuseRevoked(claims);
    return claims;
  }

  issue(service: string, ttlMs: number): Promise<{ token: string; claims: JoinClaims }> {
    return this.#signer.sign(service, ttlMs, this.#clock.now());
  }

  /**
   * Revokes a join token, given whole (its signature checked, expired or not) or by its id (then kept
   * revoked for the longest a token can live). Cuts its streams here; other control planes do on hearing it.
   */
  async revoke(tokenOrId: string): Promise<Revocation> {
    if (/^[0-9a-f]{32}$/.test(tokenOrId)) return this.revocations.revoke(tokenOrId, this.#clock.now() + MAX_JOIN_TTL_MS);
    if (!looksLikeJoinToken(tokenOrId)) throw new JoinTokenRefused('invalid', 'expected a join token or its id (32 hex digits)');
    const claims = await this.#signer.claimsOfSigned(tokenOrId);
    return this.revocations.revoke(claims.jti, claims.expiresAt, claims.service);
  }

  close(): void {
    this.revocations.close();
  }

  /** A join token's claims, valid now (not checked for revocation); its signature verified once. */
  async #verify(token: string): Promise<JoinClaims> {
    const now = this.#clock.now();
    const kept = this.#verified.get(token);
    if (kept && kept.expiresAt > now) return kept;
    // Expired (the signer says so, as it says it of any token), or not verified yet.
    this.#verified.delete(token);
    const claims = await this.#signer.verify(token, now);
    if (this.#verified.size >= VERIFIED_KEPT) this.#verified.delete(this.#verified.keys().next().value!);
    this.#verified.set(token, claims);
    return claims;
  }

  #refuseRevoked(claims: JoinClaims): void {
    const revoked = this.revocations.get(claims.jti);
    if (revoked) throw new JoinTokenRefused('revoked', `the join token ${claims.jti} for "${claims.service}" was revoked at ${revoked.revokedAt}`);
  }

  /** Keeps the response to be cut on revocation, and cuts it when its token expires. */
  #hold(claims: JoinClaims, res: Response): void {
    let open = this.#open.get(claims.jti);
    if (!open) this.#open.set(claims.jti, (open = new Set()));
    open.add(res);
    let cancel = () => {};
    const arm = () => {
      const left = claims.expiresAt - this.#clock.now();
      if (left <= 0) return void res.destroy();
      cancel = this.#clock.after(Math.min(left, MAX_TIMER_MS), arm);
    };
    arm();
    res.once('close', () => {
      cancel();
      open.delete(res);
      if (open.size === 0) this.#open.delete(claims.jti);
    });
  }
}

export function callerOf(res: Response): Caller {
  const caller = res.locals.caller as Caller | undefined;
  if (!caller) throw new Error('no caller: the route is not behind ControlAccess.authenticate');
  return caller;
}

/** Whether the caller may act as a sidecar or an instance of `service` (undefined: not known to be of any). */
export function mayActAs(caller: Caller, service: string | undefined): boolean {
  return caller.kind === 'admin' || (caller.kind === 'join' && service !== undefined && caller.claims.service === service);
}

/**
 * Answers 403 unless the caller may act as `what` (a sidecar or an instance) of `service`; true when it may.
 * The message names both services, so a sidecar started with the wrong token says why it is refused.
 */
export function allowedAs(res: Response, service: string | undefined, what: string): boolean {
  const caller = callerOf(res);
  if (mayActAs(caller, service)) return true;
  if (caller.kind === 'viewer') {
    res.status(403).json({ error: `a viewer may not act as ${what}: it reads, and needs the admin token or a join token for this`, code: ErrorCode.Forbidden });
    return false;
  }
  const claims = (caller as Extract<Caller, { kind: 'join' }>).claims;
  const of = service === undefined ? 'is not known as one of its sidecars' : `is of service "${service}"`;
  res.status(403).json({ error: `this join token is for service "${claims.service}"; ${what} ${of}`, code: ErrorCode.Forbidden });
  return false;
}

/**
 * The service of the sidecar called `name`: its entry's in the mesh config; else, for a sidecar that
 * joined with no entry, the service it is named after ("<service>" or "<service>-…", the longest such
 * name in the config); undefined when none.
 */
export function serviceOfSidecar(plane: ControlPlane, name: string): string | undefined {
  const entry = plane.snapshot.sidecars.find((s) => s.name === name);
  if (entry) return entry.service;
  const registered = plane.instance(name);
  if (registered) return registered.service;
  // The name itself, then each shorter prefix ending before a "-": the first that is a service is the
  // longest. (Asked on every sidecar request: a look-up per prefix, not a walk over every service.)
  const isService = (service: string) => plane.snapshot.services.has(service) || plane.hasInstancesOf(service);
  for (let end = name.length; end > 0; end = name.lastIndexOf('-', end - 1)) {
    const service = name.slice(0, end);
    if (isService(service)) return service;
  }
  return undefined;
}

/** For the token routes: a service a join token may be made for. */
export function checkTokenService(plane: ControlPlane, service: string): void {
  checkService(service);
  if (!plane.snapshot.services.has(service)) {
    throw new Error(`no service "${service}" in the mesh config (services: ${[...plane.snapshot.services.keys()].join(', ') || 'none'})`);
  }
}

/** The session id in a Cookie header, if any. */
export function sessionCookie(header: string | undefined): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const at = part.indexOf('=');
    if (at > 0 && part.slice(0, at).trim() === SESSION_COOKIE) return part.slice(at + 1).trim() || undefined;
  }
  return undefined;
}

function readOnly(res: Response, req: Request): void {
  res.status(403).json({ error: `a viewer reads and changes nothing: ${req.method} ${req.path} needs the admin token`, code: ErrorCode.Forbidden });
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

function unauthorized(res: Response, message: string, reason: JoinTokenRefused['reason'] | undefined): void {
  const code = reason === 'expired' ? ErrorCode.TokenExpired : reason === 'revoked' ? ErrorCode.TokenRevoked : reason === 'invalid' ? ErrorCode.TokenInvalid : undefined;
  res.status(401)
    .set('www-authenticate', reason ? `Bearer realm="faultline", error="invalid_token", error_description="${reason}"` : 'Bearer realm="faultline"')
    .json({ error: message, ...(code && { code }) });
}

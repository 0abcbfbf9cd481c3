// Join tokens (Kuma's dataplane tokens are the model): a JWT that lets a sidecar join as one service —
// watch, acknowledge, get that service's identity, register its instances — and nothing else. They are
// signed, never stored: the HMAC key is derived from the admin token (HKDF), so every replica given the
// same admin token verifies them, and rotating the admin token invalidates every join token at once.
import { hkdfSync, randomBytes } from 'node:crypto';
import { SignJWT, errors, jwtVerify } from 'jose';
import { parseDuration } from '../config/duration.ts';

/** The JWT "typ" header and the `kind` claim: an admin token and a join token cannot pass for each other. */
const JOIN_TYP = 'faultline-join+jwt';
const JOIN_KIND = 'join';
const ISSUER = 'faultline';
const ALGORITHM = 'HS256';

export const DEFAULT_JOIN_TTL_MS = 30 * 24 * 3_600_000;
export const MAX_JOIN_TTL_MS = 365 * 24 * 3_600_000;

/** Service names as the mesh config has them (config/primitives.ts). */
const SERVICE = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

export interface JoinClaims {
  readonly service: string;
  /** The token's id: what a revocation names. */
  readonly jti: string;
  /** Epoch milliseconds. */
  readonly issuedAt: number;
  readonly expiresAt: number;
}

/** Why a bearer that looks like a join token is refused. */
export class JoinTokenRefused extends Error {
  readonly reason: 'invalid' | 'expired' | 'revoked';
  constructor(reason: 'invalid' | 'expired' | 'revoked', message: string) {
    super(message);
    this.name = 'JoinTokenRefused';
    this.reason = reason;
  }
}

/** Whether a bearer has a JWT's shape (three base64url parts): the admin token is compared first, so it may be anything. */
export function looksLikeJoinToken(bearer: string): boolean {
  return /^[\w-]+\.[\w-]+\.[\w-]+$/.test(bearer);
}

/** "24h", "30m", "90s" (as durations in config) or "7d"; between 1 s and 365 days. */
export function parseTtl(text: string): number {
  const days = /^(\d+)d$/.exec(text.trim());
  const ms = days ? Number(days[1]) * 24 * 3_600_000 : parseDuration(text);
  if (ms === undefined || !(ms >= 1_000) || ms > MAX_JOIN_TTL_MS) {
    throw new Error(`ttl "${text}": expected a duration from 1s to 365d, such as "24h", "30m" or "7d"`);
  }
  return ms;
}

export function checkService(service: string): void {
  if (!SERVICE.test(service)) throw new Error(`not a service name: "${service}" (lowercase letters, digits and "-")`);
}

/** Signs and verifies join tokens with a key derived from the admin token. */
export class JoinTokenSigner {
  readonly #key: Uint8Array;

  constructor(adminToken: string) {
    this.#key = new Uint8Array(hkdfSync('sha256', adminToken, 'faultline join tokens', 'faultline/join-token/v1/hs256', 32));
  }

  async sign(service: string, ttlMs: number, now: number): Promise<{ token: string; claims: JoinClaims }> {
    checkService(service);
    if (!(ttlMs >= 1_000 && ttlMs <= MAX_JOIN_TTL_MS)) throw new Error(`ttl must be from 1 s to 365 days, got ${ttlMs} ms`);
    const jti = randomBytes(16).toString('hex');
    const iat = Math.floor(now / 1000);
    const exp = Math.floor((now + ttlMs) / 1000);
    const token = await new SignJWT({ kind: JOIN_KIND, service })
      .setProtectedHeader({ alg: ALGORITHM, typ: JOIN_TYP })
      .setIssuer(ISSUER)
      .setJti(jti)
      .setIssuedAt(iat)
      .setExpirationTime(exp)
      .sign(this.#key);
    return { token, claims: { service, jti, issuedAt: iat * 1000, expiresAt: exp * 1000 } };
  }

  /** The claims of a token this key signed, valid at `now` (revocation is the caller's); throws JoinTokenRefused. */
  async verify(token: string, now: number): Promise<JoinClaims> {
    try {
      const { payload } = await jwtVerify(token, this.#key, {
        algorithms: [ALGORITHM],
        typ: JOIN_TYP,
        issuer: ISSUER,
        requiredClaims: ['jti', 'iat', 'exp', 'service', 'kind'],
        currentDate: new Date(now),
      });
      return claimsOf(payload);
    } catch (error) {
      if (error instanceof errors.JWTExpired) {
        const claims = tryClaims(error.payload);
        const of = claims ? ` for "${claims.service}"` : '';
        const at = claims ? ` at ${new Date(claims.expiresAt).toISOString()}` : '';
        throw new JoinTokenRefused('expired', `the join token${of} expired${at}: make a new one (faultline token create)`);
      }
      if (error instanceof errors.JWSSignatureVerificationFailed) {
        throw new JoinTokenRefused('invalid', 'the join token\'s signature does not verify: it was altered, or made with another admin token (rotating the admin token invalidates every join token)');
      }
      if (error instanceof JoinTokenRefused) throw error;
      throw new JoinTokenRefused('invalid', `not a join token of this control plane: ${(error as Error).message}`);
    }
  }

  /**
   * The claims of a token this key signed, expired or not: what a revocation of a whole token reads
   * (an expired token may still be revoked, harmlessly).
   */
  async claimsOfSigned(token: string): Promise<JoinClaims> {
    try {
      const { payload } = await jwtVerify(token, this.#key, { algorithms: [ALGORITHM], typ: JOIN_TYP, issuer: ISSUER, currentDate: new Date(0) });
      return claimsOf(payload);
    } catch (error) {
      if (error instanceof JoinTokenRefused) throw error;
      throw new JoinTokenRefused('invalid', `not a join token of this control plane: ${(error as Error).message}`);
    }
  }
}

function tryClaims(payload: Record<string, unknown>): JoinClaims | undefined {
  try {
    return claimsOf(payload);
  } catch {
    return undefined;
  }
}

function claimsOf(payload: Record<string, unknown>): JoinClaims {
  const { kind, service, jti, iat, exp } = payload;
  if (kind !== JOIN_KIND) throw new JoinTokenRefused('invalid', `a token of kind "${String(kind)}" is not a join token`);
  if (typeof service !== 'string' || !SERVICE.test(service)) throw new JoinTokenRefused('invalid', 'the join token names no valid service');
  if (typeof jti !== 'string' || !/^[0-9a-f]{32}$/.test(jti)) throw new JoinTokenRefused('invalid', 'the join token has no valid id (jti)');
  if (typeof iat !== 'number' || typeof exp !== 'number') throw new JoinTokenRefused('invalid', 'the join token has no iat or exp');
  return { service, jti, issuedAt: iat * 1000, expiresAt: exp * 1000 };
}

// The operators' join-token routes (admin token only: a join token never reaches them, auth.ts):
// POST /tokens makes a token for a service, POST /tokens/revoked revokes one (whole, or by its id),
// GET /tokens/revoked lists the revocations still needed. Tokens themselves are never stored or logged.
import express, { type Router } from 'express';
import { ErrorCode } from '../errors.ts';
import type { Logger } from '../telemetry/log.ts';
import { checkTokenService, type ControlAccess } from './auth.ts';
import { DEFAULT_JOIN_TTL_MS, JoinTokenRefused, parseTtl } from './join-token.ts';
import type { ControlPlane } from './plane.ts';

export function tokenRoutes(plane: ControlPlane, access: ControlAccess, log: Logger): Router {
  const router = express.Router();

  router.post('/tokens', express.json(), async (req, res) => {
    const { service, ttl } = (req.body ?? {}) as { service?: unknown; ttl?: unknown };
    if (typeof service !== 'string') return void res.status(400).json({ error: 'a token needs {service, ttl?}', code: ErrorCode.BadRequest });
    if (ttl !== undefined && typeof ttl !== 'string') return void res.status(400).json({ error: 'ttl is a duration such as "24h"', code: ErrorCode.BadRequest });
    let ttlMs: number;
    try {
      checkTokenService(plane, service);
      ttlMs = ttl === undefined ? DEFAULT_JOIN_TTL_MS : parseTtl(ttl);
    } catch (error) {
      return void res.status(400).json({ error: (error as Error).message, code: ErrorCode.BadRequest });
    }
    const { token, claims } = await access.issue(service, ttlMs);
    log.info({ service, id: claims.jti, expiresAt: new Date(claims.expiresAt).toISOString() }, 'join token made');
    res.status(201).json({ token, id: claims.jti, service, issuedAt: new Date(claims.issuedAt).toISOString(), expiresAt: new Date(claims.expiresAt).toISOString() });
  });

  router.post('/tokens/revoked', express.json(), async (req, res) => {
    const { token, id } = (req.body ?? {}) as { token?: unknown; id?: unknown };
    const given = typeof token === 'string' ? token.trim() : typeof id === 'string' ? id.trim() : undefined;
    if (!given) return void res.status(400).json({ error: 'a revocation needs {token} or {id}', code: ErrorCode.BadRequest });
    try {
      const revoked = await access.revoke(given);
      log.info({ id: revoked.jti, service: revoked.service }, 'join token revoked');
      res.json({ revoked });
    } catch (error) {
      if (!(error instanceof JoinTokenRefused)) throw error;
      res.status(400).json({ error: error.message, code: ErrorCode.TokenInvalid });
    }
  });

  router.get('/tokens/revoked', (_req, res) => {
    res.json({ revoked: access.revocations.all() });
  });

  return router;
}

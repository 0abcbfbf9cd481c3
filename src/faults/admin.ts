// The fault API of a sidecar's admin listener: GET /faults, GET/PUT/DELETE /faults/:id, DELETE /faults.
// A PUT body is a fault as in the config's `faults:` (YAML or JSON; `id` may be left to the path), plus
// its lease (`ttl` or `expiresAt`); it is checked by the same schema and rejected whole, with line and
// field, or refused by a limit (422). DELETE /faults removes every runtime fault at once. A sidecar under
// a control plane only shows its faults: they are the control plane's, changed there (409 here).
import express, { type Router } from 'express';
import { ConfigError } from '../config/errors.ts';
import { parseWithSchema } from '../config/load.ts';
import { checkFault } from '../config/references.ts';
import type { Snapshot } from '../config/snapshot.ts';
import { ErrorCode } from '../errors.ts';
import { FaultSpec, type FaultConfig } from './schema.ts';
import { FaultLimitError, type FaultTable } from './table.ts';

export function faultRoutes(table: FaultTable, snapshot: () => Snapshot, controlPlane?: string): Router {
  const router = express.Router();
  if (controlPlane) {
    // A fault put here would be one the control plane cannot see, list or stop, and the next snapshot
    // would remove it: refused before the body is read, with where to go instead.
    router.use('/faults', (req, res, next) => {
      if (req.method === 'GET' || req.method === 'HEAD') return next();
      res.status(409).json({
        error: `this sidecar's runtime faults come from the control plane at ${controlPlane}: ${req.method} ${req.originalUrl} there (faultline stop removes them all, mesh-wide)`,
        code: ErrorCode.FaultsControlled,
      });
    });
  }
  router.use(express.text({ type: () => true, limit: '64kb' }));

  router.get('/faults', (_req, res) => {
    const now = Date.now();
    res.json({ faults: table.all().map((f) => f.view(now)) });
  });

  router.get('/faults/:id', (req, res) => {
    const fault = table.get(req.params.id);
    if (!fault) return void res.status(404).json({ error: `no fault "${req.params.id}"` });
    res.json(fault.view());
  });

  router.put('/faults/:id', (req, res) => {
    const id = req.params.id;
    let spec: FaultConfig;
    try {
      spec = parseFault(typeof req.body === 'string' ? req.body : '', id, snapshot());
    } catch (error) {
      if (error instanceof ConfigError) return void res.status(400).json({ error: error.message, problems: error.problems });
      throw error;
    }
    try {
      const fault = table.put(spec);
      res.status(200).json(fault.view());
    } catch (error) {
      if (error instanceof FaultLimitError) return void res.status(422).json({ error: error.message, code: error.code });
      throw error;
    }
  });

  router.delete('/faults/:id', (req, res) => {
    if (!table.delete(req.params.id)) {
      const fault = table.get(req.params.id);
      return void res.status(fault ? 409 : 404).json({
        error: fault ? `fault "${req.params.id}" is declared in the mesh config; remove it there` : `no runtime fault "${req.params.id}"`,
      });
    }
    res.status(204).end();
  });

  router.delete('/faults', (_req, res) => {
    const deleted = table.deleteAll();
    res.json({ deleted, remaining: table.all().map((f) => f.id) });
  });

  return router;
}

/** A PUT body → a fault, its id from the path when the body names none (and it must agree when it does). */
export function parseFault(text: string, id: string, snapshot: Snapshot): FaultConfig {
  const source = `PUT /faults/${id}`;
  const tcpListeners = new Set(snapshot.sidecars.flatMap((s) => s.tcp.map((t) => t.name)));
  return parseWithSchema(FaultSpec, text, source, {
    prepare: (value) => (value && typeof value === 'object' && !Array.isArray(value) && !('id' in value) ? { ...value, id } : value),
    check: (fault) => [
      ...(fault.id === id ? [] : [{ path: ['id'], message: `the body says "${fault.id}" but the path says "${id}"` }]),
      ...checkFault(fault, snapshot.services, tcpListeners),
    ],
  });
}

// The admin listener (loopback): liveness, readiness, the snapshot in force and endpoint state.
// Express is fine here: this is not the data path. Every error is a JSON body (http/api-errors.ts).
import express, { type Express } from 'express';
import type { Snapshot } from '../config/snapshot.ts';
import { faultRoutes } from '../faults/admin.ts';
import { endWithJsonErrors } from '../http/api-errors.ts';
import type { FaultTable } from '../faults/table.ts';
import { streamEvents } from '../telemetry/event-stream.ts';
import type { EventBus } from '../telemetry/events.ts';
import type { Logger } from '../telemetry/log.ts';
import type { MeshMetrics } from '../telemetry/metrics.ts';
import type { Breakers } from './breaker/registry.ts';
import type { Clusters } from './endpoints.ts';

/** What the admin listener shows of a sidecar (a Sidecar is one). */
export interface AdminView {
  readonly name: string;
  readonly ready: boolean;
  readonly snapshot: Snapshot;
  readonly appliedAt: number;
  readonly clusters: Clusters;
  readonly metrics: MeshMetrics;
  readonly events: EventBus;
  readonly breakers: Breakers;
  readonly faults: FaultTable;
  /** The control plane that owns its runtime faults, if any. */
  readonly faultsFrom: string | undefined;
}

export function createAdminApp(sidecar: AdminView, log: Logger): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('json spaces', 2);

  app.get('/healthz', (_req, res) => {
    res.type('text/plain').send('ok\n');
  });

  app.get('/ready', (_req, res) => {
    const ready = sidecar.ready;
    res.status(ready ? 200 : 503).json({ ready, version: sidecar.snapshot.version });
  });

  app.get('/config', (_req, res) => {
    const snapshot = sidecar.snapshot;
    res.json({
      version: snapshot.version,
      source: snapshot.source,
      appliedAt: new Date(sidecar.appliedAt).toISOString(),
      sidecar: sidecar.name,
      config: snapshot.config,
      routes: snapshot.routes.map((r) => ({
        name: r.name,
        implicit: r.implicit,
        destinations: r.destinations.map((d) => ({ service: d.service, subset: d.subset ?? {}, weight: d.weight })),
        ...(r.timeoutMs !== undefined && { timeoutMs: r.timeoutMs }),
      })),
    });
  });

  app.get('/endpoints', (_req, res) => {
    const now = Date.now();
    const services = [...sidecar.clusters.values()].map((cluster) => ({
      service: cluster.name,
      loadBalancer: cluster.spec.loadBalancer.policy,
      endpoints: cluster.endpoints.map((e) => ({
        address: e.address,
        dial: e.spec.dial,
        labels: e.spec.labels,
        available: e.available,
        health: e.health.status,
        lastHealthError: e.health.lastError ?? null,
        ejected: e.outlier.ejected,
        ejections: e.outlier.ejections,
        ejectedForMs: e.outlier.ejected ? Math.max(0, e.outlier.ejectedUntil - now) : 0,
        activeRequests: e.load.active,
        latencyEwmaMs: Math.round(e.load.ewmaMs * 100) / 100,
      })),
    }));
    res.json({ version: sidecar.snapshot.version, services });
  });

  app.get('/metrics', async (_req, res) => {
    res.type(sidecar.metrics.contentType).send(await sidecar.metrics.exposition());
  });

  app.get('/events', (req, res) => {
    const since = req.query.since === undefined ? undefined : Number(req.query.since);
    if (since !== undefined && !(Number.isInteger(since) && since >= 0)) {
      res.status(400).json({ error: 'since must be a whole number: the seq of the last event you have' });
      return;
    }
    const requests = req.query.requests;
    if (requests !== undefined && requests !== 'true' && requests !== 'false') {
      res.status(400).json({ error: 'requests must be true or false: whether to send request.done' });
      return;
    }
    streamEvents(sidecar.events, since, req, res, { requests: requests !== 'false' });
  });

  app.get('/breakers', (_req, res) => {
    res.json({ version: sidecar.snapshot.version, breakers: sidecar.breakers.all().map((b) => b.view()) });
  });

  app.use(faultRoutes(sidecar.faults, () => sidecar.snapshot, sidecar.faultsFrom));
  endWithJsonErrors(app, log);
  return app;
}
